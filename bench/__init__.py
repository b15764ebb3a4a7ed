"""Benchmarks of TrialWatch (issue #3): a synthetic stream generator and the `trialwatch replay` benchmark.

Run `python -m bench.replay_bench --help`; results go to `out/bench-replay.json`. See BENCHMARKS.md.
"""
