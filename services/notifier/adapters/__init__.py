"""Adapters of notifier: SQL tables and stores, built by bootstrap."""
