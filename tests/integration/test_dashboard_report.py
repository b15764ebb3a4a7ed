"""`trialwatch report` against the live pipeline's database (issue #7): the corpus up to file 16 sent with
`trialwatch send` to ingest, safety_rules and notifier running as real subprocesses; the packet of a cut
taken then is byte-identical when printed again, also after more data arrived; and every number in its
halting table equals the live engine's: the H-SI signal's detail and the persisted study state."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from dashboard.live_rig import CORPUS, fresh_pipeline, pipeline, probe, send
from faults import Pipeline, Probe
from sqlalchemy import text

from shared.events import utc_iso

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "probe"]  # fixtures of dashboard.live_rig, used here by name

UP_TO_H_SI = sorted(CORPUS.glob("[0-1][0-6]-*"))
LATER = [CORPUS / "17-injection-site-isr.ndjson", CORPUS / "18-regulatory-submissions-reg.ndjson"]
WAIT_SECONDS = 120.0


async def rows(probe: Probe, sql: str) -> list[Any]:
    async with probe.engine.connect() as connection:
        return [row[0] for row in await connection.execute(text(sql))]


async def settled_h_si(probe: Probe, pipeline: Pipeline) -> dict[str, Any]:
    """The live H-SI signal once it is persisted and nothing is left in flight."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = await rows(probe, "SELECT payload FROM safety_rules.signal WHERE rule_id = 'H-SI'")
        if found and (await probe.in_flight()).total == 0:
            return dict(found[0])
        await asyncio.sleep(0.5)
    pytest.fail(f"no settled H-SI within {WAIT_SECONDS:.0f}s{pipeline.logs()}")


async def report(pipeline: Pipeline, cut: str, out: Path) -> str:
    process = await pipeline.cli_background("report", "--study", "ANAKINRA-AD", "--cut", cut, "--out", str(out))
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-3000:]
    return await asyncio.to_thread(out.read_text, encoding="utf-8")


def halting_cells(html: str, rule_id: str) -> dict[str, str]:
    row = re.search(rf'<tr id="halting-{rule_id}".*?</tr>', html, re.S)
    assert row is not None, rule_id
    return dict(re.findall(r'class="num (count|boundary|n|posterior)">([^<]*)<', row.group(0)))


def content_hash(html: str) -> str:
    found = re.search(r'<code id="content-hash">([0-9a-f]{64})</code>', html)
    assert found is not None
    return found.group(1)


async def test_report_of_a_cut_is_stable_and_its_halting_table_is_the_engines(
    pipeline: Pipeline, probe: Probe, tmp_path: Path
) -> None:
    await fresh_pipeline(pipeline, probe)
    await send(pipeline, *UP_TO_H_SI)
    h_si = await settled_h_si(probe, pipeline)
    cut = utc_iso((await rows(probe, "SELECT max(received_at) FROM ingest.raw_input"))[0])

    first = await report(pipeline, cut, tmp_path / "first.html")
    second = await report(pipeline, cut, tmp_path / "second.html")
    assert first == second

    detail = h_si["detail"]
    assert halting_cells(first, "H-SI") == {
        "count": str(detail["count"]),
        "n": str(detail["n"]),
        "boundary": str(detail["boundary"]),
        "posterior": f"{detail['posterior']:.6f}",
    }
    state = (await rows(probe, "SELECT state FROM safety_rules.study_state WHERE study_id = 'ANAKINRA-AD'"))[0]
    counted = {rule: len(subjects) for rule, subjects in state["counted"]}
    for rule_id in ("H-DEATH", "H-ANA", "H-SI", "H-NEUT", "H-RSAE"):
        cells = halting_cells(first, rule_id)
        assert (cells["count"], cells["n"]) == (str(counted.get(rule_id, 0)), str(len(state["dosed"]))), rule_id
    assert '<code id="input-hash">' in first

    await send(pipeline, *LATER)
    await asyncio.sleep(2)
    after_more_data = await report(pipeline, cut, tmp_path / "after.html")
    assert content_hash(after_more_data) == content_hash(first)
    later_cut = await report(pipeline, "2099-01-01T00:00:00Z", tmp_path / "later.html")
    assert content_hash(later_cut) != content_hash(first)
