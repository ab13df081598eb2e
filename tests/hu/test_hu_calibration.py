"""Verdicts and recommendations for calibrated and miscalibrated scanners."""

from __future__ import annotations

import pytest

from noctis_lab.hu import analyze


def _check(result, check_id):
    return next(c for c in result.checks if c.id == check_id)


def test_calibrated_scanner_passes_seed(catphan):
    res = analyze(catphan.volume, "catphan604", "seed")
    assert res.status == "pass", [c for c in res.checks if c.status != "pass"]
    assert res.profile == "seed" and res.profile_version == "1.0"
    assert res.recommendations[0].startswith("All criteria pass")
    kinds = {c.kind for c in res.checks}
    assert {"hu", "linearity", "noise"} <= kinds
    assert res.linearity is not None and res.linearity.slope == pytest.approx(1.0, abs=0.005)
    assert res.uniformity is not None and abs(res.uniformity.max_difference_hu) < 2


def test_offset_6_hu_fails_and_is_called_an_offset(make):
    s = make(noise_sd_hu=3.0, offset_hu=6.0, seed=21)
    res = analyze(s.volume, profile="seed")
    assert res.status == "fail"
    water = _check(res, "water.CTP486.centre")
    assert water.status == "fail" and water.measured == pytest.approx(6.0, abs=1.0)
    assert "seed" in water.source
    assert _check(res, "linearity").status == "pass"
    text = " ".join(res.recommendations)
    assert "Offset" in text and "high" in text and "Scale" not in text
    assert res.roi("centre", "CTP486").status == "fail"


def test_scale_3_percent_fails_and_is_called_a_scale_error(make):
    s = make(noise_sd_hu=3.0, scale=1.03, seed=22)
    res = analyze(s.volume, profile="seed")
    assert res.status == "fail"
    lin = _check(res, "linearity")
    assert lin.status == "fail" and lin.measured == pytest.approx(1.03, abs=0.003)
    text = " ".join(res.recommendations)
    assert "Scale error" in text and "+3.0%" in text and "Offset" not in text
    # pylinac's single ±40 HU tolerance would pass every insert here
    assert all(abs(r.deviation) < 40 for r in res.rois if r.deviation is not None)


def test_high_noise_fails_seed_and_says_so(make):
    res = analyze(make(noise_sd_hu=14.0, seed=23).volume, profile="seed")
    noise = _check(res, "noise")
    assert noise.status == "fail" and noise.measured == pytest.approx(14, rel=0.1)
    assert any(r.startswith("Noise:") for r in res.recommendations)


def test_warning_band(make):
    # 4.4 HU offset: within ±5 but beyond 80% of it
    res = analyze(make(noise_sd_hu=1.0, offset_hu=4.4, seed=24).volume, profile="seed")
    assert _check(res, "water.CTP486.centre").status == "warning"
    assert res.status == "warning"
    assert "warning" in res.recommendations[0]


def test_acr_and_manufacturer_profiles(catphan, make):
    acr = analyze(catphan.volume, profile="acr-2017")
    ids = {c.id.split(".")[0] for c in acr.checks}
    assert {"water", "air", "acrylic", "uniformity"} <= ids
    assert acr.status == "pass"
    assert any("Not judged" in r and "bone" in r for r in acr.recommendations)
    man = analyze(catphan.volume, profile="manufacturer")
    assert len([c for c in man.checks if c.kind == "hu"]) == 15  # 10 inserts + 5 CTP486 ROIs
    assert man.status == "pass"
    bad = analyze(
        make(noise_sd_hu=2.0, material_offsets_hu={"Delrin": 30.0}, seed=25).volume,
        profile="manufacturer",
    )
    delrin = _check(bad, "range.CTP404.delrin")
    assert delrin.status == "fail" and (delrin.low, delrin.high) == (344, 387)
    assert any("Delrin" in r and "insert" in r for r in bad.recommendations)


def test_baseline_profile(catphan, make):
    base = analyze(catphan.volume, profile="seed")
    same = analyze(
        make(noise_sd_hu=3.0, slice_thickness_mm=2.0, seed=12).volume,
        profile="baseline",
        baseline=base,
    )
    assert same.status == "pass", [c for c in same.checks if c.status != "pass"]
    assert same.profile == "baseline"
    noisy = analyze(
        make(noise_sd_hu=4.0, slice_thickness_mm=2.0, seed=13).volume,
        profile="baseline",
        baseline=base,
    )
    nc = _check(noisy, "noise")
    assert nc.kind == "constancy_noise" and nc.status == "fail"
    shifted = analyze(
        make(noise_sd_hu=3.0, slice_thickness_mm=2.0, offset_hu=7.0, seed=14).volume,
        profile="baseline",
        baseline=base,
    )
    assert _check(shifted, "constancy_soft.CTP486.centre").status == "fail"
    assert _check(shifted, "constancy_dense.CTP404.teflon").status == "pass"


def test_other_phantoms(make):
    water = analyze(make("water", noise_sd_hu=3.0, seed=31).volume, "water", "seed")
    assert water.status == "pass"
    assert water.noise_hu == pytest.approx(3.0, rel=0.15)
    acr = analyze(
        make("acr464", noise_sd_hu=3.0, roll_deg=6.0, seed=32).volume, "acr464", "acr-2017"
    )
    assert acr.status == "pass", [c for c in acr.checks if c.status != "pass"]
    assert {c.id.split(".")[0] for c in acr.checks} >= {"water", "air", "bone", "polyethylene"}
    s = make("cirs062m", noise_sd_hu=3.0, roll_deg=-8.0, shift_mm=(6.0, 4.0, 0.0), seed=33)
    ed = analyze(s.volume, "cirs062m", "seed")
    assert ed.electron_density is not None and len(ed.electron_density) == 9
    dens = [p.relative_electron_density for p in ed.electron_density]
    hus = [p.mean_hu for p in ed.electron_density]
    assert dens == sorted(dens) and hus == sorted(hus)
    for p in ed.electron_density:
        truth = next(r for r in s.truth.rois if r.material == p.material)
        assert p.mean_hu == pytest.approx(truth.true_hu, abs=1.0)
