"""The local SMTP sink (development and demo, INTERFACES §5): accepts every message on 127.0.0.1 and stores
it in PostgreSQL (``smtp_sink.message``), once per Message-ID, counting repeated receptions."""
