"""Accuracy against ground truth: localisation, ROI means and honest standard errors."""

from __future__ import annotations

import math

import pytest

from noctis_lab.hu import analyze
from noctis_lab.hu.synthetic import generate

# (shift x, y, z mm), roll deg, slice thickness mm, seed
GEOMETRIES = [
    ((0.0, 0.0, 0.0), 0.0, 2.0, 1),
    ((20.0, -20.0, 3.0), 15.0, 1.0, 2),
    ((-17.5, 12.0, -4.0), -15.0, 3.0, 3),
    ((9.0, 19.0, 1.5), -7.5, 5.0, 4),
    ((-20.0, -6.0, 0.0), 11.0, 2.0, 5),
]


def _truth_errors(series, result):
    out = []
    for r in result.rois:
        t = series.truth.roi(r.module, r.name)
        out.append((r, r.mean - t.true_hu))
    return out


@pytest.mark.parametrize("shift,roll,thickness,seed", GEOMETRIES)
@pytest.mark.parametrize("noise", [1.0, 3.0])
def test_low_noise_means_within_1_hu(make, shift, roll, thickness, seed, noise):
    # White noise: with the generator's default correlated noise (0.8 mm) a 3.5 mm ROI
    # on three 5 mm slices has an SEM of about 0.8 HU at SD 3 HU, so no method could
    # promise 1 HU there; that case is covered by the 3-SEM test below.
    s = make(
        shift_mm=shift,
        roll_deg=roll,
        slice_thickness_mm=thickness,
        noise_sd_hu=noise,
        noise_correlation_mm=0.0,
        seed=seed,
    )
    res = analyze(s.volume)
    loc = res.localisation
    assert abs(loc.roll_deg - roll) < 0.5
    row, col = s.truth.centre_pixel
    assert math.hypot(loc.centre_px[0] - col, loc.centre_px[1] - row) < 0.5
    for r, err in _truth_errors(s, res):
        assert abs(err) <= 1.0, f"{r.module}/{r.name}: {r.mean:.2f} vs truth, error {err:+.2f} HU"
        assert r.n_slices >= 1 and r.n_pixels > 20


@pytest.mark.parametrize("shift,roll,thickness,seed", GEOMETRIES)
@pytest.mark.parametrize("noise", [3.0, 12.0, 25.0])
def test_noisy_means_within_3_sem(make, shift, roll, thickness, seed, noise):
    s = make(
        shift_mm=shift,
        roll_deg=roll,
        slice_thickness_mm=thickness,
        noise_sd_hu=noise,
        seed=seed + 100,
    )
    res = analyze(s.volume)
    for r, err in _truth_errors(s, res):
        assert r.sem > 0
        # the SEM is not the naive SD/sqrt(n): correlated noise makes it larger
        assert r.sem >= 0.99 * r.sd / math.sqrt(r.n_pixels)
        assert abs(err) <= 3 * r.sem, (
            f"{r.module}/{r.name}: error {err:+.2f} HU > 3 x SEM {r.sem:.2f}"
        )


def test_sem_accounts_for_correlated_noise(make):
    # same noise SD, strongly correlated vs white: the correlated SEM must be larger
    white = analyze(make(noise_sd_hu=20.0, noise_correlation_mm=0.0, seed=7).volume)
    corr = analyze(make(noise_sd_hu=20.0, noise_correlation_mm=1.0, seed=7).volume)
    w = white.roi("centre", "CTP486")
    c = corr.roi("centre", "CTP486")
    assert w.sd == pytest.approx(c.sd, rel=0.1)
    assert c.sem > 2.5 * w.sem
    assert w.sem == pytest.approx(w.sd / math.sqrt(w.n_pixels), rel=0.35)


def test_couch_and_reversed_phantom(make):
    import dataclasses

    import numpy as np

    s = make(couch=True, noise_sd_hu=3.0, shift_mm=(5.0, -10.0, 0.0), roll_deg=4.0, seed=9)
    res = analyze(s.volume)
    assert res.status == "pass"
    # the same series with z reversed: CTP486 is found on the other side
    v = s.volume
    flipped = dataclasses.replace(
        v,
        hu=np.ascontiguousarray(v.hu[::-1]),
        slice_positions=tuple(-p for p in reversed(v.slice_positions)),
    )
    res2 = analyze(flipped)
    assert res2.roi("centre", "CTP486").mean == pytest.approx(
        res.roi("centre", "CTP486").mean, abs=1e-3
    )
    assert any("opposite z direction" in n for n in res2.localisation.notes)


def test_manual_overrides(make, catphan):
    truth = catphan.truth
    row, col = truth.centre_pixel
    ref = next(m for m in truth.modules if m.name == "CTP404")
    res = analyze(catphan.volume, slice=ref.centre_slice_index, centre=(col, row), roll=0.0)
    assert res.localisation.method == "manual"
    auto = analyze(catphan.volume)
    assert res.roi("teflon").mean == pytest.approx(auto.roi("teflon").mean, abs=0.5)
    ms = analyze(catphan.volume, module_slices={"CTP404": [ref.centre_slice_index]})
    assert ms.roi("teflon").n_slices == 1


# Clinical resolution, the generator's default correlated noise (0.8 mm): 512 x 512 at
# 0.5 mm, 1 and 2 mm slices. Only the reference module (every insert) is generated.
# (shift x, y, z mm), roll deg, slice thickness mm, noise SD HU, seed
CLINICAL = [
    ((0.0, 0.0, 0.0), 0.0, 2.0, 1.0, 41),
    ((12.0, -8.0, 1.0), 7.0, 2.0, 2.0, 42),
    ((-20.0, -20.0, 0.0), 15.0, 2.0, 3.0, 43),
    ((8.0, -3.0, -1.0), -4.0, 2.0, 3.0, 44),
    ((-15.0, 10.0, -2.0), -12.0, 1.0, 3.0, 45),
    ((5.0, 18.0, 0.5), 3.0, 1.0, 2.0, 46),
]


@pytest.mark.parametrize("shift,roll,thickness,noise,seed", CLINICAL)
def test_clinical_resolution_means_within_1_hu(shift, roll, thickness, noise, seed):
    # At 2 mm slices and SD 3 HU the SEM of a 3.5 mm insert ROI is about 0.4 HU, so
    # 1 HU is about 2.4 SEM: met by most series, not by every one (see the report);
    # at 1 mm slices (SEM about 0.3 HU) it is met with a wide margin.
    s = generate(
        "catphan604",
        matrix=512,
        pixel_size_mm=0.5,
        slice_thickness_mm=thickness,
        noise_sd_hu=noise,
        shift_mm=shift,
        roll_deg=roll,
        seed=seed,
        z_range_mm=(-15.0, 15.0),
    )
    res = analyze(s.volume)
    inserts = [r for r in res.rois if r.module == "CTP404"]
    assert len(inserts) == 11  # ten inserts and the background
    for r, err in _truth_errors(s, res):
        assert abs(err) <= 1.0, (
            f"{r.module}/{r.name}: {r.mean:.2f} vs truth, error {err:+.2f} HU (SEM {r.sem:.2f})"
        )
