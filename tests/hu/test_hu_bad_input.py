"""Bad input gets a clear error that names what is wrong."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from noctis_lab._errors import (
    DicomError,
    PhantomDefinitionError,
    PhantomNotFoundError,
    ProfileError,
)
from noctis_lab.hu import analyze, load_phantom


def _only_uniformity(result) -> None:
    assert {r.module for r in result.rois} == {"CTP486"}
    assert any("CTP404 module is not in the series" in n for n in result.localisation.notes)
    assert result.uniformity is not None


def test_water_phantom_analysed_as_catphan_measures_the_uniform_module(make):
    # a uniform 200 mm cylinder is all a CatPhan's CTP486 shows: measured, and said so
    s = make("water", noise_sd_hu=3.0, seed=41)
    _only_uniformity(analyze(s.volume, "catphan604"))


def test_series_with_only_the_uniformity_module(make):
    # only the uniformity module (CTP486 at -80 mm) is scanned
    s = make(noise_sd_hu=3.0, z_range_mm=(-100.0, -60.0), seed=42)
    result = analyze(s.volume, "catphan604")
    _only_uniformity(result)
    centre = next(r for r in result.rois if r.name == "centre")
    assert abs(centre.mean) < 1.5


def test_patient_like_series_is_not_a_phantom(make):
    # a body with structure but no insert ring and no uniform module
    s = make(noise_sd_hu=3.0, seed=44)
    hu = s.volume.hu.copy()
    rng = np.random.default_rng(3)
    n = hu.shape[1]
    for _ in range(40):  # bone- and air-like blobs all over the slices
        y, x = rng.integers(n // 4, 3 * n // 4, size=2)
        hu[:, y - 6 : y + 6, x - 6 : x + 6] = rng.choice([-800.0, 900.0])
    hu[:, n // 2 - 140 : n // 2 + 140, n // 2 - 3 : n // 2 + 3] = 700.0  # a "spine"
    with pytest.raises(PhantomNotFoundError, match=r"not in the series.*nor is its uniform"):
        analyze(dataclasses.replace(s.volume, hu=hu), "catphan604")


def test_module_cut_off_by_series_end(make):
    s = make(noise_sd_hu=3.0, z_range_mm=(-100.0, -8.0), seed=43)
    with pytest.raises(PhantomNotFoundError, match=r"only .* mm of the 25 mm CTP404 module"):
        analyze(s.volume)


def test_blank_series(catphan):
    blank = dataclasses.replace(catphan.volume, hu=np.full_like(catphan.volume.hu, -1000.0))
    with pytest.raises(PhantomNotFoundError, match="blank: every voxel is -1000 HU"):
        analyze(blank)


def test_air_only_series(catphan):
    rng = np.random.default_rng(0)
    air = dataclasses.replace(
        catphan.volume,
        hu=(-1000 + 5 * rng.standard_normal(catphan.volume.hu.shape)).astype(np.float32),
    )
    with pytest.raises(PhantomNotFoundError, match="no phantom body"):
        analyze(air, "catphan604")


def test_nan_after_rescale(catphan):
    hu = catphan.volume.hu.copy()
    hu[7, 10:20, 10:20] = np.nan
    with pytest.raises(DicomError, match=r"non-finite HU values .* slice\(s\) 7"):
        analyze(dataclasses.replace(catphan.volume, hu=hu))


def test_wrong_size_object(catphan):
    # a 300 mm cylinder of water is not a 200 mm CatPhan
    v = catphan.volume
    n = v.shape[1]
    yy, xx = np.mgrid[:n, :n]
    disk = (xx - n / 2) ** 2 + (yy - n / 2) ** 2 <= 120**2
    hu = np.where(disk[None], 0.0, -1000.0).astype(np.float32) + np.zeros_like(v.hu)
    with pytest.raises(PhantomNotFoundError, match=r"no slice shows a body the size of CatPhan"):
        analyze(dataclasses.replace(v, hu=hu), "catphan604")


def test_phantom_file_with_a_typo(tmp_path, catphan):
    data = load_phantom("catphan604").to_dict()
    data["modules"][0]["rois"][0]["nominal_hu"] = "-1000x"
    bad = tmp_path / "my_catphan.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(PhantomDefinitionError, match=r"my_catphan.json is invalid: .*nominal_hu"):
        analyze(catphan.volume, bad)
    with pytest.raises(PhantomDefinitionError, match="unknown phantom 'catphan60'"):
        analyze(catphan.volume, "catphan60")


def test_profile_errors(tmp_path, catphan):
    with pytest.raises(ProfileError, match="unknown profile 'sede'"):
        analyze(catphan.volume, profile="sede")
    with pytest.raises(ProfileError, match="needs a baseline result"):
        analyze(catphan.volume, profile="baseline")
    p = tmp_path / "local.json"
    p.write_text("{not json")
    with pytest.raises(ProfileError, match=r"local\.json is not valid JSON"):
        analyze(catphan.volume, profile=p)


def test_override_outside_the_series(catphan):
    n = catphan.volume.shape[0]
    with pytest.raises(PhantomNotFoundError, match=rf"slice={n + 5} is outside the series"):
        analyze(catphan.volume, slice=n + 5)
    with pytest.raises(PhantomNotFoundError, match="was not found in slice 0"):
        analyze(catphan.volume, slice=0)
