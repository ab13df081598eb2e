"""What a real scan does to the engine, on synthetic phantoms with known ground truth.

Each test tries one way a real scan differs from a clean one (a couch, an offset, a
missing insert, an unknown phantom, a doubtful placement) and checks what the
physicist is told: a measurement where there is one, a flag where something is
off, ``review`` where the placement is in doubt, a clear refusal where there is no
phantom.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from noctis_lab._errors import PhantomNotFoundError
from noctis_lab.hu import analyze, identify


def _means(result):
    return {(r.module, r.name): r.mean for r in result.rois}


def test_couch_and_offset_do_not_move_the_inserts(make):
    clean = analyze(make("catphan504", noise_sd_hu=3.0, seed=5))
    couched = analyze(make("catphan504", noise_sd_hu=3.0, seed=5, couch=True, offset_hu=40.0))
    assert couched.phantom == "catphan504" and couched.status != "review"
    ref = _means(clean)
    for key, value in _means(couched).items():
        assert value - ref[key] == pytest.approx(40.0, abs=1.0), key


def test_a_missing_insert_is_measured_and_flagged_not_refused(make):
    s = make("catphan604", noise_sd_hu=3.0, seed=6, material_offsets_hu={"Delrin": -365.0})
    result = analyze(s, "catphan604", "manufacturer")
    delrin = next(r for r in result.rois if r.name == "delrin")
    assert delrin.mean == pytest.approx(0.0, abs=2.0)  # reads the background: no insert
    assert delrin.status == "fail"
    assert result.status == "fail"  # a verdict, not a doubt: the other inserts place it
    assert any("delrin" in n and "less than 40%" in n for n in result.localisation.notes)
    assert any(r.startswith("Single-material deviation: Delrin") for r in result.recommendations)


def test_a_doubtful_placement_gives_review_and_no_service_advice(make):
    s = make("catphan604", noise_sd_hu=3.0, seed=7, offset_hu=30.0)
    result = analyze(s, "catphan604", roll=15.0)  # a wrong roll given by hand
    assert result.status == "review"
    assert any(c.kind == "localisation" and c.status == "review" for c in result.checks)
    text = " ".join(result.recommendations)
    assert text.startswith("Needs review")
    assert "vendor" not in text and "calibration" not in text and "Offset" not in text


def test_recommendations_follow_the_checks(make):
    offset = analyze(make("catphan604", noise_sd_hu=2.0, seed=8, offset_hu=8.0), "catphan604")
    lin = next(c for c in offset.checks if c.kind == "linearity")
    assert lin.status == "pass"
    assert not any(r.startswith("Scale error") for r in offset.recommendations)
    said = next(r for r in offset.recommendations if r.startswith("Offset:"))
    size = float(said.split("about ")[1].split(" HU")[0])
    assert size == pytest.approx(8.0, abs=0.5) and " HU high" in said
    scaled = analyze(make("catphan604", noise_sd_hu=2.0, seed=8, scale=1.04), "catphan604")
    assert next(c for c in scaled.checks if c.kind == "linearity").status == "fail"
    assert any(r.startswith("Scale error") for r in scaled.recommendations)
    # advice names no API call and no command-line flag: each interface adds its own
    for r in (*offset.recommendations, *scaled.recommendations):
        assert "analyze(" not in r and "--" not in r and "plot_slice" not in r


def test_phantoms_that_cannot_be_told_apart_are_listed(make):
    # the CTP404 module alone: the 504 layout and the 600 layout (the 504's turned by
    # half a turn, plus a water vial that reads like the background) look the same
    s = make("catphan504", noise_sd_hu=3.0, seed=9, z_range_mm=(-10.0, 10.0))
    with pytest.raises(PhantomNotFoundError, match=r"cannot tell which phantom.*catphan504.*"):
        identify(s.volume)
    assert analyze(s, "catphan504").phantom == "catphan504"  # the override still works


def test_a_patient_like_series_is_no_qa_phantom(make):
    s = make("catphan604", noise_sd_hu=3.0, seed=10)
    hu = s.volume.hu.copy()
    rng = np.random.default_rng(4)
    n = hu.shape[1]
    for _ in range(40):
        y, x = rng.integers(n // 4, 3 * n // 4, size=2)
        hu[:, y - 6 : y + 6, x - 6 : x + 6] = rng.choice([-800.0, 900.0])
    with pytest.raises(PhantomNotFoundError, match=r"no QA phantom found"):
        analyze(dataclasses.replace(s.volume, hu=hu))


@pytest.mark.parametrize("roll", [0.0, 95.0, 180.0, 270.0])
def test_any_roll_of_a_synthetic_phantom(make, roll):
    s = make("catphan604", noise_sd_hu=3.0, seed=12, roll_deg=roll)
    result = analyze(s)
    d = (result.localisation.roll_deg - roll + 180.0) % 360.0 - 180.0
    assert abs(d) < 0.5
    assert result.status != "review"
    for r in result.rois:  # no miscalibration was set: every insert reads its nominal
        if r.nominal_hu is not None and r.module == "CTP404":
            assert r.mean == pytest.approx(r.nominal_hu, abs=3.0), r.name
