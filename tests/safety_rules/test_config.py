"""Study configuration: loading, refusal, the packaged default, and the variant that changes outcomes
without code (STYLE.md principle 4; INTERFACES §4 lookup order; issue #3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.safety_rules.domain import StudyConfigError, load_study, packaged_study, parse_study, select_study
from services.safety_rules.domain.config import study_schema
from services.safety_rules.domain.registry import RULE_IDS

from .factories import STUDIES, Harness, ae, lab, rules, study_doc

PACKAGE_DATA = Path(__file__).resolve().parents[2] / "services/safety_rules/domain/data"


def test_packaged_configuration_is_the_studies_file() -> None:
    for name in ("anakinra-ad.yaml", "study.schema.json"):
        assert (PACKAGE_DATA / name).read_bytes() == (STUDIES / name).read_bytes(), name


def test_the_study_schema_is_a_valid_json_schema() -> None:
    # not checked at startup (config.py): a broken schema would fail here instead
    jsonschema.Draft202012Validator.check_schema(study_schema())


def test_every_registry_rule_is_configured_with_its_severity_and_action() -> None:
    config = packaged_study()
    assert set(config.outcomes) == RULE_IDS
    assert (config.study_id, config.scale.scale, config.scale.version) == ("ANAKINRA-AD", "CTCAE", "5.0")
    assert config.outcomes["H-SI"].severity == "HALT"


def test_lookup_order_file_then_environment_then_package(tmp_path: Path) -> None:
    # INTERFACES §4: --study FILE, else $TRIALWATCH_STUDY, else the packaged ANAKINRA-AD.
    variant = str(STUDIES / "variant-example.yaml")
    assert select_study(variant, {}).config_version == "1.0.0-variant-example"
    assert select_study(None, {"TRIALWATCH_STUDY": variant}).config_version == "1.0.0-variant-example"
    assert select_study(None, {}).config_version == "1.0.0"
    assert select_study(str(STUDIES / "anakinra-ad.yaml"), {"TRIALWATCH_STUDY": variant}).config_version == "1.0.0"


def _broken(edit: Any) -> dict[str, Any]:
    doc = study_doc()
    edit(doc)
    return doc


REFUSALS: list[Any] = [
    pytest.param(lambda d: d.update(surprise=1), "surprise", id="unknown top-level key"),
    pytest.param(lambda d: d["rules"]["LAB-FN"].update(window_hour=24), "window_hour", id="unknown key in a rule"),
    pytest.param(lambda d: d["grading"]["tests"]["NEUT"].update(color="red"), "color", id="unknown key in a test"),
    pytest.param(lambda d: d["rules"].pop("LAB-HYS"), "LAB-HYS", id="a registry rule without configuration"),
    pytest.param(lambda d: d["halting"].pop("H-SI"), "H-SI", id="a halting rule without configuration"),
    pytest.param(
        lambda d: d["rules"].update({"LAB-XYZ": {"severity": "INFO", "action": "NONE"}}),
        "LAB-XYZ",
        id="configuration for an unknown rule",
    ),
    pytest.param(lambda d: d["rules"]["LAB-ANC-2"].update(grades=[2, 3]), "grade 3", id="two rules for one grade"),
    pytest.param(
        lambda d: d["halting"]["H-NEUT"].update(qualifying_rules=["LAB-ANC-9"]), "LAB-ANC-9", id="unknown qualifier"
    ),
    pytest.param(lambda d: d["rules"]["LAB-ANC-3"].update(severity="LOUD"), "LOUD", id="unknown severity"),
    pytest.param(lambda d: d["clocks"]["IND-7D"].update(due="a week"), "due", id="malformed clock period"),
    pytest.param(lambda d: d["grading"]["tests"].pop("TEMP"), "TEMP", id="a test used by a rule without a unit"),
]


@pytest.mark.parametrize(("edit", "named"), REFUSALS)
def test_refuses_to_load(edit: Any, named: str) -> None:
    with pytest.raises(StudyConfigError, match=named):
        parse_study(_broken(edit))


def test_refuses_an_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(StudyConfigError, match="cannot read"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("study_id: [unclosed", encoding="utf-8")
    with pytest.raises(StudyConfigError, match="not valid YAML"):
        load_study(bad)


def test_variant_changes_outcomes_without_code() -> None:
    # variant-example.yaml: NEUT grade-3 cut 0.8, H-SI boundary 3, Urticaria expected.
    variant = load_study(STUDIES / "variant-example.yaml")
    assert rules(Harness().send(lab("NEUT", "0.85"))) == ["LAB-ANC-3"]
    assert rules(Harness(variant).send(lab("NEUT", "0.85"))) == ["LAB-ANC-2"]

    urticaria = ae("AE-1", "hives", meddra="10046735", criteria={"AESHOSP": True}, causality="POSSIBLY RELATED")
    assert "IND-15D" in rules(Harness().send(urticaria))
    assert "IND-15D" not in rules(Harness(variant).send(urticaria))


@pytest.mark.parametrize(("name", "fires_at"), [("anakinra-ad.yaml", 2), ("variant-example.yaml", 3)])
def test_variant_h_si_boundary(name: str, fires_at: int) -> None:
    harness = Harness(load_study(STUDIES / name))
    for index in range(8):
        harness.dosed(f"P{index}")
    fired = []
    for index in range(4):
        record = ae(f"AE-{index}", "pneumonia", subject=f"P{index}", soc="Infections and infestations", grade=3)
        if "H-SI" in rules(harness.send(record)):
            fired.append(index + 1)
    assert fired == [fires_at]
