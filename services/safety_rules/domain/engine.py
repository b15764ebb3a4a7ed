"""The rules engine: the canonical events of one source record in, the signals to emit out.

`Engine.process` is called once per source record (all events share its dedup_key); a record
already processed produces nothing. The record's events first update the participant's facts, then
every rule slot they touched is evaluated once and reconciled with the signal standing there, and
the study-level rules (halting counts, clocks) follow the changes. `Engine.advance_clock` raises
the CLOCK-BREACH signals due at `now` (replay: the latest recorded_at seen; live: the wall clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from services.safety_rules.domain import clinical_intake, halting
from services.safety_rules.domain.clocks import breach_signal
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.derivation import refresh_derived
from services.safety_rules.domain.lab_intake import apply_measurement
from services.safety_rules.domain.model import Batch, rule_context
from services.safety_rules.domain.reconcile import SlotChange, reconcile, requalify
from services.safety_rules.domain.registry import CLOCK_RULE_IDS, FAMILIES
from services.safety_rules.domain.retention import DEFAULT_HORIZON, prune_results
from services.safety_rules.domain.state import ParticipantState
from services.safety_rules.domain.store import StateStore
from services.safety_rules.domain.study_state import OpenClock, StudyState
from shared.events import ClinicalEvent, Signal
from shared.events.clinical import (
    AdverseEventReported,
    DoseRecorded,
    DsmbDecisionRecorded,
    InjectionSiteReported,
    LabResultRecorded,
    RegulatorySubmissionRecorded,
    VitalSignRecorded,
)


class Engine:
    """Participant- and study-level safety rules of one study, over a state store."""

    def __init__(self, config: StudyConfig, store: StateStore, *, horizon: timedelta = DEFAULT_HORIZON) -> None:
        self._config = config
        self._horizon = horizon  # recent results kept whatever they are (retention.py)
        self._evaluate = {name: family.evaluate for name, family in FAMILIES.items()}
        # the store's methods bound once: seven calls per record (replay calls `process` 80,000 times a run)
        self._is_processed, self._mark_processed = store.is_processed, store.mark_processed
        self._load_study, self._save_study = store.load_study, store.save_study
        self._load_participant, self._save_participant = store.load_participant, store.save_participant

    @property
    def config(self) -> StudyConfig:
        """The study configuration the engine applies."""
        return self._config

    def process(self, events: Sequence[ClinicalEvent]) -> list[Signal]:
        """The signals one source record raises or retracts (nothing for a processed dedup_key)."""
        if not events:
            return []
        first = events[0]
        dedup_key = first.dedup_key
        if self._is_processed(dedup_key):
            return []
        study_id = self._config.study_id
        study = self._load_study(study_id) or StudyState(study_id)
        subject_id = first.subject_id
        if len(events) == 1 and subject_id is not None and first.study_id == study_id:
            emitted = self._participant_record(study, subject_id, events, dedup_key)  # nearly every NDJSON record
        else:
            emitted = []
            for subject_id, group in _by_subject(study_id, events):
                if subject_id is None:
                    _apply_study_events(study, group)
                else:
                    emitted += self._participant_record(study, subject_id, group, dedup_key)
        self._mark_processed(dedup_key)
        self._save_study(study)
        return emitted

    def advance_clock(self, now: datetime) -> list[Signal]:
        """CLOCK-BREACH signals of the clocks whose due_at `now` has passed, each once."""
        study = self._load_study(self._config.study_id)
        if study is None or not study.due_heap or study.due_heap[0][0] >= now:
            return []  # nothing due: the common case, decided without popping (once per record in replay)
        overdue = study.pop_overdue(now)
        if overdue:
            self._save_study(study)
        return [breach_signal(self._config, clock) for clock in overdue]

    def _participant_record(
        self, study: StudyState, subject_id: str, events: Sequence[ClinicalEvent], dedup_key: str
    ) -> list[Signal]:
        config = self._config
        participant = self._load_participant(config.study_id, subject_id) or ParticipantState(subject_id)
        batch = Batch(dedup_key)
        for event in events:
            _apply_event(config, participant, study, batch, event)
        if batch.specimens:
            refresh_derived(config, participant, batch)
        context = rule_context(config, participant)
        emitted: list[Signal] = []
        evaluate, active = self._evaluate, participant.active
        for slot, touch in batch.touched.items():
            candidate = evaluate[slot[0]](context, slot[1])
            if candidate is None and slot not in active:
                continue
            signals, change = reconcile(context, slot, candidate, batch, touch)
            emitted += signals
            if change is not None:
                emitted += _study_effects(config, study, participant, change, dedup_key)
        if batch.dosing is not None:
            for change in requalify(context, batch.dosing):
                emitted += _study_effects(config, study, participant, change, dedup_key)
        if len(participant.results) > participant.prune_at:
            prune_results(config, participant, self._horizon)
        self._save_participant(config.study_id, participant)
        return emitted


def _by_subject(study_id: str, events: Sequence[ClinicalEvent]) -> list[tuple[str | None, list[ClinicalEvent]]]:
    """Events grouped by participant (a source record normally concerns one)."""
    subject_id = events[0].subject_id
    for event in events:
        if event.subject_id != subject_id or event.study_id != study_id:
            break
    else:
        return [(subject_id, list(events))]
    groups: dict[str | None, list[ClinicalEvent]] = {}
    for event in events:
        if event.study_id != study_id:
            raise ValueError(f"event {event.event_id} belongs to study {event.study_id}, not {study_id}")
        groups.setdefault(event.subject_id, []).append(event)
    return list(groups.items())


def _apply_study_events(study: StudyState, events: list[ClinicalEvent]) -> None:
    for event in events:
        if isinstance(event, DsmbDecisionRecorded) and event.decision == "RESUME":
            halting.resume(study, event.rule_id)


def _apply_event(
    config: StudyConfig, participant: ParticipantState, study: StudyState, batch: Batch, event: ClinicalEvent
) -> None:
    # Exact types, not `match`/isinstance: those go through pydantic's metaclass and cost microseconds per
    # event. Event classes are never subclassed. DispositionRecorded: no rule reads enrolment or withdrawal.
    if type(event) is LabResultRecorded or type(event) is VitalSignRecorded:
        apply_measurement(config, participant, batch, event)
    elif type(event) is DoseRecorded:
        clinical_intake.apply_dose(participant, study, batch, event)
    elif type(event) is AdverseEventReported:
        clinical_intake.apply_adverse_event(config, participant, batch, event)
    elif type(event) is InjectionSiteReported:
        clinical_intake.apply_injection_site(config, participant, batch, event)
    elif type(event) is RegulatorySubmissionRecorded:
        clinical_intake.apply_submission(study, participant.subject_id, event)
    elif type(event) is DsmbDecisionRecorded:
        _apply_study_events(study, [event])


def _study_effects(
    config: StudyConfig, study: StudyState, participant: ParticipantState, change: SlotChange, dedup_key: str
) -> list[Signal]:
    """Clocks follow their signals; halting counts follow the participant's qualifying signals."""
    if change.removed is not None and change.removed.rule_id in CLOCK_RULE_IDS:
        study.stop_clock(change.removed.signal_id)
    candidate, added = change.candidate, change.added
    if added is not None and candidate is not None and candidate.day0 and candidate.due_at:
        ae_id = change.slot[1]
        clock = OpenClock(
            added.signal_id,
            added.rule_id,
            participant.subject_id,
            ae_id,
            candidate.day0,
            candidate.due_at,
            added.evidence,
        )
        study.open_clock(clock)
    gained, lost = halting.update_support(participant, change.slot, change.qualified_before, change.qualified_after)
    for rule_id in lost:
        halting.uncount_participant(study, rule_id, participant.subject_id)
    emitted: list[Signal] = []
    trigger = (dedup_key, change.touch.observed_at)
    for rule_id in gained:
        evidence = participant.active[change.slot].evidence
        signal = halting.count_participant(
            config, study, rule_id, subject_id=participant.subject_id, evidence=evidence, trigger=trigger
        )
        if signal is not None:
            emitted.append(signal)
    return emitted
