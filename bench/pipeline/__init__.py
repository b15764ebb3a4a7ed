"""The live pipeline benchmark (issue #4): `python -m bench.pipeline`, see `__main__`; writes out/bench.json."""
