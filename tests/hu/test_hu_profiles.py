"""Profiles, references and the result's serialisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noctis_lab._errors import ProfileError
from noctis_lab.hu import (
    CalibrationResult,
    analyze,
    list_profiles,
    load_profile,
    load_references,
)
from noctis_lab.hu._checks import judge


def test_builtin_profiles_are_versioned_and_cited():
    assert {"seed", "acr-2017", "manufacturer", "baseline"} <= set(list_profiles())
    for name in list_profiles():
        p = load_profile(name)
        assert p.version
        ids = {s.id for s in p.sources}
        assert all(c.source in ids for c in p.criteria)
    seed = load_profile("seed")
    by_id = {c.id: c for c in seed.criteria}
    assert by_id["water"].tolerance == 5 and by_id["air"].tolerance == 50
    assert by_id["linearity"].metric == "slope" and by_id["linearity"].tolerance == 0.02
    assert by_id["noise"].high == 10
    assert "Water-equivalent" in (by_id["water"].materials or ())
    acr = {c.id: c for c in load_profile("acr-2017").criteria}
    assert (acr["air"].low, acr["air"].high) == (-1005, -970)
    assert (acr["bone"].low, acr["bone"].high) == (850, 970)


def _write(tmp_path: Path, **changes) -> Path:
    data = load_profile("seed").to_dict()
    data.update(changes)
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(data))
    return p


def test_user_profile_and_validation(tmp_path, catphan):
    crit = [
        {
            "id": "water0",
            "kind": "hu",
            "materials": ["Water-equivalent"],
            "expected": 0,
            "tolerance": 0,
            "source": "seed",
        }
    ]
    p = _write(tmp_path, name="strict", version="0.1", criteria=crit)
    prof = load_profile(p)
    assert prof.name == "strict"
    res = analyze(catphan.volume, profile=p)
    # a tolerance of 0 is honoured (pylinac's `if self.tolerance:` would pass it)
    assert res.status == "fail" and res.profile_version == "0.1"
    with pytest.raises(ProfileError, match=r"cites source 'nowhere'"):
        load_profile(_write(tmp_path, criteria=[{**crit[0], "source": "nowhere"}]))
    with pytest.raises(ProfileError, match=r"criteria.0.kind"):
        load_profile(_write(tmp_path, criteria=[{**crit[0], "kind": "hounsfield"}]))
    with pytest.raises(ProfileError, match=r"needs exactly one of"):
        load_profile(_write(tmp_path, criteria=[{"id": "x", "kind": "hu", "source": "seed"}]))
    with pytest.raises(ProfileError, match=r"'schema' must be 'noctis-profile/1'"):
        load_profile(_write(tmp_path, schema="profile"))
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "absent.json")


def test_judge_zero_tolerance_and_warning_band():
    assert judge(0.0, 0.0, 0.0, 0.0, 0.8) == "pass"
    assert judge(0.1, 0.0, 0.0, 0.0, 0.8) == "fail"
    assert judge(3.9, 0.0, -5.0, 5.0, 0.8) == "pass"
    assert judge(4.1, 0.0, -5.0, 5.0, 0.8) == "warning"
    assert judge(-5.1, 0.0, -5.0, 5.0, 0.8) == "fail"
    assert judge(9.0, None, None, 10.0, 0.8) == "warning"
    assert judge(float("nan"), 0.0, -5.0, 5.0, 0.8) == "fail"


def test_references_table():
    refs = load_references()
    assert refs.seed_values()["lung"] == -500
    assert refs["lung"].value_hu == -850 and refs["lung"].contains(-850)
    assert refs["metal"].kind == "flag" and refs["metal"].range_hu == (3071, None)
    assert refs["bone cortical"].range_hu == (1000, 2000)
    df = refs.to_dataframe()
    assert len(df) == 12 and set(df.columns) >= {"name", "seed_hu", "low_hu", "high_hu", "source"}
    assert df.set_index("name").loc["water", "seed_hu"] == 0
    assert all(df["source"].str.len() > 10)


def test_result_serialisation_round_trip(catphan):
    res = analyze(catphan.volume)
    d = json.loads(res.to_json())
    assert {"status", "phantom", "profile", "scanner", "rois", "checks", "recommendations"} <= set(
        d
    )
    assert {"material", "mean", "sd", "nominal", "status"} <= set(d["rois"][0])
    back = CalibrationResult.from_json(res.to_json())
    assert back == res
    assert back.localisation.module_slices == res.localisation.module_slices
    df = res.to_dataframe()
    assert len(df) == len(res.rois) and "sem" in df.columns
    cdf = res.checks_dataframe()
    assert list(cdf["status"]) == [c.status for c in res.checks]
    assert res.scanner.key == catphan.volume.scanner.key
    assert len(res.id) == 32 and res.analysed_at.endswith("+00:00")
