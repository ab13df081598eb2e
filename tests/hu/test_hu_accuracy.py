"""Accuracy against ground truth: localisation, ROI means and honest standard errors."""

from __future__ import annotations

import math

import numpy as np
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
    """(ROI, measured - true HU) for every ROI of the truth: none missing, none extra.

    The callers assert inside a loop over this list, so it must hold every ROI the
    generator drew in the imaged modules (16 on a full CatPhan 604, 11 on its reference
    module alone).
    """
    measured = sorted((r.module, r.name) for r in result.rois)
    imaged = {m.name for m in series.truth.modules if m.centre_slice_index is not None}
    drawn = sorted((t.module, t.name) for t in series.truth.rois if t.module in imaged)
    assert measured == drawn and drawn, f"measured {measured}, the truth has {drawn}"
    return [(r, r.mean - series.truth.roi(r.module, r.name).true_hu) for r in result.rois]


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
    ((-15.0, 10.0, -2.0), -12.0, 1.0, 3.0, 45),
    ((5.0, 18.0, 0.5), 3.0, 1.0, 2.0, 46),
]


def _clinical(shift, roll, thickness, noise, seed):
    return generate(
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


@pytest.mark.parametrize("shift,roll,thickness,noise,seed", CLINICAL)
def test_clinical_resolution_means_within_1_hu(shift, roll, thickness, noise, seed):
    # Where 1 HU is at least about 3.5 SEM (1 mm slices at SD 3 HU: SEM about 0.3 HU;
    # 2 mm slices at SD up to 2 HU: SEM up to about 0.27 HU) every insert meets it.
    s = _clinical(shift, roll, thickness, noise, seed)
    errors = _truth_errors(s, analyze(s.volume))
    assert len(errors) == 11  # ten inserts and the background
    for r, err in errors:
        assert abs(err) <= 1.0, (
            f"{r.module}/{r.name}: {r.mean:.2f} vs truth, error {err:+.2f} HU (SEM {r.sem:.2f})"
        )


#: Series of the statistical claim below, each at a random position and roll.
N_CLINICAL_SERIES = 12


def test_clinical_2mm_sd3_within_1_hu_statistically():
    """2 mm slices at SD 3 HU: 1 HU is met by most measurements, not by every one.

    The SEM of an insert ROI is about 0.4 HU, so 1 HU is about 2.5 SEM: a measurement
    misses it with a probability of about 1.2 % if the SEM is honest (0.2 % was measured
    over 40 series, 440 ROIs: the SEM is conservative). Over 12 random series (132
    measurements) the claim is: at least 95 % within 1 HU (at the pessimistic 1.2 % rate,
    7 or more misses have a probability of about 0.2 %), at least 90 % within 2 SEM
    (95 % for an honest SEM) and none beyond 4 SEM.
    """
    rng = np.random.default_rng(2026)
    errors = []
    for seed in range(N_CLINICAL_SERIES):
        shift = (*rng.uniform(-20.0, 20.0, 2), rng.uniform(-2.0, 2.0))
        roll = rng.uniform(-15.0, 15.0)
        s = _clinical(tuple(map(float, shift)), float(roll), 2.0, 3.0, 1000 + seed)
        errors += _truth_errors(s, analyze(s.volume))
    assert len(errors) == 11 * N_CLINICAL_SERIES
    err = np.array([e for _, e in errors])
    z = np.abs(err) / np.array([r.sem for r, _ in errors])
    worst = sorted(errors, key=lambda x: -abs(x[1]))[:3]
    shown = [f"{r.name} {e:+.2f} HU (SEM {r.sem:.2f})" for r, e in worst]
    assert np.mean(np.abs(err) <= 1.0) >= 0.95, shown
    assert np.mean(z <= 2.0) >= 0.90 and z.max() <= 4.0, (np.mean(z <= 2.0), z.max(), shown)
