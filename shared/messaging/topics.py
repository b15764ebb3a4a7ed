"""Kafka topic names: the internal stream contracts (INTERFACES §5 names the external ones).

Topics are provisioned by the deployment (``trialwatch.devstack``), never auto-created by a client.
"""

from __future__ import annotations

IN_HL7 = "trialwatch.in.hl7"
IN_FHIR = "trialwatch.in.fhir"
IN_RECORDS = "trialwatch.in.records"
EVENTS = "trialwatch.events.v1"
SIGNALS = "trialwatch.signals.v1"
ALERTS = "trialwatch.alerts.v1"
DEAD_LETTER = "trialwatch.dlq.v1"

ALL_TOPICS = (IN_HL7, IN_FHIR, IN_RECORDS, EVENTS, SIGNALS, ALERTS, DEAD_LETTER)
