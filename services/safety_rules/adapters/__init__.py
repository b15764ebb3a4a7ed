"""Adapters of safety_rules: SQL tables and stores, built by bootstrap."""
