"""Noise, miscalibration, determinism, DICOM and ground-truth files, argument checks."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noctis_lab._errors import (
    ManifestError,
    NoFilesFoundError,
    PhantomDefinitionError,
    SliceGapWarning,
)
from noctis_lab.dicom import ScannerInfo, load_series
from noctis_lab.hu.synthetic import (
    TRUTH_FILE,
    GroundTruth,
    SyntheticSeries,
    generate,
    load_truth,
    make_series,
    write,
)

# ----------------------------------------------------------------------------- noise


def _uniform_pixels(s: SyntheticSeries, radius_mm: float) -> np.ndarray:
    """Pixels of the water cylinder within ``radius_mm`` of its centre, every slice."""
    t = s.truth
    n = t.matrix
    yy, xx = np.mgrid[:n, :n]
    crow, ccol = t.centre_pixel
    mask = (yy - crow) ** 2 + (xx - ccol) ** 2 <= (radius_mm / t.pixel_size_mm) ** 2
    return s.volume.hu[:, mask]


@pytest.mark.parametrize(("sd", "corr_mm"), [(10.0, 0.8), (25.0, 0.0), (4.0, 1.5)])
def test_noise_sd_matches_the_request(sd: float, corr_mm: float) -> None:
    s = generate(
        "water",
        matrix=256,
        pixel_size_mm=1.0,
        n_slices=4,
        noise_sd_hu=sd,
        noise_correlation_mm=corr_mm,
        seed=11,
    )
    values = _uniform_pixels(s, 80.0)
    assert float(values.mean()) == pytest.approx(0.0, abs=0.1 * sd)
    assert float(values.std()) == pytest.approx(sd, rel=0.05)


def test_noise_is_spatially_correlated_as_specified() -> None:
    """A Gaussian filter of sigma s (px) gives neighbour correlation exp(-1 / (4 s^2))."""
    s = generate(
        "water",
        matrix=256,
        pixel_size_mm=0.8,
        n_slices=2,
        noise_sd_hu=10.0,
        noise_correlation_mm=1.2,
        seed=5,
    )
    img = s.volume.hu[0, 64:192, 64:192].astype(np.float64)
    a, b = img[:, :-1].ravel(), img[:, 1:].ravel()
    rho = float(np.corrcoef(a, b)[0, 1])
    sigma_px = 1.2 / 0.8
    assert rho == pytest.approx(math.exp(-1.0 / (4 * sigma_px**2)), abs=0.04)
    white = generate(
        "water",
        matrix=128,
        pixel_size_mm=1.6,
        n_slices=2,
        noise_sd_hu=10.0,
        noise_correlation_mm=0.0,
        seed=5,
    )
    w = white.volume.hu[0, 32:96, 32:96].astype(np.float64)
    assert abs(float(np.corrcoef(w[:, :-1].ravel(), w[:, 1:].ravel())[0, 1])) < 0.06
    # slices have independent noise
    other = s.volume.hu[1, 64:192, 64:192].astype(np.float64)
    assert abs(float(np.corrcoef(img.ravel(), other.ravel())[0, 1])) < 0.15


# ----------------------------------------------------------------------------- calibration


def test_miscalibration_is_applied_per_material(tricky: SyntheticSeries) -> None:
    t = tricky.truth
    assert (t.scale, t.offset_hu) == (1.03, -4.0)
    assert t.material_offsets_hu == {"Air": -6.0, "Teflon": 25.0}
    assert t.roi("CTP404", "teflon").true_hu == pytest.approx(1.03 * 1000 - 4 + 25)
    assert t.roi("CTP404", "air_top").true_hu == pytest.approx(1.03 * -1000 - 4 - 6)
    assert t.roi("CTP404", "delrin").true_hu == pytest.approx(1.03 * 365 - 4)
    assert t.roi("CTP404", "background").true_hu == pytest.approx(-4.0)
    assert t.roi("CTP486", "centre").true_hu == pytest.approx(-4.0)
    assert t.true_hu(1000.0, "Teflon") == t.roi("CTP404", "teflon").true_hu
    for r in t.rois:
        if r.role == "insert":
            assert r.nominal_hu is not None
            assert r.true_hu == pytest.approx(t.true_hu(r.nominal_hu, r.material))
    # the air around the phantom is air too
    assert float(tricky.volume.hu[0, 0, 0]) == pytest.approx(1.03 * -1000 - 4 - 6)


def test_unknown_material_offset_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"no material 'Tefloon'.*Teflon"):
        generate("catphan604", matrix=256, pixel_size_mm=1.0, material_offsets_hu={"Tefloon": 5})


# ----------------------------------------------------------------------------- determinism


def test_same_arguments_same_arrays(noisy: SyntheticSeries, noisy_kwargs: dict[str, Any]) -> None:
    again = generate("catphan604", **noisy_kwargs)
    np.testing.assert_array_equal(again.volume.hu, noisy.volume.hu)
    assert again.truth == noisy.truth
    assert again.volume.series_uid == noisy.volume.series_uid
    other = generate("catphan604", **{**noisy_kwargs, "seed": 8})
    assert not np.array_equal(other.volume.hu, noisy.volume.hu)
    assert other.volume.series_uid != noisy.volume.series_uid


def test_same_arguments_same_bytes(
    noisy: SyntheticSeries, noisy_folder: Path, tmp_path: Path
) -> None:
    second = write(noisy, tmp_path / "again")
    names = sorted(p.name for p in noisy_folder.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (noisy_folder / name).read_bytes() == (second / name).read_bytes(), name


def test_missing_slices_do_not_change_the_others(
    noisy: SyntheticSeries, noisy_kwargs: dict[str, Any]
) -> None:
    full = generate("catphan604", **{**noisy_kwargs, "missing_slices": ()})
    assert full.volume.shape[0] == noisy.volume.shape[0] + 2
    kept = [k for k in range(full.volume.shape[0]) if k not in (3, 4)]
    np.testing.assert_array_equal(full.volume.hu[kept], noisy.volume.hu)


# ----------------------------------------------------------------------------- files


def test_written_series_round_trips_through_load_series(
    noisy: SyntheticSeries, noisy_folder: Path
) -> None:
    with pytest.warns(SliceGapWarning, match="about 2 missing slice"):
        vol = load_series(noisy_folder)
    assert vol.shape == noisy.volume.shape
    assert np.abs(vol.hu - noisy.volume.hu).max() <= 0.5 + 1e-3  # stored as whole HU
    assert vol.slice_positions == pytest.approx(noisy.volume.slice_positions)
    assert vol.origin == pytest.approx(noisy.volume.origin)
    assert vol.spacing == pytest.approx(noisy.volume.spacing)
    assert vol.series_uid == noisy.truth.series_uid
    assert vol.study_uid == noisy.truth.study_uid
    assert vol.scanner == noisy.truth.scanner


def test_missing_slices_are_absent_from_the_files(
    noisy: SyntheticSeries, noisy_folder: Path
) -> None:
    t = noisy.truth
    assert t.missing_slices == (3, 4)
    files = sorted(noisy_folder.glob("*.dcm"))
    assert len(files) == len(t.slice_positions_mm) == noisy.volume.shape[0]
    import pydicom

    found = {
        round(float(pydicom.dcmread(f, stop_before_pixels=True).SliceLocation), 3) for f in files
    }
    for z in t.missing_slice_positions_mm:
        assert round(z, 3) not in found
    assert found == {round(z, 3) for z in t.slice_positions_mm}


def test_truth_round_trip(noisy: SyntheticSeries, noisy_folder: Path) -> None:
    t = noisy.truth
    assert GroundTruth.from_dict(json.loads(t.to_json())) == t
    assert load_truth(noisy_folder) == t
    assert load_truth(noisy_folder / TRUTH_FILE) == t
    params = t.parameters
    for key in (
        "matrix",
        "pixel_size_mm",
        "slice_thickness_mm",
        "noise_sd_hu",
        "noise_correlation_mm",
        "blur_mm",
        "scale",
        "offset_hu",
        "material_offsets_hu",
        "shift_mm",
        "roll_deg",
        "missing_slices",
        "ring_artifact_hu",
        "metal_streaks",
        "seed",
        "scanner",
        "acquisition_datetime",
        "series_uid",
        "n_slices",
        "z_range_mm",
        "couch",
        "phantom",
    ):
        assert key in params, key
    frame = t.to_dataframe()
    assert len(frame) == len(t.rois)
    assert {"true_hu", "row", "col", "x_mm", "y_mm"} <= set(frame.columns)


def test_truth_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NoFilesFoundError, match="no ground truth file"):
        load_truth(tmp_path)
    (tmp_path / TRUTH_FILE).write_text("{ not json", encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_truth(tmp_path)
    (tmp_path / TRUTH_FILE).write_text('{"schema": "other"}', encoding="utf-8")
    with pytest.raises(ManifestError, match="schema"):
        load_truth(tmp_path)


def test_write_refuses_to_mix_series(noisy: SyntheticSeries, tmp_path: Path) -> None:
    folder = make_series(tmp_path / "s", "water", matrix=128, pixel_size_mm=2.0, n_slices=3)
    assert load_truth(folder).phantom == "water"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write(noisy, folder)
    (folder / "notes.txt").write_text("keep me", encoding="utf-8")
    write(noisy, folder, overwrite=True)
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert len(list(folder.glob("*.dcm"))) == noisy.volume.shape[0]
    assert load_truth(folder).phantom == "catphan604"


def test_scanner_and_time_are_written() -> None:
    sc = ScannerInfo(manufacturer="ACME", model="CT-9", serial="42", station="ROOM9")
    s = generate(
        "water",
        matrix=128,
        pixel_size_mm=2.0,
        n_slices=2,
        scanner=sc,
        acquisition_datetime="2026-05-04T09:10:11",
    )
    assert s.volume.scanner.key == "ACME/CT-9/42"
    assert s.volume.scanner.acquisition_datetime == "2026-05-04T09:10:11"
    assert s.volume.scanner.slice_thickness_mm == 2.0
    assert s.truth.scanner == s.volume.scanner


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"matrix": 256, "pixel_size_mm": 0.5}, PhantomDefinitionError, "does not fit"),
        ({"shift_mm": (40.0, 0.0, 0.0)}, PhantomDefinitionError, "does not fit"),
        ({"noise_sd_hu": -1.0}, ValueError, "noise_sd_hu must be >= 0"),
        ({"pixel_size_mm": 0.0}, ValueError, "pixel_size_mm must be > 0"),
        ({"scale": float("nan")}, ValueError, "scale must be finite"),
        ({"matrix": 256.0}, ValueError, "matrix must be an integer"),
        ({"n_slices": 3, "z_range_mm": (0.0, 4.0)}, ValueError, "not both"),
        ({"z_range_mm": (5.0, 0.0)}, ValueError, "below first"),
        ({"n_slices": 3, "missing_slices": (3,)}, ValueError, "beyond the 3 slices"),
        ({"n_slices": 2, "missing_slices": (0, 1)}, ValueError, "every slice"),
        ({"shift_mm": (1.0, 2.0)}, ValueError, r"shift_mm must be \(x, y, z\)"),
        ({"series_uid": "not-a-uid"}, ValueError, "not a valid DICOM UID"),
        ({"acquisition_datetime": "20260101"}, ValueError, "YYYY-MM-DD"),
        ({"metal_streaks": 1}, ValueError, "metal_streaks must be True or False"),
    ],
)
def test_bad_arguments_are_named(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    base: dict[str, Any] = {"matrix": 128, "pixel_size_mm": 2.0}
    with pytest.raises(error, match=match):
        generate("catphan604", **{**base, **kwargs})


def test_unknown_phantom() -> None:
    with pytest.raises(PhantomDefinitionError, match="unknown phantom 'catphan999'"):
        generate("catphan999")


def test_user_phantom_file(tmp_path: Path) -> None:
    from noctis_lab.hu import load_phantom

    data = load_phantom("cirs062m").to_dict()
    data["name"] = "my-ed"
    path = tmp_path / "my-ed.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    s = generate(path, matrix=128, pixel_size_mm=2.0, n_slices=1)
    assert s.truth.phantom == "my-ed"
    assert s.truth.parameters["phantom"] == str(path)


def test_given_series_uid_is_used() -> None:
    s = generate("water", matrix=128, pixel_size_mm=2.0, n_slices=1, series_uid="1.2.3.4.5")
    assert s.volume.series_uid == s.truth.series_uid == "1.2.3.4.5"


def test_written_warning_free_without_gaps(tmp_path: Path) -> None:
    folder = make_series(
        tmp_path / "w",
        "acr464",
        matrix=128,
        pixel_size_mm=2.0,
        slice_thickness_mm=10.0,
        noise_sd_hu=5.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vol = load_series(folder)
    truth = load_truth(folder)
    assert vol.shape[0] == len(truth.slice_positions_mm)
    water = truth.roi("module1", "water")
    assert water.slice_index is not None
    yy, xx = np.mgrid[:128, :128]
    mask = (yy - water.row) ** 2 + (xx - water.col) ** 2 <= (water.radius_mm / 2.0) ** 2
    assert float(vol.hu[water.slice_index][mask].mean()) == pytest.approx(0.0, abs=4.0)
