"""The one way a service builds its Kafka broker: idempotent producer, manual acks, no auto-created topics.

FastStream 0.7.8 defaults to ACK_FIRST (auto-commit, at-most-once) and aiokafka to a non-idempotent
producer with acks=1 (TECH_NOTES §2-3); both defaults are overridden here, once.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CollectorRegistry

from shared.messaging.outbox import Delivery, Publish
from shared.settings import KafkaSettings

#: AsyncAPI documents the INTERFACES §5 default broker, not whichever one generated the file.
DOCUMENTED_BOOTSTRAP = "127.0.0.1:19092"


def create_broker(
    kafka: KafkaSettings, *, client_id: str, registry: CollectorRegistry | None, logger: logging.Logger
) -> KafkaBroker:
    prometheus = KafkaPrometheusMiddleware(registry=registry, app_name=client_id) if registry else None
    return KafkaBroker(
        kafka.bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        ack_policy=AckPolicy.MANUAL,
        security=broker_security(kafka),
        middlewares=[prometheus] if prometheus else [],
        logger=logger,
        graceful_timeout=15.0,
        specification_url=DOCUMENTED_BOOTSTRAP,
    )


def kafka_publish(broker: KafkaBroker) -> Publish:
    """Publishes through the broker's idempotent producer and waits for the broker's acknowledgement."""

    async def publish(topic: str, key: bytes, value: bytes, headers: Mapping[str, str]) -> Delivery:
        metadata = await broker.publish(value, topic, key=key, headers=dict(headers))
        return Delivery(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)

    return publish


def create_documentation_broker() -> KafkaBroker:
    """A broker that never connects, for generating the AsyncAPI document."""
    return KafkaBroker(
        DOCUMENTED_BOOTSTRAP,
        ack_policy=AckPolicy.MANUAL,
        allow_auto_create_topics=False,
        description="TrialWatch internal streams. Keys: study id. Values: JSON.",
    )


def tls_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    if not kafka.uses_tls:
        return None
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile:
        keyfile = str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
        context.load_cert_chain(str(kafka.ssl_certfile), keyfile)
    return context


def broker_security(kafka: KafkaSettings) -> BaseSecurity | None:
    context = tls_context(kafka)
    if not kafka.uses_sasl:
        return BaseSecurity(ssl_context=context) if context else None
    assert kafka.sasl_username and kafka.sasl_password  # guaranteed by KafkaSettings validation
    username, password = kafka.sasl_username, kafka.sasl_password.get_secret_value()
    use_ssl = context is not None
    if kafka.sasl_mechanism == "SCRAM-SHA-256":
        return SASLScram256(username, password, ssl_context=context, use_ssl=use_ssl)
    if kafka.sasl_mechanism == "SCRAM-SHA-512":
        return SASLScram512(username, password, ssl_context=context, use_ssl=use_ssl)
    return SASLPlaintext(username, password, ssl_context=context, use_ssl=use_ssl)


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection keyword arguments for a raw aiokafka client (smoke check, tests, tools)."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    context = tls_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.uses_sasl:
        assert kafka.sasl_password is not None
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options
