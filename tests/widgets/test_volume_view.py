"""The offline 3-D / orthogonal view: NIfTI bytes, geometry, ROI overlay, bundled JS."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noctis_lab.dicom import Volume
from noctis_lab.widgets import affine_ras, nifti_bytes, roi_label_volume, view_volume
from noctis_lab.widgets._style import STATUS_LABELS


def _read_nifti(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    raw = gzip.decompress(data)
    assert struct.unpack_from("<i", raw, 0)[0] == 348 and raw[344:348] == b"n+1\x00"
    dims = struct.unpack_from("<8h", raw, 40)
    code = struct.unpack_from("<h", raw, 70)[0]
    dtype = {2: np.uint8, 4: np.int16, 16: np.float32}[code]
    off = int(struct.unpack_from("<f", raw, 108)[0])
    nx, ny, nz = dims[1:4]
    arr = np.frombuffer(raw[off:], dtype=np.dtype(dtype).newbyteorder("<")).reshape(nz, ny, nx)
    srow = np.array([struct.unpack_from("<4f", raw, 280 + 16 * i) for i in range(3)])
    return arr, srow


def test_nifti_round_trip_and_affine() -> None:
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1000, size=(4, 6, 8)).astype(np.int16)
    vol = Volume(hu=hu.astype(np.float32), spacing=(2.5, 0.8, 0.7), origin=(-10.0, -20.0, 30.0))
    aff = affine_ras(vol)
    arr, srow = _read_nifti(nifti_bytes(hu, aff))
    assert np.array_equal(arr, hu)
    assert np.allclose(srow, aff[:3])
    # voxel (i=column 3, j=row 2, k=slice 1) in DICOM LPS is origin + 3 dx x + 2 dy y + 1 dz z;
    # NIfTI RAS negates x and y
    lps = np.array([-10.0 + 3 * 0.7, -20.0 + 2 * 0.8, 30.0 + 2.5])
    ras = aff @ np.array([3, 2, 1, 1.0])
    assert np.allclose(ras[:3], lps * [-1, -1, 1])


def test_nifti_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="3-D"):
        nifti_bytes(np.zeros((2, 2), np.int16), np.eye(4))
    with pytest.raises(ValueError, match="float64 is not supported"):
        nifti_bytes(np.zeros((2, 2, 2)), np.eye(4))


def test_roi_overlay_marks_each_roi_with_its_verdict(
    catphan_result: Any, catphan_series: Any
) -> None:
    vol = catphan_series.volume
    labels = roi_label_volume(catphan_result, vol)
    for roi in catphan_result.rois:
        z = catphan_result.localisation.module_slices[roi.module][0]
        row, col = round(roi.y_mm / vol.spacing[1]), round(roi.x_mm / vol.spacing[2])
        assert labels[z, row, col] == STATUS_LABELS[roi.status], roi.name
    outside = [
        i
        for i in range(vol.shape[0])
        if all(i not in s for s in catphan_result.localisation.module_slices.values())
    ]
    assert outside and not labels[outside].any()


def test_view_volume_builds_a_niivue_with_ct_and_rois(
    catphan_result: Any, catphan_series: Any
) -> None:
    nv = view_volume(catphan_series, catphan_result, max_matrix=128, window=400, level=40)
    assert type(nv).__name__ == "NiiVue"
    ct, rois = nv.volumes
    assert (ct.cal_min, ct.cal_max) == (-160.0, 240.0)
    arr, _ = _read_nifti(ct.data)
    assert arr.shape == (catphan_series.volume.shape[0], 128, 128)
    lab, _ = _read_nifti(rois.data)
    assert set(np.unique(lab)) >= {0, STATUS_LABELS["pass"]}
    with pytest.raises(TypeError, match="Volume"):
        view_volume(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="positive width"):
        view_volume(catphan_series, window=0)


def test_ipyniivue_javascript_is_bundled_no_cdn() -> None:
    import ipyniivue

    js = Path(ipyniivue.__file__).parent / "static" / "widget.js"
    text = js.read_text(encoding="utf-8")
    assert len(text) > 1_000_000, "the NiiVue bundle ships inside the wheel"
    # no ES import of a remote module, no dynamic import of a URL
    assert not re.search(r"""(^|[;\n])\s*import[^;\n]*from\s*["']https?://""", text)
    assert not re.search(r"""import\(\s*["']https?://""", text)
