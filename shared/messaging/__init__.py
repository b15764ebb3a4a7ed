"""Kafka plumbing shared by the services: broker factory, outbox relay, idempotent consumer, dead letters."""
