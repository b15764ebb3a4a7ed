"""Age at collection (INTERFACES §1.1: keep the age at collection, never the date of birth).

The date of birth (HL7 PID-7) is read only to compute the subject's age on the day a specimen was collected;
it is never put on an event, and the stored raw copy has it blanked (`hl7_redact`). The age is given the way
SDTM gives AGE with AGEU, as completed units, in the unit paediatric practice uses for that age: YEARS from two
years, MONTHS from one month, DAYS below.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

AgeUnit = Literal["YEARS", "MONTHS", "DAYS"]
_MONTHS_UNTIL = 2  # years: below this age, completed months


def birth_date(pid7: str) -> date | None:
    """The date of a PID-7 `YYYYMMDD[...]` (time and offset ignored); None when absent, partial
    (`YYYY`, `YYYYMM`: no age in days or months could be honest) or impossible."""
    digits = pid7.split("^", 1)[0].strip()[:8]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def age_at(born: date, collected_at: datetime) -> tuple[int, AgeUnit] | None:
    """Completed years (from 2 years), else completed months (from 1 month), else days, on the (UTC)
    collection day; None when the collection precedes the birth."""
    day = collected_at.date()
    if day < born:
        return None
    before_birthday = (day.month, day.day) < (born.month, born.day)
    years = day.year - born.year - before_birthday
    if years >= _MONTHS_UNTIL:
        return years, "YEARS"
    months = (day.year - born.year) * 12 + day.month - born.month - (day.day < born.day)
    if months >= 1:
        return months, "MONTHS"
    return (day - born).days, "DAYS"
