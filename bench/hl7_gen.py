"""Synthetic HL7 v2.5.1 ORU^R01 lab messages (INTERFACES §1.1) for the replay benchmark.

One message = MSH, PID (two PID-3 repetitions, fake PID-5 name / PID-7 DOB / PID-11 address to exercise
blanking), PV1, one OBR (OBR-3 filler order number, OBR-7 collection time) and 7-12 OBX with units, OBX-7
reference ranges, OBX-8 flags and OBX-11 status. Three laboratories report in three unit systems.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple

STUDY_ID = "ANAKINRA-AD"


class LabTest(NamedTuple):
    """One analyte in US units: reference range, the normal values drawn, and a rule-firing range."""

    loinc: str
    name: str
    kind: str
    low: float
    high: float
    normal: tuple[float, float]
    abnormal: tuple[float, float] | None
    decimals: int


TESTS: tuple[LabTest, ...] = (
    LabTest("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "count", 4.5, 13.5, (5.0, 9.0), None, 1),
    LabTest(
        "751-8", "Neutrophils [#/volume] in Blood by Automated count", "count", 1.8, 8.0, (2.0, 6.0), (0.5, 1.45), 2
    ),
    LabTest("770-8", "Neutrophils/100 leukocytes in Blood by Automated count", "pct", 40, 75, (45.0, 65.0), None, 1),
    LabTest("777-3", "Platelets [#/volume] in Blood by Automated count", "count", 150, 450, (180, 400), (26, 49), 0),
    LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "hgb", 11.5, 15.5, (12.0, 15.0), (6.5, 7.8), 1),
    LabTest("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "count", 1.0, 4.8, (1.5, 3.5), None, 2),
    LabTest(
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "enzyme",
        5,
        40,
        (10, 35),
        (210, 700),
        0,
    ),
    LabTest(
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "enzyme",
        10,
        40,
        (15, 35),
        None,
        0,
    ),
    LabTest("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "bili", 0.1, 1.2, (0.3, 0.9), None, 1),
    LabTest(
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "enzyme",
        100,
        400,
        (150, 300),
        None,
        0,
    ),
    LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "creat", 0.4, 1.0, (0.6, 0.78), (1.6, 2.2), 2),
    LabTest("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "rbc", 4.0, 5.2, (4.2, 5.0), None, 2),
    LabTest("787-2", "MCV [Entitic volume] by Automated count", "mcv", 78, 98, (80, 95), None, 0),
)
RULE_TESTS: tuple[int, ...] = tuple(i for i, test in enumerate(TESTS) if test.abnormal is not None)

# kind -> (OBX-6 unit, factor from US units, decimals or None for the test's own)
Units = dict[str, tuple[str, float, int | None]]
_UNITS_US: Units = {
    "count": ("10*3/uL", 1.0, None),
    "hgb": ("g/dL", 1.0, None),
    "bili": ("mg/dL", 1.0, None),
    "enzyme": ("U/L", 1.0, None),
}
_UNITS_SI: Units = {
    "count": ("10*9/L", 1.0, None),
    "hgb": ("g/L", 10.0, 0),
    "bili": ("umol/L", 17.1, 0),
    "enzyme": ("IU/L", 1.0, None),
}
_UNITS_K: Units = {
    "count": ("K/uL", 1.0, None),
    "hgb": ("g/dL", 1.0, None),
    "bili": ("mg/dL", 1.0, None),
    "enzyme": ("U/L", 1.0, None),
}
_COMMON: Units = {
    "pct": ("%", 1.0, None),
    "creat": ("mg/dL", 1.0, None),
    "rbc": ("10*6/uL", 1.0, None),
    "mcv": ("fL", 1.0, None),
}
FACILITIES: tuple[tuple[str, Units], ...] = (
    ("NIHCC-LAB", _UNITS_US | _COMMON),
    ("CHOP-LAB", _UNITS_SI | _COMMON),
    ("BCH-LAB", _UNITS_K | _COMMON),
)
_FIRST = ("Jane", "Maya", "Liam", "Noah", "Emma", "Olivia", "Ethan", "Ava", "Lucas", "Mia")
_LAST = ("Doe", "Roe", "Smith", "Garcia", "Nguyen", "Khan", "Okafor", "Rossi", "Meyer", "Silva")


@dataclass(frozen=True, slots=True)
class Participant:
    subject_id: str
    facility: int
    mrn: str
    name: str
    dob: str
    sex: str
    weight_kg: int


def make_participants(rng: random.Random, count: int, start: datetime) -> list[Participant]:
    people = []
    for number in range(1, count + 1):
        birth = start - timedelta(days=rng.randint(10 * 365 + 3, 17 * 365))
        people.append(
            Participant(
                f"AD-{number:04d}",
                number % len(FACILITIES),
                f"MR{700000 + number * 7}",
                f"{rng.choice(_LAST)}^{rng.choice(_FIRST)}^Q",
                birth.strftime("%Y%m%d"),
                rng.choice("FM"),
                rng.randint(30, 70),
            )
        )
    return people


@dataclass(frozen=True, slots=True)
class LabMessage:
    """What a message says, kept (a few at a time) so it can be re-sent or corrected later."""

    subject: Participant
    control_id: str
    filler: str
    collected: datetime
    sent: datetime
    results: tuple[tuple[int, float, str], ...]  # (test index, US value, OBX-11 status)


def hl7_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def new_message(rng: random.Random, subject: Participant, number: int, collected: datetime, fire: bool) -> LabMessage:
    """A fresh message of 7-12 results; with `fire`, one rule test gets a value that fires its rule."""
    chosen = set(rng.sample(range(len(TESTS)), rng.randint(7, 12)))
    hot = rng.choice(RULE_TESTS) if fire else -1
    if fire:
        chosen.add(hot)
    results = tuple((i, _draw(rng, i, abnormal=i == hot), "F") for i in sorted(chosen))
    filler = f"FO-{number:08d}"
    sent = collected + timedelta(minutes=rng.randint(20, 240))
    return LabMessage(subject, f"LAB{number:09d}", filler, collected, sent, results)


def corrected(rng: random.Random, original: LabMessage, number: int, sent: datetime) -> LabMessage:
    """A new message (new MSH-10, same OBR-3) whose one result is corrected (OBX-11 C): normal <-> abnormal."""
    rule_slots = [k for k, (i, _, _) in enumerate(original.results) if TESTS[i].abnormal is not None]
    k = rng.choice(rule_slots) if rule_slots else 0
    results = list(original.results)
    index, value, _ = results[k]
    test = TESTS[index]
    was_abnormal = test.abnormal is not None and not test.normal[0] <= value <= test.normal[1]
    results[k] = (index, _draw(rng, index, abnormal=not was_abnormal and test.abnormal is not None), "C")
    return replace(original, control_id=f"LAB{number:09d}", sent=max(sent, original.sent), results=tuple(results))


def _draw(rng: random.Random, index: int, *, abnormal: bool) -> float:
    test = TESTS[index]
    low, high = test.abnormal if abnormal and test.abnormal else test.normal
    return round(rng.uniform(low, high), test.decimals)


def render(message: LabMessage) -> bytes:
    """ER7 text with `\\r` segment terminators."""
    subject = message.subject
    facility, units = FACILITIES[subject.facility]
    collected = hl7_time(message.collected)
    segments = [
        f"MSH|^~\\&|LIS|{facility}|TRIALWATCH|NIAID|{hl7_time(message.sent)}||ORU^R01^ORU_R01|"
        f"{message.control_id}|P|2.5.1",
        f"PID|1||{subject.mrn}^^^{facility}^MR~{subject.subject_id}^^^{STUDY_ID}^SUBJ||{subject.name}||"
        f"{subject.dob}|{subject.sex}|||12 Elm St^^Bethesda^MD^20892||^PRN^PH^^^301^5550100",
        "PV1|1|O|CC^OP^1",
        f"OBR|1|PL{message.filler[3:]}|{message.filler}^LIS|TW-SAFETY^Safety labs panel^L|||{collected}"
        f"|||||||||||||||{hl7_time(message.sent)}||HM|{'C' if any(r[2] == 'C' for r in message.results) else 'F'}",
    ]
    for set_id, (index, value, status) in enumerate(message.results, 1):
        test = TESTS[index]
        unit, factor, decimals = units[test.kind]
        places = test.decimals if decimals is None else decimals
        flag = "L" if value < test.low else "H" if value > test.high else "N"
        low, high = _fmt(test.low * factor, places), _fmt(test.high * factor, places)
        segments.append(
            f"OBX|{set_id}|NM|{test.loinc}^{test.name}^LN||{_fmt(value * factor, places)}|{unit}|{low}-{high}"
            f"|{flag}|||{status}|||{collected}"
        )
    return ("\r".join(segments) + "\r").encode()


def _fmt(value: float, places: int) -> str:
    return f"{value:.{places}f}"
