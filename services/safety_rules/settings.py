"""safety_rules' own settings: the clock tick, the lag refresh, retries, batches and where it consumes.

Read like every other fragment (process environment first, then the env file). The consumer group
and the topic prefix exist so that an isolated copy of the service (an integration test on a shared
broker) never takes partitions or records from the real one; production keeps the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from shared.messaging.retry import Backoff, RetryPolicy
from shared.messaging.topics import DEAD_LETTER, EVENTS, SIGNALS
from shared.settings import SettingsFragment

DEFAULT_CONSUMER_GROUP = "safety-rules"


class RulesSettings(SettingsFragment):
    clock_interval: float = Field(
        default=5.0, gt=0, validation_alias="TRIALWATCH_RULES_CLOCK_INTERVAL", description="seconds between ticks"
    )
    lag_interval: float = Field(default=5.0, gt=0, validation_alias="TRIALWATCH_RULES_LAG_INTERVAL")
    max_attempts: int = Field(default=5, ge=1, validation_alias="TRIALWATCH_RULES_MAX_ATTEMPTS")
    retry_first: float = Field(default=0.2, gt=0, validation_alias="TRIALWATCH_RULES_RETRY_FIRST")
    retry_cap: float = Field(default=5.0, gt=0, validation_alias="TRIALWATCH_RULES_RETRY_CAP")
    # Peak RSS against CPU (20,000 records published at once, safety_rules alone): 1000 records and
    # 4 MiB per poll, 169 MB and 0.33 ms per record; 500 and 2 MiB, 147 MB and 0.38 ms. In the pipeline
    # benchmark's flood 208 MB against 182 MB: the floor is 200 MB per service.
    batch_max_records: int = Field(
        default=500,
        ge=1,
        validation_alias="TRIALWATCH_RULES_BATCH_MAX_RECORDS",
        description="most records evaluated in one transaction",
    )
    batch_max_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=64 * 1024,
        validation_alias="TRIALWATCH_RULES_BATCH_MAX_BYTES",
        description="most bytes one poll fetches from a partition (Kafka's max.partition.fetch.bytes)",
    )
    batch_max_participants: int = Field(
        default=125,
        ge=1,
        validation_alias="TRIALWATCH_RULES_BATCH_MAX_PARTICIPANTS",
        description="most participant states a batch holds in memory at a time (each is read and written once)",
    )
    cached_participants: int = Field(
        default=500,
        ge=0,
        validation_alias="TRIALWATCH_RULES_CACHED_PARTICIPANTS",
        description="participant states kept in memory between batches (0: read every batch's from the database)",
    )
    batch_timeout_ms: int = Field(
        default=20,
        ge=1,
        validation_alias="TRIALWATCH_RULES_BATCH_TIMEOUT_MS",
        description="how long a poll waits for a first record (a batch never waits to fill up)",
    )
    # A fetch answered only once 1 MiB (about 270 records) is there, or after 100 ms: under a flood each
    # batch holds more of a participant's records, so its state is written once for more of them. The
    # pipeline benchmark on a quiet machine (three floods each): 1 byte / 20 ms 1,985-2,027 records/s;
    # 256 KiB / 50 ms 1,648-2,283 (bimodal: small batches cost PostgreSQL more, which slows the flood);
    # 1 MiB / 100 ms 2,009-2,141, PostgreSQL steady at 3.7 CPU s. p99 at 200 records/s: 63, 100, 165 ms.
    fetch_wait_ms: int = Field(
        default=100,
        ge=1,
        le=500,
        validation_alias="TRIALWATCH_RULES_FETCH_WAIT_MS",
        description="how long the broker may hold a fetch that finds no new record (Kafka's fetch.max.wait.ms)",
    )
    fetch_min_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        validation_alias="TRIALWATCH_RULES_FETCH_MIN_BYTES",
        description="bytes the broker waits for, at most fetch_wait_ms, before answering a fetch (fetch.min.bytes)",
    )
    consumer_group: str = Field(
        default=DEFAULT_CONSUMER_GROUP, min_length=1, validation_alias="TRIALWATCH_RULES_CONSUMER_GROUP"
    )
    topic_prefix: str = Field(default="", validation_alias="TRIALWATCH_RULES_TOPIC_PREFIX")

    @property
    def retry(self) -> RetryPolicy:
        """Bounded retries with exponential backoff before a record is dead-lettered."""
        return RetryPolicy(self.max_attempts, Backoff(first=self.retry_first, cap=self.retry_cap))

    @property
    def topics(self) -> RulesTopics:
        return RulesTopics.with_prefix(self.topic_prefix)


@dataclass(frozen=True)
class RulesTopics:
    """The three topics the service touches: records in, signals out, dead letters."""

    events: str
    signals: str
    dead_letter: str

    @classmethod
    def with_prefix(cls, prefix: str) -> RulesTopics:
        return cls(prefix + EVENTS, prefix + SIGNALS, prefix + DEAD_LETTER)
