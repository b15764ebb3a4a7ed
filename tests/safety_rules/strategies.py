"""Hypothesis strategies: streams of source records of one participant around the rule limits."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .factories import DOSE_DAY, T0, Record, ae, dose, hours, isr, lab, temp

LAB_VALUES = {
    "NEUT": ["0.3", "0.5", "0.8", "1.0", "1.2", "1.6", "2.5", "150", None],
    "WBC": ["1.5", "2.0", "6.0", None],
    "NEUTLE": ["30", "40", "60"],
    "NEUTBLE": ["5", "10"],
    "PLAT": ["20", "30", "60", "250"],
    "ALT": ["30", "120", "250", "900"],
    "BILI": ["10", "41", "45"],
    "ALP": ["90", "250"],
    "CREAT": ["50", "130"],
}
ULN = {"ALT": 40, "BILI": 20, "ALP": 100, "CREAT": 80}


@st.composite
def lab_record(draw: st.DrawFn, subject: str, recid: str) -> Record:
    test = draw(st.sampled_from(sorted(LAB_VALUES)))
    value = draw(st.sampled_from(LAB_VALUES[test]))
    slot = draw(st.integers(0, 5))
    status = draw(st.sampled_from(["final", "final", "final", "corrected", "deleted", "preliminary"]))
    options: dict[str, Any] = {"uln": ULN.get(test), "lln": "2.0" if test == "NEUT" else None}
    if value is None:
        options["data_issue"] = "non-numeric value"
    return lab(test, value, recid=recid, subject=subject, at=T0 + hours(12 * slot), status=status, **options)


@st.composite
def temperature_record(draw: st.DrawFn, subject: str, recid: str) -> Record:
    value = draw(st.sampled_from(["37.0", "38.0", "38.4", "39.5"]))
    offset = draw(st.integers(-4, 70))
    status = draw(st.sampled_from(["final", "final", "deleted"]))
    return temp(value, recid=recid, subject=subject, at=T0 + hours(offset), status=status)


@st.composite
def adverse_event_record(draw: st.DrawFn, subject: str, recid: str) -> Record:
    ae_id = f"{subject}-AE-{draw(st.integers(0, 2))}"
    coding = draw(
        st.sampled_from(
            [
                {"soc": "Infections and infestations"},
                {"meddra": "10002218"},
                {"meddra": "10001718"},
                {"decod": "Headache"},
                {"decod": "Seizure"},
                {"meddra": "10022095"},
            ]
        )
    )
    criteria = draw(st.sampled_from([{}, {"AESHOSP": True}, {"AESLIFE": True}, {"AESDTH": True}]))
    return ae(
        ae_id,
        "verbatim",
        subject=subject,
        grade=draw(st.sampled_from([None, 1, 2, 3, 5])),
        criteria=criteria,
        causality=draw(st.sampled_from([None, "POSSIBLY RELATED", "NOT RELATED"])),
        version=int(recid.rsplit("-", 1)[1]),
        **coding,
    )


@st.composite
def other_record(draw: st.DrawFn, subject: str, recid: str) -> Record:
    if draw(st.booleans()):
        day = draw(st.integers(-3, 25))
        return dose(DOSE_DAY + hours(24 * day), given=draw(st.booleans()), subject=subject, recid=recid)
    findings = draw(st.lists(st.sampled_from(["ERYTH", "PAIN", "ULCER", "NECR"]), max_size=2, unique=True))
    return isr(recid, findings, subject=subject)


@st.composite
def participant_stream(draw: st.DrawFn, subject: str, max_size: int = 14) -> list[Record]:
    """Records of one participant, each with its own RECID."""
    size = draw(st.integers(1, max_size))
    kinds = [lab_record, lab_record, temperature_record, adverse_event_record, other_record]
    return [draw(draw(st.sampled_from(kinds))(subject, f"{subject}-{index}")) for index in range(size)]
