"""Enum-like values stay enums in results and serialise as the same strings (issue 16.3/16.4)."""

from __future__ import annotations

import json

from noctis_lab.hu import (
    CalibrationResult,
    CheckKind,
    LocalisationMethod,
    RoiRole,
    analyze,
    load_phantom,
)


def test_role_kind_and_method_are_enums_that_serialise_as_text(catphan) -> None:
    res = analyze(catphan.volume)
    assert {type(r.role) for r in res.rois} == {RoiRole}
    assert {r.role for r in res.rois} == set(RoiRole)  # the full CatPhan has every role
    assert {type(c.kind) for c in res.checks} == {CheckKind}
    assert type(res.localisation.method) is LocalisationMethod
    assert res.localisation.method == LocalisationMethod.AUTO == "auto"
    d = res.to_dict()
    text = json.dumps(d)
    assert [r["role"] for r in d["rois"]] == [r.role.value for r in res.rois]
    assert all(type(r["role"]) is str for r in d["rois"])
    assert all(type(c["kind"]) is str for c in d["checks"])
    assert type(d["localisation"]["method"]) is str and '"method": "auto"' in text
    back = CalibrationResult.from_dict(json.loads(text))
    assert [r.role for r in back.rois] == [r.role for r in res.rois]
    assert all(type(r.role) is RoiRole for r in back.rois)
    assert all(type(c.kind) is CheckKind for c in back.checks)
    assert type(back.localisation.method) is LocalisationMethod


def test_manual_placement_is_an_enum_member(catphan) -> None:
    loc = analyze(catphan.volume).localisation
    res = analyze(
        catphan.volume, slice=loc.reference_slice, centre=loc.centre_px, roll=loc.roll_deg
    )
    assert res.localisation.method is LocalisationMethod.MANUAL


def test_phantom_rois_carry_the_role_enum() -> None:
    ph = load_phantom("catphan604")
    roles = {r.role for m in ph.modules for r in m.rois}
    assert roles <= set(RoiRole) and all(type(r) is RoiRole for r in roles)
    written = [r["role"] for m in ph.to_dict()["modules"] for r in m.get("rois", ())]
    assert written and all(type(r) is str for r in written)
