"""The trial as dated transmissions (pure and seeded: the same scenario and start date give the same bytes).

Routine conduct of the protocol: staggered enrolment, run-in, daily doses from the diary (some missed),
injection-site reports, lab visits (CBC with differential and chemistry, paediatric ranges), temperatures at
visits, background non-serious AEs and completion. `episodes` adds what makes a scenario: it changes the
participants' course (held or stopped doses, abnormal results) and sends its own messages.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from trialwatch.simulate.messages import (
    CBC_PANEL,
    CBC_TESTS,
    CHEMISTRY_PANEL,
    LabMessage,
    LabResult,
    Specimen,
    iso,
    record,
    record_key,
)
from trialwatch.simulate.scenario import Scenario

Format = Literal["hl7v2", "fhir", "records"]
DAYS_PER_YEAR = 365.25
AT = {"collect": timedelta(hours=8), "lab_sent": timedelta(hours=11), "dose": timedelta(hours=7, minutes=30)}


@dataclass(frozen=True)
class Transmission:
    """One message as a source system sends it; ``at`` is when it is sent (the data clock)."""

    at: datetime
    study_day: int
    fmt: Format
    payload: bytes
    subject_id: str | None
    what: str
    evidence: tuple[str, ...] = ()
    serious: bool = False  # a serious AE: the run waits until its clocks have reached the safety officer
    after_alerts: tuple[str, ...] = ()  # sent only once the alerts about these source keys have gone out


@dataclass(frozen=True)
class Visit:
    name: str
    day: int  # from the first dose
    overrides: dict[str, float] = field(default_factory=dict)
    cbc_only: bool = False


@dataclass
class Participant:
    subject_id: str
    number: int
    enrolled: int  # study day
    run_in_days: int
    visits: list[Visit] = field(default_factory=list)
    held: set[int] = field(default_factory=set)  # participant days whose dose is held (recorded as missed)
    stopped_after: int | None = None  # treatment discontinued after this participant day
    born: date | None = None  # sent as PID-7 by the lab; TrialWatch keeps only the age at collection

    @property
    def first_dose(self) -> int:
        return self.enrolled + self.run_in_days

    def study_day(self, day: int) -> int:
        return self.first_dose + day

    def visit(self, name: str) -> Visit:
        return next(visit for visit in self.visits if visit.name == name)

    def override(self, name: str, values: dict[str, float]) -> None:
        index = self.visits.index(self.visit(name))
        old = self.visits[index]
        self.visits[index] = Visit(old.name, old.day, {**old.overrides, **values}, old.cbc_only)


def slug(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", text.upper()).strip("-")


def participants(scenario: Scenario) -> dict[str, Participant]:
    protocol = scenario.protocol
    prefix = protocol.get("subject_prefix", "AD")
    visits = [Visit(item["visit"], item["day"]) for item in protocol["lab_visits"]]
    youngest, oldest = protocol.get("ages", (10, 18))
    ages = random.Random(f"{scenario.seed}:ages")  # its own generator: the other draws stay as they were
    found: dict[str, Participant] = {}
    for index in range(protocol["participants"]):
        subject = f"{prefix}-{index + 1:03d}"
        enrolled = index * protocol["enrolment_interval_days"]
        age_days = ages.randint(round(youngest * DAYS_PER_YEAR), round(oldest * DAYS_PER_YEAR) - 1)
        born = scenario.day_start(enrolled).date() - timedelta(days=age_days)
        found[subject] = Participant(subject, index + 1, enrolled, protocol["run_in_days"], list(visits), born=born)
    return found


class Planner:
    """Builds the routine transmissions of every participant; one seeded generator, drawn in a fixed order."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.tests = scenario.tests
        self.study = scenario.study_id

    def time(self, study_day: int, offset: timedelta) -> datetime:
        return self.scenario.day_start(study_day) + offset

    def lab_message(
        self, person: Participant, visit: Visit, *, status: str = "F", only: dict[str, float] | None = None
    ) -> LabMessage:
        """The visit's ORU^R01: a CBC specimen and a chemistry specimen (or only the ``only`` results)."""
        day = person.study_day(visit.day)
        base = f"{person.subject_id}-{slug(visit.name)}"
        specimens = []
        for panel, codes, tag in ((CBC_PANEL, CBC_TESTS, "CBC"), (CHEMISTRY_PANEL, None, "CHEM")):
            chosen = [code for code in self.tests if (code in CBC_TESTS) == (codes is not None)]
            if only is not None:
                values = {code: only[code] for code in chosen if code in only}
            elif tag == "CHEM" and visit.cbc_only:
                values = {}
            else:
                values = {code: visit.overrides.get(code, self.normal(code)) for code in chosen}
            results = [LabResult(self.tests[code], value, status) for code, value in values.items()]
            if results:
                specimens.append(Specimen(f"{base}-{tag}", panel, results))
        return LabMessage(
            self.scenario.facility,
            base,
            self.study,
            person.subject_id,
            person.born,
            self.time(day, AT["lab_sent"]),
            self.time(day, AT["collect"]),
            specimens,
        )

    def normal(self, code: str) -> float:
        test = self.tests[code]
        return round(self.rng.uniform(*test.typical), test.decimals)

    def lab(self, person: Participant, visit: Visit, message: LabMessage, what: str = "") -> Transmission:
        day = person.study_day(visit.day)
        label = what or f"labs {visit.name}"
        return Transmission(
            message.sent_at, day, "hl7v2", message.er7(), person.subject_id, label, tuple(message.evidence())
        )

    def records(
        self,
        person: Participant,
        sent: datetime,
        domain: str,
        record_id: str,
        what: str,
        **fields: object,
    ) -> Transmission:
        payload = record(domain, self.study, record_id, sent, USUBJID=person.subject_id, **fields)
        study_day = (sent - self.scenario.day_start(0)).days
        return Transmission(
            sent, study_day, "records", payload, person.subject_id, what, (record_key(self.study, domain, record_id),)
        )

    def routine(self, person: Participant) -> list[Transmission]:
        sent: list[Transmission] = [self.enrolment(person)]
        for visit in person.visits:
            sent.append(self.lab(person, visit, self.lab_message(person, visit)))
            sent.append(self.temperature(person, visit))
        sent += self.dosing(person)
        sent.append(self.completion(person))
        return sent

    def enrolment(self, person: Participant) -> Transmission:
        return self.disposition(person, person.enrolled, 1, "ENROLLED")

    def completion(self, person: Participant) -> Transmission:
        return self.disposition(person, person.study_day(max(visit.day for visit in person.visits)), 2, "COMPLETED")

    def disposition(self, person: Participant, day: int, number: int, decision: str) -> Transmission:
        """A DS record, entered by the site at 16:00 for an event of the morning."""
        what = "enrolled" if decision == "ENROLLED" else "completed the study"
        record_id, started = f"DS-{person.number:03d}-{number}", iso(self.time(day, timedelta(hours=10)))
        sent = self.time(day, timedelta(hours=16))
        return self.records(person, sent, "DS", record_id, what, DSDECOD=decision, DSSTDTC=started)

    def temperature(self, person: Participant, visit: Visit) -> Transmission:
        day = person.study_day(visit.day)
        value = f"{self.rng.uniform(36.4, 37.2):.1f}"
        return self.records(
            person,
            self.time(day, timedelta(hours=11, minutes=30)),
            "VS",
            f"VS-{person.number:03d}-{slug(visit.name)}",
            "temperature",
            VSTESTCD="TEMP",
            VSORRES=value,
            VSORRESU="C",
            VSDTC=iso(self.time(day, timedelta(hours=8, minutes=10))),
        )

    def dosing(self, person: Participant) -> list[Transmission]:
        """The diary: one EX record a day of treatment, and now and then an injection-site report."""
        protocol = self.scenario.protocol
        missed_p = protocol.get("missed_dose_probability", 0.0)
        isr_p = protocol.get("injection_site_report_probability", 0.0)
        sent: list[Transmission] = []
        last = protocol["treatment_days"] - 1 if person.stopped_after is None else person.stopped_after
        for day in range(0, min(last, protocol["treatment_days"] - 1) + 1):
            study_day, taken = person.study_day(day), day not in person.held and self.rng.random() >= missed_p
            diary = self.time(study_day, timedelta(hours=21))
            dose = protocol["dose"] if taken else {}
            extra = {"EXDOSE": dose["amount"], "EXDOSU": dose["unit"]} if dose else {}
            sent.append(
                self.records(
                    person,
                    diary,
                    "EX",
                    f"EX-{person.number:03d}-{day + 1:03d}",
                    "dose" if taken else "dose missed",
                    EXOCCUR="Y" if taken else "N",
                    EXSTDTC=iso(self.time(study_day, AT["dose"])),
                    **extra,
                )
            )
            if taken and self.rng.random() < isr_p:
                sent.append(self.injection_site(person, day, diary))
        return sent

    def injection_site(self, person: Participant, day: int, diary: datetime) -> Transmission:
        study_day = person.study_day(day)
        findings = {"ISRERYTH": "Y", "ISRITCH": "Y" if self.rng.random() < 0.5 else "N"}
        return self.records(
            person,
            diary,
            "ISR",
            f"ISR-{person.number:03d}-{day + 1:03d}",
            "injection-site report",
            ISRDTC=iso(self.time(study_day, timedelta(hours=19))),
            ISRLOC="ABDOMEN",
            ISRERYMM=self.rng.randint(5, 30),
            **findings,
        )
