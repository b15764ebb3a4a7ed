"""Fast tests of the ingest service (no Kafka, no PostgreSQL): framing, ACKs, units, batches, HTTP, MLLP."""
