"""safety_rules' settings: defaults for production, overrides for an isolated copy (tests)."""

from __future__ import annotations

import pytest

from services.safety_rules.settings import RulesSettings, RulesTopics


def test_defaults_consume_the_real_topics_in_the_safety_rules_group() -> None:
    settings = RulesSettings.from_mapping({})
    assert settings.consumer_group == "safety-rules"
    assert settings.topics == RulesTopics("trialwatch.events.v1", "trialwatch.signals.v1", "trialwatch.dlq.v1")
    assert settings.clock_interval == 5.0
    assert settings.retry.max_attempts == 5


def test_an_isolated_copy_gets_its_own_topics_group_and_faster_clock() -> None:
    settings = RulesSettings.from_mapping(
        {
            "TRIALWATCH_RULES_TOPIC_PREFIX": "it.x.",
            "TRIALWATCH_RULES_CONSUMER_GROUP": "it-group",
            "TRIALWATCH_RULES_CLOCK_INTERVAL": "0.2",
            "TRIALWATCH_RULES_MAX_ATTEMPTS": "3",
            "TRIALWATCH_RULES_RETRY_FIRST": "0.01",
            "TRIALWATCH_RULES_RETRY_CAP": "0.05",
        }
    )
    assert settings.topics.events == "it.x.trialwatch.events.v1"
    assert settings.topics.dead_letter == "it.x.trialwatch.dlq.v1"
    assert settings.consumer_group == "it-group"
    assert settings.clock_interval == 0.2
    assert settings.retry.max_attempts == 3
    assert [settings.retry.backoff.delay(n) for n in (1, 2, 3, 4)] == [0.01, 0.02, 0.04, 0.05]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TRIALWATCH_RULES_CLOCK_INTERVAL", "0"), ("TRIALWATCH_RULES_MAX_ATTEMPTS", "0")],
)
def test_a_clock_that_never_ticks_or_a_retry_that_never_runs_is_refused(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        RulesSettings.from_mapping({variable: value})


def test_batches_are_bounded_in_records_bytes_and_participants_and_never_wait_long() -> None:
    defaults = RulesSettings.from_mapping({})
    assert (defaults.batch_max_records, defaults.batch_max_participants) == (500, 125)
    assert (defaults.batch_max_bytes, defaults.batch_timeout_ms) == (2 * 1024 * 1024, 20)
    # not Kafka's 500 ms: the busy partition waited for idle ones' fetches; the broker answers a fetch once
    # 1 MiB is there or after 100 ms (larger batches under a flood, at most 100 ms more at a low rate)
    assert (defaults.fetch_wait_ms, defaults.fetch_min_bytes) == (100, 1024 * 1024)
    with pytest.raises(ValueError, match="TRIALWATCH_RULES_FETCH_MIN_BYTES"):
        RulesSettings.from_mapping({"TRIALWATCH_RULES_FETCH_MIN_BYTES": "0"})
    with pytest.raises(ValueError, match="TRIALWATCH_RULES_FETCH_WAIT_MS"):
        RulesSettings.from_mapping({"TRIALWATCH_RULES_FETCH_WAIT_MS": "0"})
    tuned = RulesSettings.from_mapping(
        {"TRIALWATCH_RULES_BATCH_MAX_RECORDS": "1", "TRIALWATCH_RULES_BATCH_MAX_PARTICIPANTS": "500"}
    )
    assert (tuned.batch_max_records, tuned.batch_max_participants) == (1, 500)
    with pytest.raises(ValueError, match="TRIALWATCH_RULES_BATCH_MAX_RECORDS"):
        RulesSettings.from_mapping({"TRIALWATCH_RULES_BATCH_MAX_RECORDS": "0"})
