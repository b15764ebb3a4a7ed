"""Adapters of ingest: SQL tables and stores, built by bootstrap."""
