"""The committed AsyncAPI document is exactly what the three services' code declares."""

from __future__ import annotations

import json

from shared.messaging.asyncapi_gen import DOCUMENT_PATH, drift, render


def test_committed_asyncapi_document_matches_the_code() -> None:
    committed = DOCUMENT_PATH.read_text(encoding="utf-8") if DOCUMENT_PATH.exists() else ""
    difference = drift(committed, render())
    assert not difference, (
        "docs/asyncapi/asyncapi.json differs from the code; if the change is intended, run\n"
        "    .venv/bin/python -m shared.messaging.asyncapi_gen\nand commit the result.\n\n" + difference
    )


def test_document_names_each_stream_with_its_producer_and_consumer() -> None:
    channels = json.loads(render())["channels"]
    assert {
        "trialwatch.events.v1:CanonicalEvent",
        "trialwatch.events.v1:EvaluateEvent",
        "trialwatch.signals.v1:Signal",
        "trialwatch.signals.v1:ReceiveSignal",
        "trialwatch.dlq.v1:SafetyRulesDeadLetter",
        "trialwatch.dlq.v1:NotifierDeadLetter",
    } <= set(channels)


def test_message_schemas_carry_the_contract_field_descriptions() -> None:
    schemas = json.loads(render())["components"]["schemas"]
    assert schemas["LabResultRecorded"]["properties"]["test"]["description"] == "Canonical test code (SDTM LBTESTCD)"
    assert "description" in schemas["Signal"]["properties"]["signal_id"]


def test_drift_shows_a_readable_unified_diff() -> None:
    difference = drift('{\n  "a": 1\n}\n', '{\n  "a": 2\n}\n')
    assert '-  "a": 1' in difference
    assert '+  "a": 2' in difference
    assert "(generated from code)" in difference
