"""`python -m bench.pipeline`: the live pipeline benchmark (issue #4); writes out/bench.json.

With the real Kafka and PostgreSQL of a stack (default: the test stack, TRIALWATCH_ENV_FILE honoured;
start it with `python -m trialwatch.devstack --stack test up --infra-only`) and ingest and safety_rules as
real subprocesses (issue #4's pipeline: records into ingest -> signals persisted; ``--with-notifier`` adds
the notifier and its SMTP sink on the same cores: the whole system), one bounded run (a few minutes):
1. flood: the stream as fast as ingest takes it, for at most ``--flood-seconds``: the highest sustainable
   end-to-end rate = records processed by safety_rules (their signals persisted in the same transaction)
   per second while the backlog lasts (the slope between 10 % and 90 % of the records it processed);
   ``--floods`` (3) of them, each from an empty pipeline, the median one reported (one flood's rate
   varies by about 10 % from one run to the next on this machine);
2. paced at ``--rate`` (200) records/s for ``--paced-seconds``: latency from ingest acceptance to signal
   persisted (p50/p95/p99), with records still queued at the cut-off counted;
   and where each record's time went, stage by stage (`bench.pipeline.observe.STAGES`);
3. paced at 80 % of the flood rate, when that is below ``--rate``: the latency the pipeline can keep;
4. the ceiling: an aiokafka consume -> produce passthrough of the same RecordIngested payloads through
   the same broker with the services' client settings.
Warm-up runs of ``--warmup-records`` (40,000: two passes of the stream) come first, unmeasured: a
broker just started spends seconds of CPU in its JIT compiler during its first floods. Each run starts
from an empty pipeline: the stack's TrialWatch topics are emptied and the service tables truncated.
Never point it at a stack whose data you want to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from bench.pipeline.feed import FeedResult, Item, ensure_stream, feed, items
from bench.pipeline.observe import Observer
from bench.pipeline.passthrough import passthrough
from bench.pipeline.processes import BENCH, PIPELINE, SINK, WHOLE_SYSTEM, Services, cpu_used
from bench.pipeline.report import floors, machine, quantiles, summary
from shared.messaging.broker import aiokafka_options
from shared.messaging.topics import EVENTS
from shared.settings import KafkaSettings
from trialwatch.devstack import kafka_admin, pg_setup
from trialwatch.devstack.envfile import EnvFileError
from trialwatch.devstack.settings import Settings, load_settings

SEQUENTIAL_PASSTHROUGH_RECORDS = 5000
SAMPLE_SECONDS = 0.5
SUSTAINABLE_SHARE = 0.8
CPU_FIGURES = ("ingest_records_per_cpu_s", "rules_records_per_cpu_s", "pipeline_records_per_cpu_s")


def metric(exposition: str, name: str, label: str) -> float:
    """The sum of counter ``name``'s samples whose labels hold ``label`` (its ``_created`` timestamps aside)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith((f"{name}{{", f"{name}_total{{")) and label in line
    )


def cpu_rates(cpu: dict[str, float], accepted: int, processed: int) -> dict[str, Any]:
    """Records per CPU second: ingest per record it accepted, safety_rules per record it processed, and
    the whole pipeline (services, Kafka and PostgreSQL, notifier and SMTP sink aside: they are not on
    the path to a persisted signal) per record processed. On a shared machine the wall-clock rates measure the other
    load as much as TrialWatch; these do not."""
    path = sum(seconds for name, seconds in cpu.items() if name not in ("notifier", SINK, BENCH))
    return {
        "ingest_records_per_cpu_s": round(accepted / cpu["ingest"], 1) if cpu.get("ingest") else None,
        "rules_records_per_cpu_s": round(processed / cpu["safety_rules"], 1) if cpu.get("safety_rules") else None,
        "pipeline_records_per_cpu_s": round(processed / path, 1) if path else None,
    }


def median_flood(floods: list[dict[str, Any]]) -> dict[str, Any]:
    """The flood whose end-to-end rate is the median (the lower middle one of an even count)."""
    ranked = sorted(floods, key=lambda flood: flood["steady_records_per_s"] or flood["records_per_s"])
    return ranked[(len(ranked) - 1) // 2]


def flood_figures(flood: dict[str, Any]) -> dict[str, Any]:
    return {key: flood[key] for key in ("steady_records_per_s", "seconds", "cpu_seconds", "load_average_end")}


def steady_rate(timeline: list[tuple[float, int]]) -> float:
    """Records per second between 10 % and 90 % of the records processed (start-up and tail aside)."""
    final = timeline[-1][1] if timeline else 0
    inside = [(t, n) for t, n in timeline if 0.1 * final <= n <= 0.9 * final]
    if len(inside) < 2 or inside[-1][0] == inside[0][0]:
        return 0.0
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


async def check_infrastructure(cfg: Settings) -> None:
    hint = f"start it: python -m trialwatch.devstack --stack {cfg.stack} up --infra-only"
    try:
        await asyncio.wait_for(kafka_admin.describe(cfg.bootstrap), timeout=15)
        await pg_setup.select_one(cfg.pg_target(), connect_timeout=5)
    except Exception as exc:  # any failure means the stack is not there
        raise SystemExit(f"bench.pipeline: stack {cfg.stack!r} not reachable ({exc!r}); {hint}") from None


async def drive(
    services: Services, observer: Observer, stream: list[Item], *, rate: float | None, lanes: int, limit: float
) -> tuple[FeedResult, list[tuple[float, int]], bool]:
    """Feeds ``stream`` and samples progress until everything is processed or ``limit`` seconds passed
    (an unfinished feed is then cancelled). Returns the feed's counts, the timeline, and completion."""
    cfg, fed = services.cfg, FeedResult()
    feeding = asyncio.create_task(
        feed(
            stream,
            fed,
            mllp=("127.0.0.1", int(cfg.env["TRIALWATCH_MLLP_PORT"])),
            http_url=services.url("ingest", "/v1/records"),
            token=cfg.env["TRIALWATCH_TOKEN"],
            rate=rate,
            lanes=lanes,
        )
    )
    timeline: list[tuple[float, int]] = []
    started, complete = time.monotonic(), False
    while time.monotonic() - started < limit and not complete:
        processed, drained = await observer.progress()
        timeline.append((time.monotonic(), processed))
        complete = feeding.done() and drained
        await asyncio.sleep(SAMPLE_SECONDS)
    if not feeding.done():
        feeding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await feeding
    services.check_alive()
    return fed, timeline, complete


async def run_once(
    services: Services, observer: Observer, stream: list[Item], *, rate: float | None, lanes: int, limit: float
) -> dict[str, Any]:
    """One run from an empty pipeline; the figures of the run."""
    services.stop()
    await observer.reset()
    services.start()
    stop = asyncio.Event()
    sampler = asyncio.create_task(services.sample_rss_every(0.5, stop))
    cpu_before = services.cpu()
    try:
        fed, timeline, complete = await drive(services, observer, stream, rate=rate, lanes=lanes, limit=limit)
    finally:
        cpu = cpu_used(cpu_before, services.cpu())
        stop.set()
        await sampler
    seconds = timeline[-1][0] - timeline[0][0] if timeline else 0.0
    processed = timeline[-1][1] if timeline else 0
    figures: dict[str, Any] = {
        "rate": rate or "unpaced",
        "records_offered": len(stream),
        "records_sent": fed.sent,
        "records_rejected": fed.rejected,
        "feed_errors": fed.errors[:5],
        "records_published": await observer.scalar(f"SELECT count(*) FROM ingest.outbox WHERE topic = '{EVENTS}'"),
        "records_processed": processed,
        "complete": complete,
        "seconds": round(seconds, 1),
        "records_per_s": round(processed / seconds, 1) if seconds else 0.0,
        "steady_records_per_s": round(steady_rate(timeline), 1),
        "redeliveries_absorbed": metric(services.metrics("safety_rules"), "safety_rules_records", "duplicate"),
        "signals": await observer.scalar("SELECT count(*) FROM safety_rules.signal"),
        "cpu_seconds": cpu,
        "load_average_end": machine()["load_average"],
    }
    figures.update(cpu_rates(cpu, fed.sent, processed))
    if rate:
        persisted, published = await observer.signal_latencies()
        figures["signal_latency_ms_persisted"] = quantiles(persisted)
        figures["signal_latency_ms_published"] = quantiles(published)
        figures["record_latency_ms"] = quantiles(await observer.record_latencies())
        stages = await observer.record_stages()
        figures["record_stages_ms"] = {name: quantiles(values) for name, values in stages.items()}
    return figures


async def measure(args: argparse.Namespace, cfg: Settings, services: Services, observer: Observer) -> dict[str, Any]:
    stream = list(items(ensure_stream(args.data, args.records, args.seed)))
    left = args.warmup_records  # a freshly started broker's JIT compilation is not the pipeline's cost
    while left > 0:  # passes of the stream, the last one cut short
        await run_once(services, observer, stream[:left], rate=None, lanes=args.lanes, limit=args.flood_seconds)
        left -= len(stream)
        if args.broker_warmup_passes:  # the broker's hot paths at its own pace, for little client CPU
            payloads = [(record.key, record.value) for record in await observer.read_topic(EVENTS)]
            for _ in range(args.broker_warmup_passes):
                await passthrough(observer.options, payloads, partitions=6)
            args.broker_warmup_passes = 0
    floods = []
    for _ in range(args.floods):
        floods.append(await run_once(services, observer, stream, rate=None, lanes=args.lanes, limit=args.flood_seconds))
    events = await observer.read_topic(EVENTS)  # the last flood's
    flood = median_flood(floods)
    paced_count = int(args.rate * args.paced_seconds)
    wait = args.paced_seconds + args.cutoff_seconds
    runs: dict[str, Any] = {"flood": flood, "floods": [flood_figures(each) for each in floods]}
    runs[f"paced_{args.rate:g}"] = await run_once(
        services, observer, stream[:paced_count], rate=args.rate, lanes=args.lanes, limit=wait
    )
    sustainable = round(SUSTAINABLE_SHARE * (flood["steady_records_per_s"] or flood["records_per_s"]), 1)
    if 0 < sustainable < args.rate:
        runs[f"paced_{sustainable:g}"] = await run_once(
            services, observer, stream[: int(sustainable * args.paced_seconds)], rate=sustainable,
            lanes=args.lanes, limit=wait,
        )  # fmt: skip
    return {"runs": runs, "events": events, "stream_records": len(stream)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    try:
        cfg = load_settings(args.stack, create=False)
    except EnvFileError as exc:
        raise SystemExit(f"bench.pipeline: {exc}") from None
    await check_infrastructure(cfg)
    options = aiokafka_options(KafkaSettings.from_mapping(cfg.env))
    engine = create_async_engine(cfg.database_url)
    services = Services(cfg, args.logs, WHOLE_SYSTEM if args.with_notifier else PIPELINE)
    host = machine()
    try:
        measured = await measure(args, cfg, services, Observer(engine, options))
    finally:
        services.stop()
        await engine.dispose()
    return compose(args, measured, await ceilings(options, measured["events"]), services, host)


async def ceilings(options: dict[str, Any], events: list[Any]) -> dict[str, Any]:
    payloads = [(record.key, record.value) for record in events]
    pipelined = await passthrough(options, payloads, partitions=6)
    sequential = await passthrough(options, payloads[:SEQUENTIAL_PASSTHROUGH_RECORDS], partitions=6, mode="sequential")
    return {
        "pipelined_records_per_s": round(pipelined.records_per_s, 1),
        "sequential_records_per_s": round(sequential.records_per_s, 1),
        "records": pipelined.records,
        "mean_payload_bytes": round(sum(len(value) for _, value in payloads) / max(1, len(payloads))),
    }


def compose(
    args: argparse.Namespace, measured: dict[str, Any], ceiling: dict[str, Any], services: Services, host: Any
) -> dict[str, Any]:
    runs = measured["runs"]
    flood, at_rate = runs["flood"], runs[f"paced_{args.rate:g}"]
    latency = at_rate["signal_latency_ms_persisted"]
    end_to_end = flood["steady_records_per_s"] or flood["records_per_s"]
    ceiling_rate = ceiling["pipelined_records_per_s"]
    result: dict[str, Any] = {
        "end_to_end_records_per_s": end_to_end,
        "passthrough_records_per_s": ceiling_rate,
        "ratio": round(end_to_end / ceiling_rate, 4) if ceiling_rate else None,
        "p50_ms_at_200": latency["p50"],
        "p95_ms_at_200": latency["p95"],
        "p99_ms_at_200": latency["p99"] if at_rate["complete"] else None,
        "rss_mb": {name: round(mb, 1) for name, mb in sorted(services.peak_rss.items()) if name != SINK},
        "signals": flood["signals"],
        "processes": list(services.names),
        "rate": args.rate,
        "flood_cpu": {
            key: flood[key]
            for key in ("ingest_records_per_cpu_s", "rules_records_per_cpu_s", "pipeline_records_per_cpu_s")
        }
        | {"cpu_seconds": flood["cpu_seconds"]},
        "runs": runs,
        "passthrough": ceiling,
        "stream": {"records": measured["stream_records"], "seed": args.seed},
        "machine": {**host, "load_average_end": machine()["load_average"]},
    }
    result["floors"] = floors(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", default="test", help="devstack stack (default test; TRIALWATCH_ENV_FILE wins)")
    parser.add_argument("--records", type=int, default=20_000, help="stream length (default %(default)s)")
    parser.add_argument("--flood-seconds", type=float, default=60.0, help="flood run limit (default %(default)s)")
    parser.add_argument(
        "--warmup-records",
        type=int,
        default=40_000,
        help="records sent unmeasured first, in passes of the stream (a fresh Kafka broker spends seconds of "
        "CPU compiling its hot paths: 3.5 s in the first flood after a 5,000-record warm-up, 1.6 s in the "
        "third, about 1 s once warm) (default %(default)s; 0: none)",
    )
    parser.add_argument(
        "--with-notifier",
        action="store_true",
        help="run the notifier and its SMTP sink beside ingest and safety_rules, sharing the cores (the whole "
        "system; issue #4's pipeline ends at the signals persisted)",
    )
    parser.add_argument(
        "--broker-warmup-passes",
        type=int,
        default=3,
        help="after the first warm-up run, passthrough moves of its records through the broker, unmeasured: "
        "its JIT compiler is still busy for minutes after two pipeline passes (default %(default)s)",
    )
    parser.add_argument(
        "--floods",
        type=int,
        default=3,
        help="measured floods, each from an empty pipeline; the median one is reported (default %(default)s)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="paced rate, records/s (default %(default)s)")
    parser.add_argument("--paced-seconds", type=float, default=30.0, help="paced feed length (default %(default)s)")
    parser.add_argument("--cutoff-seconds", type=float, default=60.0, help="wait after a paced feed")
    parser.add_argument("--lanes", type=int, default=4, help="MLLP connections (HTTP clients: half)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("out/bench-pipeline/data"))
    parser.add_argument("--logs", type=Path, default=Path("out/bench-pipeline/logs"))
    parser.add_argument("--out", type=Path, default=Path("out/bench.json"))
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
