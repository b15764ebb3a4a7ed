"""Composition root of notifier: the only place that turns settings into adapters."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from faststream import FastStream
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.actions import Actions
from services.notifier.adapters.channels import Sender
from services.notifier.adapters.routing_file import load_routing
from services.notifier.adapters.smtp import SmtpSender
from services.notifier.adapters.tables import Outbox
from services.notifier.adapters.webhook import WebhookSender
from services.notifier.app import create_router
from services.notifier.consumers import DecisionRecords, SignalRecords
from services.notifier.context import Context, Wakeups
from services.notifier.decisions import Decisions
from services.notifier.dispatch import Dispatcher, Links
from services.notifier.domain.links import link_key
from services.notifier.http_api import create_api
from services.notifier.intake import Intake
from services.notifier.loops import Coalesced, Loop
from services.notifier.metrics import NotifierMetrics
from services.notifier.scheduler import Scheduler
from services.notifier.sender import DeliverySender, SendPolicy
from services.notifier.settings import NotifierSettings, SmtpSettings
from shared.auth import Authenticator, OidcSettings, OidcVerifier, static_tokens
from shared.db import create_engine, create_session_factory
from shared.messaging.batch_publisher import KafkaBatchPublisher
from shared.messaging.batches import BatchConsumer
from shared.messaging.broker import create_broker, kafka_publish
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.outbox import OutboxRelay
from shared.messaging.retry import RetryPolicy
from shared.messaging.service import ServiceRuntime, create_http_app, create_registry
from shared.settings import DatabaseSettings, ServiceSettings

CLIENT_ID = "trialwatch-notifier"
#: Transactions that can be open at once besides the sends: the two subscribers, the relay, the scheduler,
#: the metrics, the sender's claim and settling, an API request.
CONCURRENT_BESIDES_SENDS = 7
#: The relay is woken by every commit that wrote to the outbox; its poll only finds rows a crash left.
#: Alert changes are no one's deadline (the deliveries are), so it polls rarely: idle CPU.
RELAY_POLL_SECONDS = 5.0
#: ...and woken 0.25 s after the first commit of a burst, once for all of it: fewer, fuller produce requests.
RELAY_DELAY_SECONDS = 0.25


@dataclass
class NotifierRuntime(ServiceRuntime):
    """The shared service runtime plus the notifier's loops (senders, scheduler, metrics) and webhook client."""

    loops: tuple[Loop, ...] = ()
    webhooks: WebhookSender | None = None
    markers: AsyncEngine | None = None

    async def start(self) -> None:
        await super().start()
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self.loops:
            await loop.stop()
        if self.webhooks is not None:
            await self.webhooks.close()
        if self.markers is not None:
            await self.markers.dispose()
        await super().stop()

    async def health(self) -> dict[str, str]:
        return await super().health() | {f"loop:{loop.name}": loop.health() for loop in self.loops}


def _policy(notifier: NotifierSettings) -> SendPolicy:
    return SendPolicy(
        batch=notifier.send_batch,
        concurrency=notifier.send_concurrency,
        lease=timedelta(seconds=notifier.lease_seconds),
        max_attempts=notifier.max_attempts,
        backoff=notifier.backoff,
    )


def _pooled(database: DatabaseSettings, notifier: NotifierSettings) -> DatabaseSettings:
    """A pool as large as the notifier's concurrency: a connection taken above the pool size is opened for
    one transaction and closed after it: a new connection (a TLS attempt, a SCRAM handshake) per
    transaction whenever more are open than the pool holds, as under a burst of signals and sends."""
    needed = notifier.send_concurrency + CONCURRENT_BESIDES_SENDS
    return database.model_copy(update={"pool_size": max(database.pool_size, needed)})


def _marker_engine(database: DatabaseSettings, notifier: NotifierSettings) -> AsyncEngine:
    """Connections for the senders' point-of-no-return markers: autocommit, one per concurrent send, no
    pre-ping (a marker on a connection the database dropped fails, and the send with it: see sender.py)."""
    pooled = database.model_copy(update={"pool_size": notifier.send_concurrency})
    engine = create_engine(pooled, application_name=f"{CLIENT_ID}-markers", pre_ping=False)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _check_lease(policy: SendPolicy, channels: Mapping[str, Sender]) -> None:
    """A sender past the point of no return must have its answer before its lease runs out: after that
    the row is settled as unconfirmed (sender.py), and a late 250 would not be recorded."""
    for name, channel in channels.items():
        longest = channel.longest_wait_after_the_point_of_no_return
        if policy.lease.total_seconds() <= longest:
            raise ValueError(
                f"TRIALWATCH_NOTIFIER_LEASE_SECONDS ({policy.lease.total_seconds():g}) must exceed the {name} "
                f"channel's longest wait after the point of no return ({longest:g} s, from its timeout)"
            )


def _subscribe(broker: KafkaBroker, context: Context, notifier: NotifierSettings) -> None:
    """The two batch subscribers, with bounded retries and the dead-letter topic for poison."""
    publish, topic = kafka_publish(broker), notifier.topics.dead_letter
    signals_group, decisions_group = notifier.consumer_group, notifier.decisions_group
    signals = BatchConsumer(
        SignalRecords(Intake(context, signals_group)), DeadLetters(publish, signals_group, topic), RetryPolicy()
    )
    decisions = BatchConsumer(
        DecisionRecords(Decisions(context, decisions_group)),
        DeadLetters(publish, decisions_group, topic),
        RetryPolicy(),
    )
    broker.include_router(create_router(signals, decisions, notifier.topics, (signals_group, decisions_group)))


def _authenticator(settings: ServiceSettings, notifier: NotifierSettings, oidc: OidcSettings) -> Authenticator:
    if settings.api_token is None:
        raise ValueError("notifier serves an authenticated API: load its settings with needs_token=True")
    operator = settings.api_token.token.get_secret_value()
    tokens = static_tokens(operator, notifier.users_file, notifier.derives_dev_users)
    return Authenticator(tokens, OidcVerifier(oidc) if oidc.enabled else None)


def build(settings: ServiceSettings, notifier: NotifierSettings, smtp: SmtpSettings, oidc: OidcSettings) -> FastAPI:
    authenticator = _authenticator(settings, notifier, oidc)
    routing = load_routing(notifier.routing_files)
    registry = create_registry()
    kafka_logger = logging.getLogger("trialwatch.notifier.kafka")
    broker = create_broker(settings.kafka, client_id=CLIENT_ID, registry=registry, logger=kafka_logger)
    engine = create_engine(_pooled(settings.database, notifier), application_name=CLIENT_ID)
    sessions = create_session_factory(engine)
    # A round's records as one record batch per partition (its own producer), not a broker publish each:
    # the publishing was a fifth of the notifier's CPU with the alerts of a burst of signals.
    outbox = KafkaBatchPublisher(settings.kafka, client_id=f"{CLIENT_ID}-outbox")
    relay = OutboxRelay(sessions, Outbox, outbox, poll_interval=RELAY_POLL_SECONDS)
    secret = notifier.hmac_secret.get_secret_value().encode()
    public_url = notifier.public_url or f"http://{settings.listen.host}:{settings.port}"
    dispatcher = Dispatcher(routing, Links(link_key(secret), public_url), smtp.message_id_domain)
    loops: list[Loop] = []

    def wake_sender() -> None:
        loops[0].wake()

    def timer_scheduled(at: datetime) -> None:
        if scheduler.expects(at):
            loops[1].wake()

    wakeups = Wakeups(Coalesced(relay.wake, RELAY_DELAY_SECONDS), wake_sender, timer_scheduled)
    context = Context(sessions, routing, dispatcher, notifier.topics, lambda: datetime.now(UTC), wakeups)
    metrics = NotifierMetrics(registry)
    webhooks = WebhookSender(secret, notifier.webhook_timeout)
    channels: dict[str, Sender] = {"email": SmtpSender(smtp), "webhook": webhooks}
    policy = _policy(notifier)
    _check_lease(policy, channels)
    markers = _marker_engine(settings.database, notifier)
    sender, scheduler = DeliverySender(context, channels, policy, metrics, markers), Scheduler(context)
    loops += [
        Loop("sender", sender.send_due, notifier.poll_interval, sender.until_due),
        Loop("scheduler", scheduler.fire_due, notifier.poll_interval, scheduler.until_due),
        Loop("metrics", lambda: metrics.refresh(sessions, context.clock()), notifier.metrics_interval),
    ]
    _subscribe(broker, context, notifier)
    stream = FastStream(broker, logger=kafka_logger)
    runtime = NotifierRuntime(
        "notifier", stream, broker, engine, registry, relay, loops=tuple(loops), webhooks=webhooks, markers=markers
    )
    api = create_api(context, Actions(context, link_key(secret)), authenticator, link_key(secret))
    return create_http_app(runtime, routers=[api])
