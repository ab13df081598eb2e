"""The HU engine on real phantom scans, against independent reference values.

The scans live in ``../shared/realdata`` (never copied into the repository); the
reference values in ``tests/realdata_reference/<scan>.json`` were measured without
``noctis_lab`` (a from-scratch circular-ROI script checked on rendered images, and
pylinac 3.49 where it runs; see that folder's README). With ``CI=true`` a missing
scan folder fails the suite instead of skipping.

Besides the scans as they are, transformed copies test that the method, not a
constant, makes the result: HU offsets of ±30 and ±100, an in-plane quarter turn,
reversed slice order, and the modules exported as one-slice series.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ci import REALDATA, realdata_dir

from noctis_lab.dicom import Volume, load_series
from noctis_lab.hu import CalibrationResult, analyze, identify

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = ROOT / "tests" / "realdata_reference"
SCANS = (
    "catphan_mft_cbct_head",
    "imageqc_ctp404_fov150",
    "imageqc_water_head",
    "xvi_catphan_3slices",
)
#: Our phantom name for each scan's reference layout (the ROI names of the reference file).
PHANTOM = {
    "catphan_mft_cbct_head": "catphan604",
    "imageqc_ctp404_fov150": "catphan600",
    "imageqc_water_head": "water",
    "xvi_catphan_3slices": "catphan503",
}
#: Issue 12: insert means within 3 HU of the reference on fan-beam CT, 6 HU on CBCT.
TOLERANCE_HU = {"fan": 3.0, "cbct": 6.0}


@pytest.fixture(scope="module")
def realdata() -> Path:
    return realdata_dir()


@cache
def _volume(scan: str) -> Volume:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_series(REALDATA / scan)


def _reference(scan: str) -> dict[str, dict[str, float]]:
    """Module -> ROI -> reference mean (circular-ROI script), edge ROIs at 70 mm left out."""
    data = json.loads((REFERENCES / f"{scan}.json").read_text(encoding="utf-8"))
    out: dict[str, dict[str, float]] = {}
    for module, body in data["circular_roi"]["modules"].items():
        out[module] = {
            name: float(roi["mean"])
            for name, roi in body["rois"].items()
            if not name.endswith("_70mm")
        }
    return out


def _means(result: CalibrationResult) -> dict[tuple[str, str], float]:
    return {(r.module, r.name): r.mean for r in result.rois}


@pytest.mark.parametrize("scan", SCANS)
def test_every_roi_matches_the_independent_reference(realdata: Path, scan: str) -> None:
    vol = _volume(scan)
    result = analyze(vol, PHANTOM[scan])
    ours = _means(result)
    tol = TOLERANCE_HU["cbct" if vol.scanner.cone_beam else "fan"]
    compared = []
    for module, rois in _reference(scan).items():
        for name, ref in rois.items():
            assert (module, name) in ours, f"{scan}: {module}/{name} was not measured"
            assert abs(ours[(module, name)] - ref) <= tol, (
                f"{scan}: {module}/{name} reads {ours[(module, name)]:.1f} HU, "
                f"reference {ref:.1f} HU (tolerance {tol} HU)"
            )
            compared.append(name)
    assert len(compared) >= 5
    assert result.status != "review", result.localisation.notes


def test_cone_beam_scans_are_recognised_and_judged_by_the_cbct_profile(realdata: Path) -> None:
    for scan, cbct in (
        ("catphan_mft_cbct_head", True),
        ("xvi_catphan_3slices", True),
        ("imageqc_water_head", False),
        ("imageqc_ctp404_fov150", False),
    ):
        vol = _volume(scan)
        assert vol.scanner.cone_beam is cbct, (scan, vol.scanner.cone_beam_evidence)
    result = analyze(_volume("catphan_mft_cbct_head"))
    assert result.profile == "cbct"
    assert any("profile cbct chosen" in n for n in result.localisation.notes)
    assert analyze(_volume("imageqc_water_head")).profile == "seed"


@pytest.mark.parametrize(
    ("scan", "expected"),
    [
        ("catphan_mft_cbct_head", {"catphan604"}),
        ("imageqc_water_head", {"water"}),
        # the 503's other modules are where the 503 has them (a 600's water vial, empty
        # or full, is no evidence: the module spacing tells them apart)
        ("xvi_catphan_3slices", {"catphan503"}),
    ],
)
def test_phantom_identified_from_the_images(realdata: Path, scan: str, expected: set[str]) -> None:
    ident = identify(_volume(scan))
    assert ident.phantom in expected, ident.to_dict()
    assert ident.evidence


def test_a_ctp404_alone_that_two_models_explain_is_not_guessed(realdata: Path) -> None:
    # the 600's CTP404 is the 503's turned half a turn, but for a water vial, which is
    # empty here; with no other module in the series nothing tells them apart
    from noctis_lab._errors import PhantomNotFoundError

    with pytest.raises(PhantomNotFoundError, match=r"cannot tell.*catphan503.*catphan600"):
        identify(_volume("imageqc_ctp404_fov150"))
    done = _cli("hu", "analyze", str(realdata / "imageqc_ctp404_fov150"))
    assert done.returncode == 2 and "--phantom NAME" in done.stderr


def test_an_empty_vial_is_a_missing_insert_not_a_calibration_error(realdata: Path) -> None:
    result = analyze(_volume("imageqc_ctp404_fov150"), "catphan600", "seed")
    vial = next(r for r in result.rois if r.name == "water_vial")
    assert vial.mean < -900 and vial.status == "not_checked"
    assert not any("water_vial" in c.id for c in result.checks)
    assert "Water" not in result.linearity.materials
    assert any(r.startswith("Missing insert: CTP404/water_vial") for r in result.recommendations)


def _shifted(vol: Volume, offset: float) -> Volume:
    return dataclasses.replace(vol, hu=vol.hu + np.float32(offset))


@pytest.mark.parametrize("offset", [-100.0, -30.0, 30.0, 100.0])
@pytest.mark.parametrize("scan", ["imageqc_ctp404_fov150", "xvi_catphan_3slices"])
def test_hu_offsets_shift_every_roi_by_the_offset(realdata: Path, scan: str, offset: float) -> None:
    base = _means(analyze(_volume(scan), PHANTOM[scan]))
    moved = analyze(_shifted(_volume(scan), offset), PHANTOM[scan])
    assert moved.status != "review", moved.localisation.notes
    for key, value in _means(moved).items():
        assert value - base[key] == pytest.approx(offset, abs=0.5), key


def test_cbct_with_a_large_offset_and_a_quarter_turn(realdata: Path) -> None:
    vol = _volume("catphan_mft_cbct_head")
    base = analyze(vol, "catphan604")
    turned = dataclasses.replace(
        vol, hu=np.ascontiguousarray(np.rot90(vol.hu + 100, 1, axes=(1, 2)))
    )
    result = analyze(turned)
    assert result.phantom == "catphan604"
    assert result.status != "review", result.localisation.notes
    # np.rot90 turns the image counter-clockwise on screen: the roll changes by -90 deg
    d_roll = (result.localisation.roll_deg - base.localisation.roll_deg + 180) % 360 - 180
    assert d_roll == pytest.approx(-90.0, abs=0.5)
    ours, ref = _means(result), _means(base)
    for key in ref:
        if key[0] == "CTP404":
            assert ours[key] - ref[key] == pytest.approx(100.0, abs=1.5), key


@pytest.mark.parametrize("roll", [37.0, 180.0, 233.0])
def test_any_roll_including_upside_down(realdata: Path, roll: float) -> None:
    from scipy import ndimage

    vol = _volume("imageqc_ctp404_fov150")
    turned = ndimage.rotate(vol.hu, roll, axes=(1, 2), reshape=False, order=1, cval=-1000.0)
    base = analyze(vol, "catphan600")
    result = analyze(dataclasses.replace(vol, hu=turned.astype(np.float32)), "catphan600")
    assert result.status != "review", result.localisation.notes
    # ndimage.rotate turns the image counter-clockwise on screen; our roll is clockwise
    d_roll = (result.localisation.roll_deg - base.localisation.roll_deg + roll + 180) % 360 - 180
    assert abs(d_roll) < 1.0
    ours, ref = _means(result), _means(base)
    for key, value in ref.items():
        if ref[key] > -900:  # air edges blur most under interpolation
            assert abs(ours[key] - value) < 6.0, key


def test_reversed_slice_order_finds_the_modules_the_other_way(realdata: Path) -> None:
    vol = _volume("catphan_mft_cbct_head")
    flipped = dataclasses.replace(vol, hu=np.ascontiguousarray(vol.hu[::-1]))
    base, result = analyze(vol, "catphan604"), analyze(flipped, "catphan604")
    assert result.status != "review", result.localisation.notes
    assert any("opposite z direction" in n for n in result.localisation.notes)
    ours, ref = _means(result), _means(base)
    for key, value in ref.items():
        assert abs(ours[key] - value) < 6.0, key


def _split_into_one_slice_series(src: Path, dst: Path) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    dst.mkdir()
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = generate_uid()
        ds.SeriesDescription = f"module slice {f.stem}"
        ds.save_as(dst / f.name)


def test_one_series_per_module_is_one_acquisition(realdata: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sequence"
    _split_into_one_slice_series(realdata / "xvi_catphan_3slices", folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        merged = load_series(folder)
    assert merged.shape[0] == 3 and merged.series_uid.count("+") == 2
    ours = _means(analyze(merged))
    ref = _means(analyze(_volume("xvi_catphan_3slices")))
    assert ours.keys() == ref.keys()
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-3), key


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("noctis-lab")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_on_a_folder_with_several_acquisitions(realdata: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "export"
    shutil.copytree(realdata / "imageqc_water_head", mixed / "water")
    _split_into_one_slice_series(realdata / "xvi_catphan_3slices", mixed / "xvi")
    (mixed / "notes.txt").write_text("not DICOM\n")
    done = _cli("hu", "analyze", str(mixed), "--json")
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert sorted(r["phantom"] for r in results) == ["catphan503", "water"]
    assert "Traceback" not in done.stderr
    water_uid = next(r["series_uid"] for r in results if r["phantom"] == "water")
    one = _cli("hu", "analyze", str(mixed), "--series", water_uid, "--json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["phantom"] == "water"
    bad = _cli("hu", "analyze", str(mixed), "--series", "1.2.3.4")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "1.2.3.4" in bad.stderr
