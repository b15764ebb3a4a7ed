"""The DSMB packet without a database: the corpus parsed as `trialwatch replay` parses it, grouped into
records, evaluated and rendered. Same input -> byte-identical packet and content hash; the halting
table shows exactly the figures of the engine's own H-SI signal (SAFETY_RULES §4: 0.934 for 2 of 7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
import pytest

from dashboard.plan_factory import anakinra_plan
from services.ingest.domain import Parsed, ParserConfig, parse_stream
from services.safety_rules.domain import select_study
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.report.evaluation import evaluate
from trialwatch.report.render import render_packet
from trialwatch.report.snapshot import Snapshot, group_records, input_hash
from trialwatch.report.tables import shift_table

CORPUS = REPO_ROOT / "tests" / "fixtures" / "corpus"
CUT = datetime(2026, 12, 1, tzinfo=UTC)


def corpus_snapshot(last: str) -> Snapshot:
    config = select_study(None, {})
    parser = ParserConfig(study_ids=frozenset({config.study_id}), default_study_id=config.study_id)
    rows = []
    for path in sorted(CORPUS.glob("[0-9][0-9]-*")):
        if path.name > last:
            break
        for result in parse_stream(path.read_bytes(), parser, name=path.name):
            if isinstance(result, Parsed) and not result.non_production:
                rows += [(event.dedup_key, orjson.loads(event.model_dump_json())) for event in result.events]
    return Snapshot(config.study_id, CUT, group_records(rows), input_hash(rows))


@pytest.fixture(scope="module")
def through_16() -> tuple[str, str, list[dict[str, object]]]:
    config = select_study(None, {})
    snapshot = corpus_snapshot("16-~")
    evaluation = evaluate(config, snapshot)
    packet = render_packet(config, anakinra_plan(), snapshot, evaluation)
    h_si = [s.to_public() for s in evaluation.signals if s.rule_id == "H-SI"]
    return packet.html, packet.content_hash, h_si


def cell(html: str, rule_id: str, column: str) -> str:
    row = re.search(rf'<tr id="halting-{rule_id}".*?</tr>', html, re.S)
    assert row is not None, rule_id
    found = re.search(rf'class="num {column}">([^<]*)<', row.group(0))
    assert found is not None, (rule_id, column)
    return found.group(1)


def test_the_same_cut_renders_byte_identical_packets(through_16: tuple[str, str, list[dict[str, object]]]) -> None:
    html, content_hash, _ = through_16
    config = select_study(None, {})
    snapshot = corpus_snapshot("16-~")
    again = render_packet(config, anakinra_plan(), snapshot, evaluate(config, snapshot))
    assert (again.html, again.content_hash) == (html, content_hash)
    assert f'<code id="content-hash">{content_hash}</code>' in html


def test_more_data_changes_the_input_and_content_hashes(through_16: tuple[str, str, list[dict[str, object]]]) -> None:
    _, content_hash, _ = through_16
    config = select_study(None, {})
    later = corpus_snapshot("23-~")
    assert render_packet(config, anakinra_plan(), later, evaluate(config, later)).content_hash != content_hash


def test_halting_table_shows_the_engines_h_si_figures(through_16: tuple[str, str, list[dict[str, object]]]) -> None:
    html, _, h_si = through_16
    assert len(h_si) == 1  # corpus README: file 16 brings the 2nd serious infection on treatment
    detail = h_si[0]["detail"]
    assert isinstance(detail, dict)
    assert cell(html, "H-SI", "count") == str(detail["count"]) == "2"
    assert cell(html, "H-SI", "n") == str(detail["n"])
    assert cell(html, "H-SI", "boundary") == str(detail["boundary"]) == "2"
    assert cell(html, "H-SI", "posterior") == f"{detail['posterior']:.6f}"


def test_the_packet_is_self_contained(through_16: tuple[str, str, list[dict[str, object]]]) -> None:
    html, _, _ = through_16
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and html.count("<svg") >= 2
    for section in ("accrual", "exposure", "adverse-events", "sae", "lab-shifts", "stopping-rules", "primary-endpoint"):
        assert f'id="{section}"' in html


def test_dates_in_the_packet_are_utc_with_z(through_16: tuple[str, str, list[dict[str, object]]]) -> None:
    html, _, _ = through_16
    assert '<td id="cut">2026-12-01T00:00:00Z</td>' in html


def test_neutrophil_shift_table_of_the_corpus_matches_the_hand_count() -> None:
    # Baselines (2026-01-08, before the 2026-01-12 first doses) are all >= 3.1 with LLN 1.8: G0. Worst after
    # (CTCAE v5.0, SAFETY_RULES §1, §6): AD-001 1.6 < LLN -> G1; AD-002 1.2 -> G2; AD-003 0.8 and AD-006 0.735
    # -> G3; AD-004 "<0.5" -> G4; AD-005 (1.7 without limits is undetermined, 2.4 -> G0) and AD-007 4.4 -> G0.
    # AD-008 has no first dose, so no post-baseline value.
    config = select_study(None, {})
    table = shift_table(config, evaluate(config, corpus_snapshot("16-~")), "NEUT")
    assert table.counts == {("G0", "G0"): 2, ("G0", "G1"): 1, ("G0", "G2"): 1, ("G0", "G3"): 2, ("G0", "G4"): 1}
