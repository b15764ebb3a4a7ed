"""`make bench`: the replay benchmark with its defaults (see bench.replay_bench and BENCHMARKS.md)."""

from bench.replay_bench import main

if __name__ == "__main__":
    raise SystemExit(main())
