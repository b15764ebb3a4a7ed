"""The parser's fast paths give exactly what its general paths give (the speed of issue #3, not new behaviour).

- HL7: `usual_lab_event` (the common OBX built straight into its event) = `read_observation` + `result_event`.
- HL7 times: `YYYYMMDDHHMM[SS]` through the C ISO parser = the general TS/DTM reader.
- Events built without validation serialise byte for byte like validated ones (field order included).
- `ParserConfig(keep_raw=False)` (replay) changes nothing but the absent raw copy; `event_ids=False` (replay)
  nothing but the empty event ids.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_builders import FIXTURES, make_config, obx, oru, parsed

from services.ingest.domain import Parsed, ParserConfig, parse_hl7_message, parse_stream
from services.ingest.domain.context import RecordContext
from services.ingest.domain.hl7_header import read_header
from services.ingest.domain.hl7_results import observation_profile, read_observation, read_order, usual_lab_event
from services.ingest.domain.results import result_event
from services.ingest.domain.times import _hl7_time_general, _iso_time_general, hl7_time, iso_time
from shared.events import CLINICAL_EVENT_ADAPTER, Event

CONFIG = make_config()
CORPUS = FIXTURES.parent / "corpus"

LOINC_UNITS = [
    ("751-8", "10*3/uL"),
    ("751-8", "K/uL"),
    ("751-8", "10^9/L"),
    ("718-7", "g/dL"),
    ("718-7", "g/L"),
    ("1975-2", "mg/dL"),
    ("1975-2", "umol/L"),
    ("1742-6", "IU/L"),
    ("2160-0", "mg/dL"),
    ("751-8", "furlongs"),
    ("751-8", ""),
    ("8310-5", "[degF]"),
]
VALUES = st.one_of(
    st.decimals(min_value=-1000, max_value=100000, allow_nan=False, places=3).map(str),
    st.sampled_from(["", " 4.2 ", "<0.5", "1e3", "1_000", "NaN", "abc", "-0", "0.000"]),
)
STATUSES = st.sampled_from(["F", "C", "P", "D", "W", "X", "N", "U", "Q", "", " F"])


def _obx_fields(segment: str) -> list[str]:
    fields = segment.split("|")
    return fields + [""] * (15 - len(fields))


@settings(max_examples=200, deadline=None)
@given(
    loinc_unit=st.sampled_from(LOINC_UNITS),
    value=VALUES,
    status=STATUSES,
    value_type=st.sampled_from(["NM", "ST", "SN", ""]),
    ref=st.sampled_from(["", "1.5-8.0", ">40", "<0.5", "x-y"]),
    collected=st.sampled_from(["20260302080000", ""]),
)
def test_usual_lab_event_equals_the_general_path(
    *, loinc_unit: tuple[str, str], value: str, status: str, value_type: str, ref: str, collected: str
) -> None:
    loinc, unit = loinc_unit
    message = oru(collected=collected)
    segments = message.split("\r")
    header = read_header(segments[0])
    order = read_order(segments[2], header, 1)
    context = RecordContext("ANAKINRA-AD", "AD-001", "HL7:NIHCC-LAB:CTRL-1", header.sent_at)
    fields = _obx_fields(obx("1", loinc, value, unit, ref, status=status, value_type=value_type))
    terminology = CONFIG.terminology
    profile = observation_profile(terminology, fields[3], fields[6], fields[7], "^")
    assert profile is not None
    source = "HL7:NIHCC-LAB:CTRL-1:1"
    fast = usual_lab_event(fields, order, profile, terminology, context, source=source, ordinal=1)
    general = result_event(context, read_observation(fields, header, order, profile, terminology), source, 1)
    if fast is not None:
        assert fast.model_dump_json() == general.model_dump_json()
        assert fast == general
    else:  # declined: something about the result is unusual
        assert (
            value_type != "NM"
            or status not in terminology.hl7_status  # empty: OBR-25 decides; else a data issue
            or not collected
            or general.kind != "lab.result"
            or general.value is None
            or general.data_issue is not None
        )


def test_the_fast_path_takes_the_usual_result() -> None:
    segments = oru().split("\r")
    header = read_header(segments[0])
    order = read_order(segments[2], header, 1)
    context = RecordContext("ANAKINRA-AD", "AD-001", "HL7:NIHCC-LAB:CTRL-1", header.sent_at)
    fields = _obx_fields(obx("1", "718-7", "13.4", "g/dL", "11.5-15.5"))
    profile = observation_profile(CONFIG.terminology, fields[3], fields[6], fields[7], "^")
    assert profile is not None
    event = usual_lab_event(fields, order, profile, CONFIG.terminology, context, source="HL7:X:1", ordinal=1)
    assert event is not None
    assert (str(event.value), event.unit, str(event.ref_low), str(event.ref_high)) == ("134.0", "g/L", "115.0", "155.0")


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789", min_size=12, max_size=12) | st.text("0123456789", min_size=14, max_size=14))
def test_hl7_time_fast_path_equals_the_general_reader(digits: str) -> None:
    found = hl7_time(digits)
    assert found == _hl7_time_general(digits)
    assert found is None or found.tzinfo is UTC


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))  # noqa: DTZ001
def test_hl7_time_fast_path_reads_valid_times(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    seconds = f"{moment.year:04d}{moment:%m%d%H%M%S}"
    assert hl7_time(seconds) == moment.replace(tzinfo=UTC) == _hl7_time_general(seconds)
    assert hl7_time(seconds[:12]) == moment.replace(second=0, tzinfo=UTC)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="0123456789-T:+Z.W ", min_size=8, max_size=21)
    | st.datetimes().map(lambda moment: moment.isoformat(timespec="seconds"))
    | st.dates().map(date.isoformat)
)
def test_iso_time_of_the_usual_naive_forms_equals_the_general_reader(text: str) -> None:
    fast, general = iso_time(text), _iso_time_general(text)
    assert fast == general
    if fast is not None and general is not None:
        assert (fast.tzinfo, fast.isoformat()) == (general.tzinfo, general.isoformat())


def test_the_usual_naive_forms_are_utc() -> None:
    assert iso_time("2026-02-04T00:18:24") == datetime(2026, 2, 4, 0, 18, 24, tzinfo=UTC)
    assert iso_time("2026-02-04") == datetime(2026, 2, 4, tzinfo=UTC)
    assert iso_time("2026-02-04T01:18+01") == datetime(2026, 2, 4, 0, 18, tzinfo=UTC)  # 19 characters, an offset
    assert iso_time("2026-02-04T01+01:00") == datetime(2026, 2, 4, 0, 0, tzinfo=UTC)
    assert iso_time("2026-02-30") is None


def test_unusual_digits_take_the_general_reader() -> None:
    fullwidth = "２０２６０３０２０８００"  # Unicode digits: not ASCII, so the general reader decides as before
    assert hl7_time(fullwidth) == _hl7_time_general(fullwidth) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert hl7_time("20260302080000") == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert hl7_time("20260230080000") is None


def _all_results(config: ParserConfig) -> list[tuple[str, Parsed | object]]:
    results: list[tuple[str, Parsed | object]] = []
    for path in sorted([*FIXTURES.iterdir(), *CORPUS.iterdir()]):
        if path.suffix != ".md":
            results += [(path.name, result) for result in parse_stream(path.read_bytes(), config, name=path.name)]
    return results


def _events(config: ParserConfig) -> list[Event]:
    return [event for _, result in _all_results(config) if isinstance(result, Parsed) for event in result.events]


def test_constructed_events_serialise_exactly_like_validated_ones() -> None:
    events = _events(CONFIG)
    assert len({event.kind for event in events}) == 8
    for event in events:
        validated = CLINICAL_EVENT_ADAPTER.validate_json(event.model_dump_json())
        assert event.model_dump_json() == validated.model_dump_json()  # the same keys in the same order
        assert list(event.__dict__) == list(type(event).model_fields)


def test_without_raw_copies_only_the_raw_copy_is_missing() -> None:
    kept = _all_results(CONFIG)
    not_kept = _all_results(dataclasses.replace(CONFIG, keep_raw=False))
    assert len(kept) == len(not_kept) > 100
    for (name, with_raw), (_, without) in zip(kept, not_kept, strict=True):
        if isinstance(with_raw, Parsed):
            assert isinstance(without, Parsed), name
            assert with_raw.raw_redacted is not None
            assert without == with_raw._replace(raw_redacted=None), name
        else:
            assert without == with_raw, name  # a rejection keeps its (blanked) copy either way


def test_without_event_ids_only_the_event_ids_are_empty() -> None:
    with_ids = _all_results(CONFIG)
    without_ids = _all_results(dataclasses.replace(CONFIG, event_ids=False))
    assert len(with_ids) == len(without_ids) > 100
    for (name, with_id), (_, without) in zip(with_ids, without_ids, strict=True):
        if isinstance(with_id, Parsed):
            assert isinstance(without, Parsed), name
            assert [event.event_id for event in without.events] == [""] * len(with_id.events), name
            assert all(event.event_id for event in with_id.events), name
            blanked = [event.model_copy(update={"event_id": ""}) for event in with_id.events]
            assert without == with_id._replace(events=blanked), name
        else:
            assert without == with_id, name


def test_replay_mode_hl7_keeps_no_identifier_anywhere() -> None:
    config = dataclasses.replace(CONFIG, keep_raw=False)
    result = parsed(parse_hl7_message(oru(obx("1", "751-8", "0.9")), config, origin="f:1"))
    dumped = orjson.dumps(
        [result.source, result.key, result.raw_redacted, *(e.model_dump(mode="json") for e in result.events)]
    )
    assert result.raw_redacted is None
    for identifier in (b"Doe", b"Jane", b"20110704", b"Elm St", b"555-0100"):
        assert identifier not in dumped
