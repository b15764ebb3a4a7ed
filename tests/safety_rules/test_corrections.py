"""Result status, corrections, deletions and updates (SAFETY_RULES §1 "Updates", §2 "Result status",
§6 "Identity and status")."""

from __future__ import annotations

from .factories import T0, Harness, ae, brief, hl7, hours, lab, rules, temp


def test_correction_that_still_fires_the_same_rule_keeps_the_signal() -> None:
    # §6: "ANC 0.8 corrected to 0.7 keeps the existing signal: nothing retracted, nothing new".
    harness = Harness()
    assert rules(harness.send(lab("NEUT", "0.8"))) == ["LAB-ANC-3"]
    assert harness.send(lab("NEUT", "0.7", recid="LB-C1", status="corrected")) == []


def test_correction_to_another_grade_retracts_and_raises() -> None:
    # §2: "signals of the earlier result that no longer hold are retracted ... a new signal fires".
    harness = Harness()
    [original] = harness.send(lab("NEUT", "0.8"))
    out = harness.send(lab("NEUT", "1.2", recid="LB-C1", status="corrected", at=T0))
    assert brief(out) == [("LAB-ANC-3", "RETRACTED"), ("LAB-ANC-2", "RAISED")]
    retraction = out[0]
    assert retraction.retracts == original.signal_id
    assert retraction.observed_at == T0
    assert retraction.to_public()["retracts"] == original.signal_id
    assert "REC:ANAKINRA-AD:LB:LB-C1" in retraction.evidence


def test_correction_to_normal_retracts_only() -> None:
    harness = Harness()
    harness.send(lab("NEUT", "0.8", lln=2.0))
    out = harness.send(lab("NEUT", "2.5", lln=2.0, recid="LB-C1", status="corrected"))
    assert brief(out) == [("LAB-ANC-3", "RETRACTED")]


def test_correction_of_a_normal_result_raises() -> None:
    harness = Harness()
    assert harness.send(lab("NEUT", "2.5", lln=2.0)) == []
    assert rules(harness.send(lab("NEUT", "0.8", lln=2.0, recid="LB-C1", status="corrected"))) == ["LAB-ANC-3"]


def test_deleted_result_retracts_its_signal() -> None:
    # §6: "D, W / entered-in-error retract every signal that used the result".
    harness = Harness()
    harness.send(lab("NEUT", "0.8"))
    assert brief(harness.send(lab("NEUT", None, recid="LB-D1", status="deleted"))) == [("LAB-ANC-3", "RETRACTED")]


def test_deleting_an_unknown_result_does_nothing() -> None:
    assert Harness().send(lab("NEUT", None, status="deleted")) == []


def test_preliminary_fires_nothing_and_the_final_fires() -> None:
    # §6: "P ... stored, fire nothing and never replace a final result".
    harness = Harness()
    assert harness.send(lab("NEUT", "0.4", status="preliminary")) == []
    assert rules(harness.send(lab("NEUT", "0.4", recid="LB-F1"))) == ["LAB-ANC-4"]


def test_preliminary_never_replaces_a_final() -> None:
    harness = Harness()
    harness.send(lab("NEUT", "0.8"))
    assert harness.send(lab("NEUT", "0.3", recid="LB-P1", status="preliminary")) == []
    # The correction is compared with the final 0.8 (LAB-ANC-3 still holds): nothing new.
    assert harness.send(lab("NEUT", "0.7", recid="LB-C1", status="corrected")) == []


def test_cancelled_is_ignored() -> None:
    # §6: "X, N, O / cancelled carry no value and are ignored".
    harness = Harness()
    harness.send(lab("NEUT", "0.8"))
    assert harness.send(lab("NEUT", None, recid="LB-X1", status="cancelled")) == []
    assert harness.send(lab("NEUT", "0.75", recid="LB-C1", status="corrected")) == []


def test_deleting_the_temperature_retracts_the_composite() -> None:
    # §6: deletion retracts every signal that used the result, "composite rules included".
    harness = Harness()
    harness.send(lab("NEUT", "0.8"), temp("39.0", at=T0 + hours(1), recid="VS-1"))
    out = harness.send(temp("39.0", at=T0 + hours(1), recid="VS-1", status="deleted", version=2))
    assert brief(out) == [("LAB-FN", "RETRACTED")]


def test_deleting_the_temperature_used_raises_again_on_the_remaining_fever() -> None:
    # §6 deletion retracts the signal that used the result; the rule still holds on the other reading.
    harness = Harness()
    [_, fn] = harness.send(lab("NEUT", "0.8"), temp("39.0", at=T0 + hours(1), recid="VS-1"))
    assert harness.send(temp("38.6", at=T0 + hours(5), recid="VS-2")) == []
    out = harness.send(temp("39.0", at=T0 + hours(1), recid="VS-1", status="deleted", version=2))
    assert brief(out) == [("LAB-FN", "RETRACTED"), ("LAB-FN", "RAISED")]
    assert out[0].retracts == fn.signal_id
    assert out[1].evidence[-1] == "REC:ANAKINRA-AD:VS:VS-2"


def test_correcting_the_fever_away_retracts_the_composite() -> None:
    harness = Harness()
    harness.send(lab("NEUT", "0.8"), temp("39.0", at=T0 + hours(1), recid="VS-1"))
    out = harness.send(temp("37.0", at=T0 + hours(1), recid="VS-1", status="corrected", version=2))
    assert brief(out) == [("LAB-FN", "RETRACTED")]


def test_deleting_the_anc_retracts_grade_and_composite() -> None:
    harness = Harness()
    harness.send(lab("NEUT", "0.8"), temp("39.0", at=T0 + hours(1)))
    out = harness.send(lab("NEUT", None, recid="LB-D1", status="deleted"))
    assert sorted(brief(out)) == [("LAB-ANC-3", "RETRACTED"), ("LAB-FN", "RETRACTED")]


def test_correcting_anc_within_grade_keeps_grade_and_composite() -> None:
    harness = Harness()
    harness.send(lab("NEUT", "0.8"), temp("39.0", at=T0 + hours(1)))
    assert harness.send(lab("NEUT", "0.6", recid="LB-C1", status="corrected")) == []


def test_deleting_the_aminotransferase_retracts_hys() -> None:
    harness = Harness()
    harness.send(lab("ALT", "150", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(1)))
    out = harness.send(lab("ALT", None, recid="LB-D1", status="deleted"))
    assert brief(out) == [("LAB-HYS", "RETRACTED")]


def test_hl7_correction_reuses_the_order_and_is_regraded() -> None:
    # §6 "Which earlier result a correction replaces: HL7 (MSH-4, OBR-3, analyte)".
    harness = Harness()
    harness.send(hl7("M1", [("NEUT", "0.8"), ("PLAT", "30")], order="ORD-7"))
    out = harness.send(hl7("M2", [("NEUT", "0.3")], order="ORD-7", status="corrected"))
    assert brief(out) == [("LAB-ANC-3", "RETRACTED"), ("LAB-ANC-4", "RAISED")]


def test_hl7_deleted_result_retracts() -> None:
    harness = Harness()
    harness.send(hl7("M1", [("NEUT", "0.8"), ("PLAT", "30")], order="ORD-7"))
    out = harness.send(hl7("M2", [("PLAT", "30")], order="ORD-7", status="deleted"))
    assert brief(out) == [("LAB-PLT-3", "RETRACTED")]


def test_record_update_with_the_same_recid_is_reevaluated() -> None:
    # §1 "Updates": the same RECID with new content is re-evaluated like a correction.
    harness = Harness()
    harness.send(lab("PLAT", "30", recid="LB-9"))
    out = harness.send(lab("PLAT", "20", recid="LB-9", version=2))
    assert brief(out) == [("LAB-PLT-3", "RETRACTED"), ("LAB-PLT-4", "RAISED")]


def test_ae_update_moves_the_infection_rule() -> None:
    # §1 "Updates" for AE: INF-2 no longer holds at grade 3, AE-SI does.
    harness = Harness()
    first = harness.send(ae("AE-1", "cellulitis", decod="Skin infection", grade=2))
    assert rules(first) == ["AE-INF-2"]
    out = harness.send(ae("AE-1", "cellulitis", decod="Skin infection", grade=3, version=2))
    assert brief(out) == [("AE-INF-2", "RETRACTED"), ("AE-SI", "RAISED")]
    assert harness.send(ae("AE-1", "cellulitis", decod="Skin infection", grade=3, version=3, outcome="RECOVERED")) == []
