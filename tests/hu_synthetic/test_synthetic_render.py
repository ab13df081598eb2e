"""The generator draws what its ground truth says: positions, values, partial volume."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from noctis_lab.hu import list_phantoms, load_phantom
from noctis_lab.hu.synthetic import RAMP_ANGLE_DEG, SyntheticSeries, generate


def disc_mean(image: npt.NDArray[np.float32], row: float, col: float, radius_px: float) -> float:
    """Mean of the pixels whose centres lie within ``radius_px`` of ``(row, col)``."""
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    mask = (yy - row) ** 2 + (xx - col) ** 2 <= radius_px**2
    assert mask.sum() >= 9, "the test disc is too small to mean anything"
    return float(image[mask].mean())


@pytest.mark.parametrize("name", list_phantoms())
def test_every_builtin_phantom_generates_with_its_rois(name: str) -> None:
    s = generate(name, matrix=256, pixel_size_mm=1.0, slice_thickness_mm=10.0, roll_deg=5.0)
    ph = load_phantom(name)
    assert s.volume.hu.dtype == np.float32
    assert s.volume.hu.shape[1:] == (256, 256)
    assert len(s.truth.rois) == sum(len(m.rois) for m in ph.modules)
    assert [m.name for m in s.truth.modules] == [m.name for m in ph.modules]
    for r in s.truth.rois:  # each insert is drawn at its truth position with its value
        assert r.slice_index is not None
        value = disc_mean(s.volume.hu[r.slice_index], r.row, r.col, r.radius_mm)
        assert value == pytest.approx(r.true_hu, abs=0.5), f"{name} {r.module}.{r.name}"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("catphan604", {}),
        ("acr464", {"shift_mm": (-11.0, 7.5, -2.0), "roll_deg": -33.0, "scale": 0.96}),
        ("cirs062m", {"shift_mm": (3.3, 4.4, 0.0), "roll_deg": 61.0, "offset_hu": 12.0}),
        ("catphan504", {"shift_mm": (0.0, 0.0, 0.0), "roll_deg": 180.0}),
    ],
)
def test_truth_matches_noiseless_image_for_shifted_rolled_phantoms(
    name: str, kwargs: dict[str, Any], tricky: SyntheticSeries
) -> None:
    if name == "catphan604":
        s = tricky
    else:
        s = generate(name, matrix=300, pixel_size_mm=0.8, slice_thickness_mm=3.0, **kwargs)
    t = s.truth
    p = t.pixel_size_mm
    for r in t.rois:
        assert r.slice_index is not None
        radius_px = min(2.0, 0.6 * r.radius_mm) / p
        got = disc_mean(s.volume.hu[r.slice_index], r.row, r.col, radius_px)
        assert got == pytest.approx(r.true_hu, abs=0.5), f"{r.module}.{r.name}"
        # the position: the phantom centre plus the rolled phantom-frame position
        roi = load_phantom(name).module(r.module).roi(r.name)
        x, y = roi.position(t.roll_deg)
        assert r.x_mm == pytest.approx(t.shift_mm[0] + x)
        assert r.y_mm == pytest.approx(t.shift_mm[1] + y)
        assert r.col == pytest.approx((r.x_mm + (t.matrix - 1) / 2 * p) / p)
        assert r.row == pytest.approx((r.y_mm + (t.matrix - 1) / 2 * p) / p)


def test_roll_moves_inserts_clockwise_on_screen() -> None:
    """A ROI at angle a (delrin: 0 deg, on the right) appears at a + roll: below right."""
    s = generate("catphan604", matrix=256, pixel_size_mm=1.0, n_slices=1, roll_deg=30.0)
    delrin = s.truth.roi("CTP404", "delrin")
    assert delrin.x_mm == pytest.approx(58.7 * math.cos(math.radians(30.0)))
    assert delrin.y_mm == pytest.approx(58.7 * math.sin(math.radians(30.0)))
    assert delrin.y_mm > 0  # y down: clockwise on screen


def test_edges_are_area_weighted() -> None:
    """The image integral equals the analytic one: every edge pixel holds its coverage."""
    s = generate(
        "cirs062m",
        matrix=200,
        pixel_size_mm=1.1,
        z_range_mm=(0.0, 0.0),
        shift_mm=(1.37, -2.21, 0.0),
        roll_deg=7.0,
    )
    img = s.volume.hu[0].astype(np.float64)
    ph = load_phantom("cirs062m")
    assert ph.body.radius_mm is not None
    area = math.pi * ph.body.radius_mm**2 * 1000.0  # body (0 HU) over air (-1000)
    for r in ph.module().inserts:
        assert r.nominal_hu is not None and r.insert_radius_mm is not None
        area += math.pi * r.insert_radius_mm**2 * (r.nominal_hu - 0.0)
    measured = float(np.sum(img + 1000.0)) * 1.1**2
    assert measured == pytest.approx(area, rel=2e-4)
    partial = (img > -999.0) & (img < -1.0)  # body edge pixels lie strictly between
    assert partial.sum() > 100


def test_partial_volume_at_module_boundary_and_air_outside() -> None:
    # CTP404 spans -12.5..12.5 mm; body only from 12.5 to the CTP528 at 20 mm.
    s = generate(
        "catphan604", matrix=256, pixel_size_mm=1.0, slice_thickness_mm=5.0, z_range_mm=(0.0, 100.0)
    )
    t = s.truth
    pos = list(t.slice_positions_mm)
    teflon = t.roi("CTP404", "teflon")
    centre = s.volume.hu[pos.index(0.0)]
    boundary = s.volume.hu[pos.index(10.0)]  # window 7.5..12.5: all CTP404
    straddle = s.volume.hu[pos.index(15.0)]  # window 12.5..17.5: all body
    assert disc_mean(centre, teflon.row, teflon.col, 2.5) == pytest.approx(1000.0, abs=0.5)
    assert disc_mean(boundary, teflon.row, teflon.col, 2.5) == pytest.approx(1000.0, abs=0.5)
    assert disc_mean(straddle, teflon.row, teflon.col, 2.5) == pytest.approx(0.0, abs=0.5)
    s2 = generate(
        "catphan604", matrix=256, pixel_size_mm=1.0, slice_thickness_mm=5.0, z_range_mm=(12.5, 12.5)
    )
    half = disc_mean(s2.volume.hu[0], teflon.row, teflon.col, 2.5)
    assert half == pytest.approx(500.0, abs=0.5)  # half CTP404 (1000), half body (0)
    # between modules: the body and its shell, nothing else
    crow, ccol = t.centre_pixel
    assert straddle[round(crow), round(ccol + 98.5)] == pytest.approx(150.0)  # 3 mm shell
    yy, xx = np.mgrid[:256, :256]
    inner = (yy - crow) ** 2 + (xx - ccol) ** 2 <= 96.0**2
    assert np.all(straddle[inner] == 0.0)  # no inserts, no ramps, no holes
    # beyond the phantom (ends at 60 mm): air only
    air = s.volume.hu[pos.index(100.0)]
    assert np.all(air == -1000.0)
    assert t.module("CTP528").z_start_mm == pytest.approx(20.0)


def test_overlapping_module_definitions_split_halfway() -> None:
    # the 604 file gives CTP486 (-80, 50 mm) and CTP515 (-40, 40 mm): they overlap at -60..-55
    s = generate("catphan604", matrix=128, pixel_size_mm=2.0, n_slices=1)
    assert s.truth.module("CTP486").z_end_mm == pytest.approx(-60.0)
    assert s.truth.module("CTP515").z_start_mm == pytest.approx(-60.0)
    assert s.truth.module("CTP486").z_start_mm == pytest.approx(-105.0)


def test_shift_z_moves_the_modules() -> None:
    s = generate("catphan604", matrix=128, pixel_size_mm=2.0, shift_mm=(0.0, 0.0, 7.0))
    for m in s.truth.modules:
        assert m.z_mm == pytest.approx(7.0 + load_phantom("catphan604").module(m.name).z_offset_mm)
        assert m.centre_slice_z_mm is not None
        assert abs(m.centre_slice_z_mm - m.z_mm) <= s.truth.slice_thickness_mm / 2


def test_ramp_length_encodes_slice_thickness() -> None:
    """The top wire ramp shows a segment T / tan(23 deg) long (its integral says so)."""
    for thickness in (2.0, 5.0):
        s = generate(
            "catphan604",
            matrix=512,
            pixel_size_mm=0.5,
            slice_thickness_mm=thickness,
            z_range_mm=(0.0, 0.0),
        )
        img = s.volume.hu[0].astype(np.float64)
        c = (512 - 1) / 2
        rows = slice(int(c - 38 / 0.5 - 6), int(c - 38 / 0.5 + 7))
        cols = slice(int(c - 40), int(c + 41))
        excess = float(np.sum(img[rows, cols])) * 0.25  # background is 0 HU
        wire = 1500.0 * min(1.0, 1.0 / (thickness * math.cos(math.radians(RAMP_ANGLE_DEG))))
        length = excess / wire / 1.0  # wire 1 mm wide
        assert length == pytest.approx(thickness / math.tan(math.radians(RAMP_ANGLE_DEG)), rel=0.02)


def test_blur_keeps_roi_means_and_softens_edges(
    tricky: SyntheticSeries, tricky_kwargs: dict[str, Any]
) -> None:
    blurred = generate("catphan604", **{**tricky_kwargs, "blur_mm": 0.6})
    t = blurred.truth
    k = t.module("CTP404").centre_slice_index
    assert k is not None
    for r in t.rois:
        if r.module != "CTP404":
            continue
        got = disc_mean(blurred.volume.hu[k], r.row, r.col, 2.0 / t.pixel_size_mm)
        assert got == pytest.approx(r.true_hu, abs=0.5)
    sharp_grad = np.abs(np.diff(tricky.volume.hu[k], axis=1)).max()
    soft_grad = np.abs(np.diff(blurred.volume.hu[k], axis=1)).max()
    assert soft_grad < 0.8 * sharp_grad


def test_artifacts(noisy: SyntheticSeries) -> None:
    art = noisy.truth.artifacts
    assert len(art["ring_radii_mm"]) == 4
    assert len(art["metal_positions_mm"]) == 2
    for mx, my in art["metal_positions_mm"]:  # rods never touch a ROI
        for r in noisy.truth.rois:
            assert math.dist((mx, my), (r.x_mm, r.y_mm)) > r.insert_radius_mm + 1.5
    clean_kw: dict[str, Any] = {
        "matrix": 256,
        "pixel_size_mm": 1.0,
        "slice_thickness_mm": 5.0,
        "shift_mm": (2.0, -3.0, 1.0),
        "roll_deg": -4.0,
    }
    plain = generate("catphan604", z_range_mm=(0.0, 0.0), **clean_kw)
    ringed = generate(
        "catphan604", z_range_mm=(0.0, 0.0), ring_artifact_hu=20.0, seed=3, **clean_kw
    )
    diff = (ringed.volume.hu[0] - plain.volume.hu[0]).astype(np.float64)
    ax = (np.arange(256) - 127.5) * 1.0
    rr = np.hypot(ax[None, :], ax[:, None])
    radii = ringed.truth.artifacts["ring_radii_mm"]
    near = np.min(np.abs(rr[..., None] - np.asarray(radii)), axis=-1) < 3.0
    assert np.abs(diff[near]).max() > 15.0
    assert np.abs(diff[~near]).max() < 0.05
    metal = generate("catphan604", z_range_mm=(0.0, 0.0), metal_streaks=True, **clean_kw)
    mx, my = metal.truth.artifacts["metal_positions_mm"][0]
    row, col = round(my + 127.5), round(mx + 127.5)
    assert metal.volume.hu[0, row, col] > 1500.0
    couch = generate("catphan604", z_range_mm=(200.0, 200.0), couch=True, **clean_kw)
    below = couch.volume.hu[0, 127 + 95 :, 128]
    assert below.max() > 200.0  # the couch skin, in a slice beyond the phantom
    far = generate("catphan604", z_range_mm=(200.0, 200.0), **clean_kw)
    assert np.all(far.volume.hu == -1000.0)
