"""The corpus, and the live pipeline against `trialwatch replay` (issue #4; INTERFACES §3-§4).

- Fast (no infrastructure): replaying `tests/fixtures/corpus` fires every rule id of SAFETY_RULES
  §2-§5 at least once, retracts signals, and rejects exactly the records meant to be rejected. This
  guards the corpus (that it still exercises everything), not the engine.
- Integration: the corpus sent with `trialwatch send` (HL7 over MLLP, JSON over HTTP) to ingest,
  safety_rules and notifier running as real subprocesses on the test stack persists exactly the
  signals `trialwatch replay` prints for the same files in the same order, ids included (CLOCK-BREACH
  aside: live it follows the wall clock), and rejects as many records.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from faults import (
    Pipeline,
    Probe,
    difference,
    live_signals,
    migrated_pipeline,
    ndjson,
    opened_probe,
    replay,
    without_breaches,
)

from services.safety_rules.domain import select_study
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import PgTarget, Settings
from trialwatch.replay import replay as replay_streams

CORPUS = REPO_ROOT / "tests" / "fixtures" / "corpus"
REPORTS = REPO_ROOT / "out" / "reliability"
DRAIN_SECONDS = 180.0

#: Every rule of SAFETY_RULES §2-§5 (CLOCK-BREACH is a consequence of time, not of an input).
CHARTER_RULES = frozenset(
    {
        *("LAB-ANC-1", "LAB-ANC-2", "LAB-ANC-3", "LAB-ANC-4", "LAB-FN", "LAB-PLT-3", "LAB-PLT-4", "LAB-HGB-3"),
        *("LAB-LFT-3", "LAB-LFT-4", "LAB-HYS", "LAB-CREAT-2", "LAB-DQ"),
        *("AE-SI", "AE-INF-2", "AE-ANA", "AE-ISR-3", "AE-SAE", "ADH-EVAL"),
        *("H-DEATH", "H-ANA", "H-SI", "H-NEUT", "H-RSAE"),
        *("SPONSOR-24H", "IND-7D", "IND-15D"),
    }
)
#: The records the corpus means to be rejected (file:line of the record, INTERFACES §4).
REJECTED_SOURCES = frozenset(
    {
        *(f"29-malformed-records.ndjson:{line}" for line in (2, 3, 4, 6, 7, 8, 10)),
        *(f"30-malformed-hl7.hl7:{line}" for line in (7, 9, 14)),
        "31-rejected-patient-resource.json:1",
        "32-transaction-bundle-partial.json:#entry[1]",
    }
)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("[0-9][0-9]-*"))


def replay_corpus() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """In-process replay of the corpus in file order: (signals, rejections)."""
    stdout, stderr = io.BytesIO(), io.BytesIO()
    with ExitStack() as stack:
        inputs = [(path.name, stack.enter_context(path.open("rb"))) for path in corpus_files()]
        replay_streams(inputs, select_study(None, {}), stdout, stderr)
    return ndjson(stdout.getvalue()), ndjson(stderr.getvalue())


@pytest.fixture(autouse=True)
def infrastructure(request: pytest.FixtureRequest) -> None:
    """Overrides the directory's autouse fixture: only the integration test here needs Kafka and
    PostgreSQL (and fails without them); the corpus tests run anywhere (`make test-fast`)."""
    if request.node.get_closest_marker("integration"):
        request.getfixturevalue("cluster_info")
        request.getfixturevalue("postgres_ready")


@pytest.fixture(scope="module")
def corpus_replay() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return replay_corpus()


def test_the_corpus_has_thirty_ordered_inputs_each_described_in_its_readme() -> None:
    files = corpus_files()
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert len(files) >= 30
    assert [path.name for path in files if f"| {path.name} |" not in readme] == []


def test_replaying_the_corpus_fires_every_rule_of_the_charter(
    corpus_replay: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    signals, _ = corpus_replay
    raised = {signal["rule_id"] for signal in signals if signal["status"] == "RAISED"}
    assert sorted(CHARTER_RULES - raised) == []


def test_the_corpus_retracts_lab_and_adverse_event_signals(
    corpus_replay: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    signals, _ = corpus_replay
    retracted = {signal["rule_id"] for signal in signals if signal["status"] == "RETRACTED"}
    assert {"LAB-ANC-4", "LAB-PLT-3", "LAB-HGB-3", "AE-SAE"} <= retracted
    raised_ids = {signal["signal_id"] for signal in signals if signal["status"] == "RAISED"}
    assert all(s["retracts"] in raised_ids for s in signals if s["status"] == "RETRACTED")


def test_halting_rules_fire_again_after_a_dsmb_resume(
    corpus_replay: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    signals, _ = corpus_replay
    halts = Counter(signal["rule_id"] for signal in signals if signal["rule_id"].startswith("H-"))
    assert halts["H-NEUT"] >= 2 and halts["H-ANA"] >= 2


def test_the_corpus_rejects_exactly_its_malformed_records(
    corpus_replay: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    _, rejected = corpus_replay
    sources = [rejection["source"] for rejection in rejected]
    assert sorted(sources) == sorted(REJECTED_SOURCES)


# --- live ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(
    stack_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    cluster_info: ClusterInfo,
    postgres_ready: PgTarget,
) -> Iterator[Pipeline]:
    with migrated_pipeline(stack_settings, tmp_path_factory.mktemp("live-equals-replay")) as processes:
        yield processes


@pytest_asyncio.fixture(loop_scope="session")
async def probe(stack_settings: Settings) -> AsyncIterator[Probe]:
    async with opened_probe(stack_settings) as opened:
        yield opened


def report(name: str, figures: dict[str, Any]) -> None:
    """Figures for docs/reliability.md, kept in out/reliability/<name>.json (git-ignored)."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"\n{name}: {json.dumps(figures, default=str)}")


@pytest.mark.integration
async def test_live_signals_equal_replay_for_the_whole_corpus(pipeline: Pipeline, probe: Probe) -> None:
    files = corpus_files()
    pipeline.stop()
    await probe.reset()
    pipeline.start()
    started = time.monotonic()
    sent = pipeline.cli("send", *map(str, files))
    assert sent.returncode in (0, 65), sent.stderr.decode()[-3000:] + pipeline.logs()
    send_seconds = time.monotonic() - started
    drain_seconds = await probe.drained(pipeline, DRAIN_SECONDS)
    live = live_signals(pipeline)
    replayed, rejected = replay(pipeline, files)
    problem = difference(without_breaches(live), without_breaches(replayed))
    assert problem == "", problem + pipeline.logs()
    quarantined = await probe.scalar("SELECT count(*) FROM ingest.quarantine")
    assert quarantined == len(rejected), f"quarantine {quarantined}, replay rejected {len(rejected)}"
    refused = ndjson(b"\n".join(line for line in sent.stderr.splitlines() if line.startswith(b"{")))
    assert sorted(r["source"] for r in refused) == sorted(r["source"] for r in rejected)
    assert sent.returncode == 65, "some corpus records are malformed: send must say so"
    report(
        "live_equals_replay",
        {
            "files": len(files),
            "signals": len(without_breaches(live)),
            "clock_breaches_live": len(live) - len(without_breaches(live)),
            "rejected": len(rejected),
            "send_seconds": round(send_seconds, 2),
            "drain_seconds": round(drain_seconds, 2),
        },
    )
