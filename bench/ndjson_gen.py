"""Synthetic TrialWatch NDJSON records (INTERFACES §1.3): DOMAIN AE, EX, ISR and VS.

Most records are benign; a few fire participant-level rules (SAFETY_RULES §3): infection AEs of grade 2
(AE-INF-2) or 3 (AE-SI), serious AEs (AE-SAE and its reporting clocks), ulcerated injection sites (AE-ISR-3),
participants who miss many doses (ADH-EVAL) and fevers (LAB-FN with a low ANC nearby).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bench.hl7_gen import STUDY_ID, Participant

Record = dict[str, Any]

# (verbatim term, AEDECOD, AESOC, MedDRA PT code)
_OTHER_AES = (
    ("headache", "Headache", "Nervous system disorders", 10019211),
    ("felt sick", "Nausea", "Gastrointestinal disorders", 10028813),
    ("loose stools", "Diarrhea", "Gastrointestinal disorders", 10012727),
    ("joint pain", "Arthralgia", "Musculoskeletal and connective tissue disorders", 10003239),
    ("eczema flare", "Eczema", "Skin and subcutaneous tissue disorders", 10014184),
)
_INFECTIONS = (
    ("runny nose and sore throat", "Upper respiratory infection", "Infections and infestations", 10046306),
    ("infected eczema", "Skin infection", "Infections and infestations", 10040872),
    ("ear infection", "Otitis media", "Infections and infestations", 10033078),
)
_SITES = ("THIGH LEFT", "THIGH RIGHT", "ABDOMEN", "ARM LEFT", "ARM RIGHT")
# share of the NDJSON records per domain (the first-dose EX records come on top, at the start)
DOMAINS = ("EX", "VS", "AE", "ISR")
DOMAIN_WEIGHTS = (0.35, 0.30, 0.20, 0.15)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


class RecordMaker:
    """Builds one record per call; remembers per-participant counters (dose numbers, record ids)."""

    def __init__(self, rng: random.Random, people: list[Participant]) -> None:
        self.rng = rng
        self.people = people
        self.serial: dict[str, int] = {}
        # 1 % of participants skip most doses, so ADH-EVAL (19 missed dose dates) fires for them
        self.poor_adherence = {p.subject_id for p in people if rng.random() < 0.01}
        self.firing = 0  # records built to fire a rule

    def _base(self, domain: str, subject: Participant) -> Record:
        number = self.serial.get(domain + subject.subject_id, 0) + 1
        self.serial[domain + subject.subject_id] = number
        recid = f"{domain}-{subject.subject_id[3:]}-{number:04d}"
        return {"DOMAIN": domain, "STUDYID": STUDY_ID, "USUBJID": subject.subject_id, "RECID": recid}

    def make(self, domain: str, subject: Participant, moment: datetime) -> Record:
        builders: dict[str, Callable[[Participant, datetime], Record]] = {
            "EX": self.dose,
            "VS": self.temperature,
            "AE": self.adverse_event,
            "ISR": self.injection_site,
        }
        return builders[domain](subject, moment)

    def dose(self, subject: Participant, moment: datetime, *, given: bool | None = None) -> Record:
        if given is None:
            miss = 0.45 if subject.subject_id in self.poor_adherence else 0.03
            given = self.rng.random() >= miss
        record = self._base("EX", subject)
        dose = round(subject.weight_kg * 3) if given else 0
        record.update(EXOCCUR="Y" if given else "N", EXDOSE=dose, EXDOSU="mg", EXSTDTC=iso(moment))
        return record

    def temperature(self, subject: Participant, moment: datetime) -> Record:
        record = self._base("VS", subject)
        fever = self.rng.random() < 0.02
        celsius = self.rng.uniform(38.4, 39.6) if fever else self.rng.uniform(36.2, 37.5)
        self.firing += fever
        if self.rng.random() < 0.05:
            record.update(VSTESTCD="TEMP", VSORRES=f"{celsius * 9 / 5 + 32:.1f}", VSORRESU="F")
        else:
            record.update(VSTESTCD="TEMP", VSORRES=f"{celsius:.1f}", VSORRESU="C")
        record["VSDTC"] = iso(moment)
        return record

    def adverse_event(self, subject: Participant, moment: datetime) -> Record:
        rng = self.rng
        record = self._base("AE", subject)
        infection = rng.random() < 0.30
        term, decod, soc, code = rng.choice(_INFECTIONS if infection else _OTHER_AES)
        roll = rng.random()
        grade = (3 if roll < 0.05 else 2 if roll < 0.30 else 1) if infection else (2 if roll < 0.2 else 1)
        serious = rng.random() < 0.01
        self.firing += serious or (infection and grade >= 2)
        record.update(
            AETERM=term,
            AEDECOD=decod,
            AEPTCD=code,
            AESOC=soc,
            AETOXGR=str(max(grade, 3 if serious else 1)),
            AESER="Y" if serious else "N",
            AEREL="POSSIBLY RELATED" if rng.random() < 0.1 else "NOT RELATED",
            AEOUT="RECOVERING/RESOLVING",
            AESTDTC=moment.date().isoformat(),
            RECEIVEDDTC=iso(moment + timedelta(hours=rng.randint(2, 30))) + "Z",
        )
        if serious:
            record["AESHOSP"] = "Y"
        return record

    def injection_site(self, subject: Participant, moment: datetime) -> Record:
        rng = self.rng
        record = self._base("ISR", subject)
        ulcer = rng.random() < 0.02
        self.firing += ulcer
        record.update(
            ISRDTC=iso(moment),
            ISRLOC=rng.choice(_SITES),
            ISRERYTH="Y",
            ISRITCH="Y" if rng.random() < 0.5 else "N",
            ISRPAIN="Y" if rng.random() < 0.2 else "N",
            ISRERYMM=rng.randint(5, 60),
        )
        if ulcer:
            record["ISRULCER"] = "Y"
        return record

    def correct(self, record: Record) -> Record:
        """The same RECID with new content: an AE re-graded (1 <-> 3) or a temperature re-measured."""
        updated = dict(record)
        if updated["DOMAIN"] == "AE":
            updated["AETOXGR"] = "1" if updated["AETOXGR"] in {"2", "3"} else "3"
        elif updated["DOMAIN"] == "VS":
            fever = float(updated["VSORRES"]) < (38.0 if updated["VSORRESU"] == "C" else 100.4)
            celsius = self.rng.uniform(38.5, 39.5) if fever else self.rng.uniform(36.4, 37.2)
            updated.update(VSORRES=f"{celsius:.1f}", VSORRESU="C")
        else:
            updated["ISRULCER"] = "N" if updated.get("ISRULCER") == "Y" else "Y"
        return updated
