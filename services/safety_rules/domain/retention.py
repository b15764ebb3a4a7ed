"""How much of a participant's result history the state keeps (bounded memory, SAFETY_RULES §1, §2, §6).

A result stays while a rule may still read it:
- a standing signal uses it: a correction or deletion of it must retract that signal (§2 "Result status");
- it was collected before the first-dose date (any date while none is known), and its test is graded
  against BASE, the last valid pre-dose value (§1);
- it can take part in a composite window whatever arrives later (§2, §6 "Composite rules"): an ANC below the
  LAB-FN limit or a temperature at or above its sustained limit; a bilirubin above the LAB-HYS multiple, an
  ALT/AST at or above its multiple, or any ALP with a ULN (the ALP nearest the bilirubin decides);
- it was collected within `horizon` of the participant's latest result: parts of one specimen sent in separate
  records still derive an ANC, and a change of first-dose date finds its new baseline candidates.
Everything else (normal counts and chemistry after the first dose, the great majority) is forgotten. Such a
result fed no signal and no window, so a later correction of it is evaluated as a first version: it raises
what the corrected value qualifies for, and there is nothing standing to retract. A specimen's parts and the
ANC derived from them are kept or forgotten together. Pruning runs when the results double since the last
one, so its cost per result is constant.
"""

from __future__ import annotations

from datetime import timedelta

from services.safety_rules.domain.composite import anchors_fn, anchors_hys, holds, vs_uln
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.derivation import DERIVED_PREFIX
from services.safety_rules.domain.memo import table
from services.safety_rules.domain.results import LabValue
from services.safety_rules.domain.state import ParticipantState

#: Recent results kept whatever they are. Not a clinical number: how late a separately sent part of a
#: specimen may arrive and still be combined with the others.
DEFAULT_HORIZON = timedelta(days=7)
#: Fewest results a participant holds before pruning starts.
MIN_RESULTS = 256


def window_partner(config: StudyConfig, result: LabValue) -> bool:
    """Whether a final result can take part in a LAB-FN or LAB-HYS window, now or with a later record."""
    if not result.usable:
        return False
    test, fn, hys = result.test, config.febrile_neutropenia, config.hys_law
    if test == fn.temperature_test:
        return holds(result, "ge", fn.sustained_at_least) or holds(result, "gt", fn.single_above)
    if test in hys.aminotransferase_tests:
        return vs_uln(result, "ge", hys.aminotransferase_at_least)
    if test == hys.alp_test:
        return result.uln is not None
    return anchors_fn(config, result) or anchors_hys(config, result)


def _test_roles(config: StudyConfig) -> tuple[frozenset[str], frozenset[str]]:
    """(tests graded against BASE, tests that may take part in a composite window), per configuration."""
    roles = table(config, "retention-roles")
    if not roles:
        fn, hys = config.febrile_neutropenia, config.hys_law
        with_base = frozenset(test for test, scale in config.scale.tests.items() if scale.uses_base)
        partners = {fn.anc_test, fn.temperature_test, hys.bilirubin_test, hys.alp_test, *hys.aminotransferase_tests}
        roles[None] = (with_base, frozenset(partners))
    found: tuple[frozenset[str], frozenset[str]] = roles[None]
    return found


def _kept_keys(config: StudyConfig, participant: ParticipantState, horizon: timedelta) -> set[str] | None:
    latest, first_dose = participant.latest_at, participant.first_dose_start
    if latest is None:
        return None
    cutoff, users = latest - horizon, participant.users
    with_base, partners = _test_roles(config)
    keep = {
        key
        for key, result in participant.results.items()
        if result.at >= cutoff
        or key in users
        or (result.test in with_base and (first_dose is None or result.at < first_dose))
        or (result.test in partners and result.status != "preliminary" and window_partner(config, result))
    }
    results = participant.results
    for specimen, parts in list(participant.specimens.items()):
        group = [*parts.values(), DERIVED_PREFIX + specimen]
        if keep.isdisjoint(group):
            del participant.specimens[specimen]
        else:
            keep.update(key for key in group if key in results)
    return keep


def prune_results(config: StudyConfig, participant: ParticipantState, horizon: timedelta = DEFAULT_HORIZON) -> None:
    """Forget the results no rule can read any more (see the module docstring)."""
    keep = _kept_keys(config, participant, horizon)
    if keep is not None and len(keep) < len(participant.results):
        participant.results = {key: value for key, value in participant.results.items() if key in keep}
        for series in (*participant.series.values(), *participant.anchors.values()):
            series.retain(keep)
    participant.prune_at = max(MIN_RESULTS, 2 * len(participant.results))
