"""Per-participant state of the rules engine: plain dataclasses with `to_json` / `from_json`.

The in-memory store keeps these objects as they are; the live service keeps `to_json()` in a
PostgreSQL JSONB column written in the same transaction as the processed key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from services.safety_rules.domain.results import LabValue, Series

#: A rule slot: (rule family, anchor) - a result key, an AE id, a diary report, the participant.
Slot = tuple[str, str]


def _slot_text(slot: Slot) -> str:
    return "|".join(slot)


def _slot_from(text: str) -> Slot:
    family, anchor = text.split("|", 1)
    return family, anchor


def utc_date(moment: datetime) -> date:
    """The UTC calendar date of an aware time (dates compare at date precision, SAFETY_RULES §6)."""
    if moment.tzinfo is UTC:  # every parsed time: no conversion to make
        return moment.date()
    return moment.astimezone(UTC).date()


@dataclass(slots=True)
class AeFacts:
    """What the rules need of the current version of one adverse event (SAFETY_RULES §3, §6)."""

    ae_id: str
    source: str
    onset: datetime
    recorded_at: datetime
    term: str
    grade: int | None
    # from here on: what `adverse_events.classify` derives from the coded fields (built positionally there)
    soc: str | None
    criteria: tuple[str, ...]
    infection: bool
    serious: bool
    fatal: bool
    life_threatening: bool
    related: bool
    expected: bool
    anaphylaxis: bool


@dataclass(slots=True)
class InjectionSiteFacts:
    """An injection-site reaction: a diary report (graded from findings unless sent) or an ISR AE."""

    anchor: str
    source: str
    at: datetime
    grade: int | None
    from_findings: bool
    findings: tuple[str, ...]


@dataclass(slots=True)
class DoseFact:
    """One exposure record: when, and whether the dose was given (EXOCCUR)."""

    at: datetime
    given: bool
    source: str


def _note_missed(missed: dict[date, DoseFact], dose: DoseFact) -> None:
    """Keep the earliest (time, source) missed-dose record of the dose's date."""
    day = utc_date(dose.at)
    earlier = missed.get(day)
    if earlier is None or (dose.at, dose.source) < (earlier.at, earlier.source):
        missed[day] = dose


@dataclass(slots=True)
class ActiveSignal:
    """A raised, not retracted signal of one rule slot, and what it depends on."""

    signal_id: str
    rule_id: str
    evidence: tuple[str, ...]
    used: tuple[str, ...]
    event_at: datetime
    flags: tuple[str, ...] = ()
    qualifies: tuple[str, ...] = ()


def _facts_json(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in obj.__slots__:
        value = getattr(obj, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
        if isinstance(value, tuple):
            data[name] = list(value)
    return data


def _facts_from(cls: type[Any], data: dict[str, Any], times: tuple[str, ...]) -> Any:
    values = {
        name: datetime.fromisoformat(value) if name in times else tuple(value) if isinstance(value, list) else value
        for name, value in data.items()
    }
    return cls(**values)


@dataclass(slots=True)
class ParticipantState:
    """Everything the rules remember about one participant."""

    subject_id: str
    results: dict[str, LabValue] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    anchors: dict[str, Series] = field(default_factory=dict)
    specimens: dict[str, dict[str, str]] = field(default_factory=dict)
    adverse_events: dict[str, AeFacts] = field(default_factory=dict)
    injection_sites: dict[str, InjectionSiteFacts] = field(default_factory=dict)
    doses: dict[str, DoseFact] = field(default_factory=dict)
    active: dict[Slot, ActiveSignal] = field(default_factory=dict)
    support: dict[str, set[Slot]] = field(default_factory=dict)
    users: dict[str, set[Slot]] = field(default_factory=dict)
    first_dose: date | None = None
    first_dose_start: datetime | None = None
    baselines: dict[str, LabValue | None] = field(default_factory=dict)
    # Bookkeeping of `retention.prune_results`: the latest collection time stored, and the size of
    # `results` at which to prune next (both persisted, so that live prunes where replay does).
    latest_at: datetime | None = None
    prune_at: int = 0
    # The earliest missed-dose record of each distinct date (ADH-EVAL), kept with the doses (rebuilt on load).
    missed: dict[date, DoseFact] = field(default_factory=dict)

    def series_of(self, test: str) -> Series:
        """The time index of a test (created on first use)."""
        found = self.series.get(test)
        if found is None:
            found = self.series[test] = Series()
        return found

    def anchors_of(self, name: str) -> Series:
        """Results that may anchor a composite rule (named by the rule), by time."""
        found = self.anchors.get(name)
        if found is None:
            found = self.anchors[name] = Series()
        return found

    def record_dose(self, dose: DoseFact) -> None:
        """Keep an exposure record; a new record updates the first dose and the missed dates in place, a
        changed one (same source) rebuilds them."""
        replaced = dose.source in self.doses
        self.doses[dose.source] = dose
        if replaced:
            self.refresh_first_dose()
            return
        if dose.given:
            day = utc_date(dose.at)
            if self.first_dose is None or day < self.first_dose:
                self._set_first_dose(day)
        else:
            _note_missed(self.missed, dose)

    def refresh_first_dose(self) -> None:
        """First dose = the earliest exposure record with the dose given (SAFETY_RULES §1); missed dates rebuilt."""
        given = [dose.at for dose in self.doses.values() if dose.given]
        self._set_first_dose(utc_date(min(given)) if given else None)
        self.missed.clear()
        for dose in self.doses.values():
            if not dose.given:
                _note_missed(self.missed, dose)

    def _set_first_dose(self, day: date | None) -> None:
        if day != self.first_dose or self.first_dose_start is None:
            self.baselines.clear()  # BASE depends on the first-dose date
        self.first_dose = day
        self.first_dose_start = None if day is None else datetime.combine(day, time.min, UTC)

    def note_time(self, at: datetime) -> None:
        """Keep `latest_at` current with a stored result's collection time."""
        if self.latest_at is None or at > self.latest_at:
            self.latest_at = at

    def before_first_dose(self, moment: datetime) -> bool:
        """Whether a time is on a date before the first-dose date (a possible baseline)."""
        return self.first_dose_start is None or moment < self.first_dose_start

    def to_json(self) -> dict[str, Any]:
        """JSON object for the persistent state store (`users`, first dose, baselines are rebuilt)."""
        return {
            "subject_id": self.subject_id,
            "results": [value.to_json() for value in self.results.values()],
            "specimens": {specimen: dict(parts) for specimen, parts in self.specimens.items()},
            "anchors": {name: [[at.isoformat(), key] for at, key in s.entries()] for name, s in self.anchors.items()},
            "adverse_events": [_facts_json(ae) for ae in self.adverse_events.values()],
            "injection_sites": [_facts_json(isr) for isr in self.injection_sites.values()],
            "doses": [_facts_json(dose) for dose in self.doses.values()],
            "active": {_slot_text(slot): _facts_json(signal) for slot, signal in self.active.items()},
            "support": {rule: sorted(map(_slot_text, slots)) for rule, slots in self.support.items()},
            "latest_at": None if self.latest_at is None else self.latest_at.isoformat(),
            "prune_at": self.prune_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParticipantState:
        """Inverse of `to_json`."""
        specimens = {specimen: dict(parts) for specimen, parts in data["specimens"].items()}
        latest = data["latest_at"]
        state = cls(data["subject_id"], specimens=specimens, prune_at=data["prune_at"])
        state.latest_at = None if latest is None else datetime.fromisoformat(latest)
        for item in data["results"]:
            value = LabValue.from_json(item)
            state.results[value.key] = value
            if value.status != "preliminary":
                state.series_of(value.test).add(value.at, value.key)
        for item in data["adverse_events"]:
            ae = _facts_from(AeFacts, item, ("onset", "recorded_at"))
            state.adverse_events[ae.ae_id] = ae
        for item in data["injection_sites"]:
            isr = _facts_from(InjectionSiteFacts, item, ("at",))
            state.injection_sites[isr.anchor] = isr
        for item in data["doses"]:
            dose = _facts_from(DoseFact, item, ("at",))
            state.doses[dose.source] = dose
        for name, entries in data["anchors"].items():
            state.anchors[name] = Series([datetime.fromisoformat(at) for at, _ in entries], [key for _, key in entries])
        for slot, item in data["active"].items():
            state.activate(_slot_from(slot), _facts_from(ActiveSignal, item, ("event_at",)))
        state.support = {rule: set(map(_slot_from, slots)) for rule, slots in data["support"].items()}
        state.refresh_first_dose()
        return state

    def activate(self, slot: Slot, signal: ActiveSignal) -> None:
        """Record a raised signal and index the results it used."""
        self.active[slot] = signal
        for key in signal.used:
            self.users.setdefault(key, set()).add(slot)

    def deactivate(self, slot: Slot) -> ActiveSignal:
        """Forget a retracted signal."""
        signal = self.active.pop(slot)
        for key in signal.used:
            slots = self.users.get(key)
            if slots is not None:
                slots.discard(slot)
                if not slots:
                    del self.users[key]
        return signal
