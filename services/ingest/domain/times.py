"""Timestamps of every input family, normalised to aware UTC datetimes (INTERFACES §1.3, §3).

A time without an offset is UTC; a date-only value is midnight UTC. Both parsers lean on the C ISO 8601
parser (`datetime.fromisoformat`): most timestamps are unique to their record, so caching them costs more
than it saves. The general HL7 reader, for the rarer forms (offsets, fractions, dates), is cached; the usual
`YYYYMMDDHHMM[SS]` takes `_hl7_time_without_offset` (a test pins it equal to the general reader).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone

_HL7_DIGITS = frozenset((8, 10, 12, 14))
_FAST_LENGTHS = frozenset((12, 14))


def _offset(text: str) -> timezone | None:
    """HL7 `+/-ZZZZ` offset; None when malformed."""
    if len(text) != 5 or not text[1:].isdigit():
        return None
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    if minutes >= 24 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))


def _split_offset(text: str) -> tuple[str, str]:
    for index in range(8, len(text)):
        if text[index] in "+-":
            return text[:index], text[index:]
    return text, ""


def hl7_time(text: str) -> datetime | None:
    """HL7 v2.5.1 TS/DTM `YYYYMMDD[HH[MM[SS[.S...]]]][+/-ZZZZ]` as aware UTC; None when not such a time.

    Only the first component is read (TS.1; TS.2 "degree of precision" is deprecated).
    """
    if len(text) in _FAST_LENGTHS and text.isdigit() and text.isascii():
        return _hl7_time_without_offset(text)
    return _hl7_time_general(text)


def _hl7_time_without_offset(digits: str) -> datetime | None:
    """`YYYYMMDDHHMM` or `YYYYMMDDHHMMSS` (ASCII digits only), UTC; None for an impossible date or time."""
    try:
        return datetime.fromisoformat(
            f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}T{digits[8:10]}:{digits[10:12]}:{digits[12:14] or '00'}+00:00"
        )
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)
def _hl7_time_general(text: str) -> datetime | None:
    value, offset_text = _split_offset(text.split("^", 1)[0].strip())
    digits, _, fraction = value.partition(".")
    if len(digits) not in _HL7_DIGITS or not digits.isdigit() or not (fraction.isdigit() or not fraction):
        return None
    if fraction and len(digits) != 14:
        return None
    zone = _offset(offset_text) if offset_text else UTC
    if zone is None:
        return None
    try:
        moment = datetime(
            int(digits[0:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10] or 0),
            int(digits[10:12] or 0),
            int(digits[12:14] or 0),
            int((fraction + "000000")[:6]),
            tzinfo=zone,
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # day 31 of a 30-day month; year 1 shifted before year 1
        return None
    return moment


def _reduced_precision(text: str) -> datetime | None:
    """ISO 8601 reduced precision `YYYY-MM` or `YYYY` (allowed in SDTM --DTC): its first instant, UTC."""
    parts = text.split("-")
    if len(text) not in (4, 7) or not all(part.isdigit() for part in parts) or len(parts[0]) != 4:
        return None
    try:
        return datetime(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, 1, tzinfo=UTC)
    except ValueError:
        return None


#: The usual naive forms by length (`YYYY-MM-DDTHH:MM:SS`, `YYYY-MM-DD`) and what makes them UTC.
_UTC_SUFFIXES = {19: "+00:00", 10: "T00:00:00+00:00"}


def iso_time(text: str) -> datetime | None:
    """ISO 8601 date or date-time as aware UTC (no offset = UTC, date only = midnight); None if invalid.

    The usual naive forms are parsed with their UTC offset appended (a quarter of the time of parsing,
    then attaching UTC): the C parser takes the first sign of the time part as its offset, so the text
    with a suffix parses only when the text is itself naive, and then means the same instant. Anything
    else takes `_iso_time_general` (a test pins the two equal).
    """
    suffix = _UTC_SUFFIXES.get(len(text))
    if suffix is not None:
        try:
            return datetime.fromisoformat(text + suffix)
        except ValueError:
            pass
    return _iso_time_general(text)


def _iso_time_general(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _reduced_precision(text)
    if moment.tzinfo is None:  # `combine`: `replace(tzinfo=UTC)` costs more than parsing the text
        return datetime.combine(moment.date(), moment.time(), UTC)
    if moment.tzinfo is UTC:  # `Z` or +00:00
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None
