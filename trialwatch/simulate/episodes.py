"""What makes a scenario: each episode kind changes the participants' course and sends its own messages.

The clinical consequences (which rule fires) are the system's business: nothing here knows a threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from trialwatch.simulate.messages import adverse_event_resource, ae_record_fields, iso, record, record_key
from trialwatch.simulate.plan import AT, Participant, Planner, Transmission, Visit
from trialwatch.simulate.scenario import Scenario, duration

Episode = dict[str, Any]
People = dict[str, Participant]
DEFAULT_REPORTED_AFTER = "1d"
ONSET = timedelta(hours=14)


def neutropenia(planner: Planner, people: People, episode: Episode) -> list[Transmission]:
    """A low ANC at a visit: doses held, a repeat count, then recovery and dosing again."""
    person = people[episode["subject"]]
    visit = person.visit(episode["visit"])
    person.override(visit.name, {"NEUT": episode["anc"], "WBC": round(episode["anc"] + 2.1, 1)})
    person.held |= set(range(visit.day + 1, visit.day + 1 + episode["hold_days"]))
    for name, after, anc in (
        ("repeat", episode["repeat_after_days"], episode["repeat_anc"]),
        ("recovery", episode["recovery_after_days"], episode["recovery_anc"]),
    ):
        extra = Visit(f"{visit.name} {name}", visit.day + after, {"NEUT": anc, "WBC": round(anc + 2.2, 1)}, True)
        person.visits.append(extra)
    return []


def lab_correction(planner: Planner, people: People, episode: Episode) -> list[Transmission]:
    """A result reported wrongly, then corrected by the lab (OBX-11 C, same specimen) days later."""
    person = people[episode["subject"]]
    test = episode["test"]
    person.override(episode["visit"], {test: episode["reported"]})
    visit = person.visit(episode["visit"])
    original = planner.lab_message(person, visit, status="C", only={test: episode["corrected"]})
    corrected = dataclasses.replace(
        original,
        control_id=original.control_id + "-C1",
        sent_at=original.sent_at + timedelta(days=episode["corrected_after_days"], hours=-2),
    )
    what = f"{test} corrected {episode['reported']} → {episode['corrected']}"
    # The lab finds its error after the alarming value was phoned through: the correction follows the alert
    # about the reported result (whichever OBX of the visit's message it was).
    reported = tuple(f"HL7:{original.facility}:{original.control_id}:{n}" for n in range(1, len(planner.tests) + 1))
    return [dataclasses.replace(planner.lab(person, visit, corrected, what), after_alerts=reported)]


def malformed_lab(planner: Planner, people: People, episode: Episode) -> list[Transmission]:
    """A message the lab system garbles: ingest must reject it with a reason, and carry on."""
    person = people[episode["subject"]]
    visit = person.visit(episode["visit"])
    message = planner.lab_message(person, visit, only={"NEUT": planner.normal("NEUT")})
    broken = dataclasses.replace(
        message,
        control_id="" if episode["defect"] == "missing_control_id" else message.control_id + "-X",
        subject_id="" if episode["defect"] == "missing_subject" else message.subject_id,
        sent_at=message.sent_at + timedelta(minutes=5),
    )
    return [planner.lab(person, visit, broken, f"malformed lab message ({episode['defect'].replace('_', ' ')})")]


def adverse_event(planner: Planner, people: People, episode: Episode) -> list[Transmission]:
    """An AE from the EDC (NDJSON record or FHIR AdverseEvent); a fever with it; treatment may stop."""
    person, ae = people[episode["subject"]], episode["ae"]
    study_day = person.study_day(episode["day"])
    onset = planner.time(study_day, ONSET)
    reported = onset + duration(episode.get("reported_after", DEFAULT_REPORTED_AFTER))
    number = 1 + sum(
        1
        for other in planner.scenario.episodes
        if _is_ae(other)
        and other is not episode
        and other["subject"] == person.subject_id
        and other["day"] < episode["day"]
    )
    what = f"AE {ae['decoded']} grade {ae['grade']}" + (" serious" if ae["serious"] else "")
    if episode["channel"] == "fhir":
        resource_id = f"ae-{person.number:03d}-{number}"
        payload = adverse_event_resource(ae, resource_id, person.subject_id, onset, reported)
        evidence = (f"FHIR:AdverseEvent/{resource_id}/_history/1",)
        sent = [Transmission(reported, study_day, "fhir", payload, person.subject_id, what, evidence, ae["serious"])]
    else:
        record_id = f"AE-{person.number:03d}-{number}"
        payload = record("AE", planner.study, record_id, reported, **ae_record_fields(ae, person.subject_id, onset))
        evidence = (record_key(planner.study, "AE", record_id),)
        sent = [Transmission(reported, study_day, "records", payload, person.subject_id, what, evidence, ae["serious"])]
    if "fever_celsius" in ae:
        sent.append(
            planner.records(
                person,
                reported,
                "VS",
                f"VS-{person.number:03d}-AE{number}",
                "fever",
                VSTESTCD="TEMP",
                VSORRES=f"{ae['fever_celsius']:.1f}",
                VSORRESU="C",
                VSDTC=iso(onset + timedelta(hours=1)),
            )
        )
    if episode.get("discontinue"):
        person.stopped_after = episode["day"]
    return sent


def dsmb_decision(planner: Planner, people: People, episode: Episode) -> list[Transmission]:
    day = episode["study_day"]
    number = 1 + sum(
        1 for other in planner.scenario.episodes if other["kind"] == "dsmb_decision" and other["study_day"] < day
    )
    record_id = f"DSMB-{number:03d}"
    fields: dict[str, Any] = {"DSMBDEC": episode["decision"], "DSMBDTC": iso(planner.time(day, timedelta(hours=9)))}
    if "rule" in episode:
        fields["DSMBRULE"] = episode["rule"]
    sent = planner.time(day, timedelta(hours=17))
    payload = record("DSMB", planner.study, record_id, sent, **fields)
    what = f"DSMB decision {episode['decision']}" + (f" ({episode['rule']})" if "rule" in episode else "")
    return [Transmission(sent, day, "records", payload, None, what, (record_key(planner.study, "DSMB", record_id),))]


def _is_ae(episode: Episode) -> bool:
    return episode["kind"] in ("adverse_event", "serious_infection", "susar")


EPISODES: dict[str, Callable[[Planner, People, Episode], list[Transmission]]] = {
    "neutropenia": neutropenia,
    "lab_correction": lab_correction,
    "malformed_lab": malformed_lab,
    "adverse_event": adverse_event,
    "serious_infection": adverse_event,
    "susar": adverse_event,
    "dsmb_decision": dsmb_decision,
}


def resend(sent: list[Transmission], episode: Episode) -> list[Transmission]:
    """The lab re-sends every message of a study day unchanged (same MSH-10): duplicates."""
    after = timedelta(days=episode["resent_after_days"], hours=-2)
    again = [item for item in sent if item.fmt == "hl7v2" and item.study_day == episode["study_day"]]
    return [
        dataclasses.replace(
            item,
            at=item.at + after,
            study_day=item.study_day + episode["resent_after_days"],
            what=f"{item.what} re-sent",
        )
        for item in again
    ]


def mild_events(planner: Planner, people: People) -> list[Transmission]:
    """Background non-serious AEs, each to a participant and treatment day drawn from the seed."""
    sent: list[Transmission] = []
    subjects = sorted(people)
    for index, ae in enumerate(planner.scenario.protocol.get("mild_adverse_events", [])):
        subject = subjects[planner.rng.randrange(len(subjects))]
        day = planner.rng.randrange(1, planner.scenario.protocol["treatment_days"])
        person = people[subject]
        onset = planner.time(person.study_day(day), ONSET)
        record_id = f"AE-{person.number:03d}-M{index + 1}"
        payload = record(
            "AE", planner.study, record_id, onset + timedelta(hours=20), **ae_record_fields(ae, subject, onset)
        )
        sent.append(
            Transmission(
                onset + timedelta(hours=20),
                person.study_day(day),
                "records",
                payload,
                subject,
                f"AE {ae['decoded']} grade {ae['grade']}",
                (record_key(planner.study, "AE", record_id),),
            )
        )
    return sent


def build(scenario: Scenario) -> list[Transmission]:
    """Every transmission of the scenario, in sending order (time, then the order they were made)."""
    from trialwatch.simulate.plan import participants  # noqa: PLC0415 - keeps plan free of episodes

    planner = Planner(scenario)
    people = participants(scenario)
    sent: list[Transmission] = []
    for episode in scenario.episodes:
        if episode["kind"] != "lab_resend":
            sent += EPISODES[episode["kind"]](planner, people, episode)
    for person in people.values():
        person.visits.sort(key=lambda visit: visit.day)
        sent += planner.routine(person)
    sent += mild_events(planner, people)
    for episode in scenario.episodes:
        if episode["kind"] == "lab_resend":
            sent += resend(sent, episode)
    order = {id(item): index for index, item in enumerate(sent)}
    return sorted(sent, key=lambda item: (item.at, order[id(item)]))


__all__ = ["AT", "EPISODES", "build"]
