"""The records fast path (`record_fast.usual_record`) gives exactly what the general path gives, or nothing.

- On usual records (the benchmark generator's EX, VS, AE and ISR, and the hand-written fixture records) it
  answers, with the general path's dedup key and events: the same fields, values and field order.
- On any record changed in one key (removed, or set to another JSON value of any type), it either answers
  exactly like the general path or leaves the record to it: it never accepts what the general path
  rejects, so every rejection keeps the general path's message (`test_ingest_records.py` pins those).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_builders import FIXTURES, make_config

from bench.generate import START, Generator
from services.ingest.domain.model import InputError
from services.ingest.domain.record_fast import usual_record
from services.ingest.domain.records import _events, parse_record

CONFIG = make_config()
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _generated(count: int) -> list[dict[str, Any]]:
    """Records of the benchmark's generator (seed 3; corrections and fevers included): the stream the
    fast path exists for."""
    out = io.BytesIO()
    Generator(seed=3, participants=40, span_days=60).ndjson(out, START, timedelta(days=60), count, first_doses=True)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def _fixture_records() -> list[dict[str, Any]]:
    lines = (FIXTURES / "all_domains.ndjson").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line.strip()]


def _same(data: dict[str, Any], received_at: datetime | None) -> bool:
    """Whether the fast path answered; when it did, assert it equals the general path."""
    usual = usual_record(data, CONFIG, received_at)
    if usual is None:
        return False
    key, events = _events(data, CONFIG, received_at)
    assert usual[0] == key
    assert [type(event) for event in usual[1]] == [type(event) for event in events]
    for fast, general in zip(usual[1], events, strict=True):
        assert list(fast.__dict__.items()) == list(general.__dict__.items())  # values and field order
        assert fast.model_dump_json() == general.model_dump_json()
    return True


def test_usual_generated_records_take_the_fast_path_and_equal_the_general_path() -> None:
    records = _generated(2_000)
    assert {record["DOMAIN"] for record in records} == {"EX", "VS", "AE", "ISR"}
    for record in records:
        assert _same(record, None), record
        assert _same(record, RECEIVED), record


def test_fixture_records_equal_the_general_path_when_taken() -> None:
    taken = [record["DOMAIN"] for record in _fixture_records() if _same(record, None)]
    assert {"EX", "VS", "AE", "ISR"} <= set(taken)


def test_other_domains_and_unusual_forms_are_left_to_the_general_path() -> None:
    dose = _generated(200)[0] | {"DOMAIN": "EX", "EXOCCUR": "Y", "EXDOSE": 10, "EXDOSU": "mg"}
    assert usual_record(dose, CONFIG, None) is not None
    for change in (
        {"DOMAIN": "DS"},
        {"RECID": 7},  # an integer RECID is valid, read by the general path
        {"EXDOSE": "10"},  # a numeric string too
        {"EXDOSE": 10.5},
        {"EXOCCUR": "y"},  # rejected by the general path, with its message
        {"STUDYID": "NOT-CONFIGURED"},
        {"EXSTDTC": "2026-13-01"},
    ):
        assert usual_record(dose | change, CONFIG, None) is None, change


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**9) | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["", "Y", "N", "1", "3", "6", "2026-02-04", "2026-02-04T10:00:00", "2026-02-04T10:00:00Z"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=3,
)  # fmt: skip
_SAMPLE = _generated(400)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SAMPLE), st.data())
def test_a_record_changed_in_one_key_is_read_like_the_general_path_or_left_to_it(
    record: dict[str, Any], data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from([*record, "RECEIVEDDTC", "AEENDTC", "AELLTCD", "ISRTOXGR", "AESDTH"]))
    changed = dict(record)
    if data.draw(st.booleans()):
        changed.pop(key, None)
    else:
        changed[key] = data.draw(_JSON_VALUES)
    try:
        _events(changed, CONFIG, None)
    except InputError:
        assert usual_record(changed, CONFIG, None) is None  # the general path rejects it, with its message
        assert type(parse_record(changed, CONFIG, origin="in:1")).__name__ == "Rejected"
        return
    _same(changed, None)
