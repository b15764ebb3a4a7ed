"""Dashboard server-time benchmark (issue #7): `python -m bench.dashboard`."""
