"""The trial simulator (issue #6): a scenario file becomes a deterministic stream of lab messages, EDC
records and FHIR resources sent to the live stack, with a simulated safety officer answering the alerts.

- `scenario`: the YAML scenario, validated against scenarios/scenario.schema.json;
- `plan` and `episodes`: the trial as dated transmissions (pure, seeded);
- `messages`: HL7 ORU^R01, FHIR AdverseEvent and NDJSON records;
- `senders`: every transmission written to the sent directory, then sent (MLLP or HTTP);
- `officer`: acknowledgements and clock submissions through the notifier API;
- `progress`, `live_view`: what the terminal shows; `summary`: the run as PostgreSQL and the SMTP sink saw it;
- `runner`: the paced run; `command`: `trialwatch simulate`.
"""
