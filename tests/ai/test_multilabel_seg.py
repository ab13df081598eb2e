"""Multi-label segmentation (per-label Dice, HD95, NSD; MONAI is the referee) and DICOM SEG
masks as ground truth (made here with highdicom from known masks, read back through the
test-set loader)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _dicom_seg import build_seg

from noctis_lab import ManifestError, ModelCheckError
from noctis_lab.ai import load_test_set
from noctis_lab.ai._metrics import multilabel_segmentation_metrics

LABELS = ("insert", "core", "rim")


def _random_masks(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, 40, 40) truth and prediction: rectangles, predictions jittered."""
    gt = np.zeros((n, 3, 40, 40), bool)
    pr = np.zeros_like(gt)
    for i in range(n):
        for k in range(3):
            r, c = rng.integers(2, 22, 2)
            h, w = rng.integers(4, 14, 2)
            gt[i, k, r : r + h, c : c + w] = True
            dr, dc = rng.integers(-2, 3, 2)
            pr[i, k, max(r + dr, 0) : r + h + dr, max(c + dc, 0) : c + w + dc] = True
            pr[i, k] ^= rng.random((40, 40)) < 0.01  # speckle: distant false pixels
    return gt, pr


def test_multilabel_metrics_match_monai() -> None:
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

    rng = np.random.default_rng(11)
    gt, pr = _random_masks(rng, 8)
    pr[2, 1] = False  # an empty prediction: NSD 0 (MONAI counts it), HD95 undefined
    spacing = [tuple(rng.uniform(0.5, 1.5, 2)) for _ in range(8)]
    m = multilabel_segmentation_metrics(
        pr, gt, LABELS, spacing=spacing, nsd_tolerance_mm=1.5, n_boot=100
    )
    yp, yt = torch.from_numpy(pr.astype(np.float32)), torch.from_numpy(gt.astype(np.float32))
    dice = compute_dice(yp, yt, include_background=True).numpy()  # (n, L)
    hd = np.stack(
        [
            compute_hausdorff_distance(
                yp[i : i + 1],
                yt[i : i + 1],
                include_background=True,
                percentile=95,
                spacing=list(spacing[i]),
            ).numpy()[0]
            for i in range(8)
        ]
    )
    nsd = np.stack(
        [
            compute_surface_dice(
                yp[i : i + 1],
                yt[i : i + 1],
                [1.5] * 3,
                include_background=True,
                spacing=list(spacing[i]),
            ).numpy()[0]
            for i in range(8)
        ]
    )
    assert nsd[2, 1] == 0.0 and not np.isfinite(hd[2, 1])  # MONAI's own count of the case
    for k, lab in enumerate(LABELS):
        assert m[f"dice_{lab}"].value == pytest.approx(dice[:, k].mean(), abs=1e-6)
        assert m[f"nsd_{lab}"].value == pytest.approx(nsd[:, k].mean(), abs=1e-6)
        ok = np.isfinite(hd[:, k])
        assert m[f"hd95_mm_{lab}"].value == pytest.approx(hd[ok, k].mean(), abs=1e-5)
    # the headline: each case's mean over labels, then the mean over cases
    assert m.headline == "dice"
    assert m["dice"].value == pytest.approx(dice.mean(), abs=1e-6)
    case_hd = np.array([row[np.isfinite(row)].mean() for row in hd])
    assert m["hd95_mm"].value == pytest.approx(case_hd.mean(), abs=1e-5)
    assert m["dice"].ci_low < m["dice"].value < m["dice"].ci_high
    assert m["n_undefined_distance"].value == 1


def _ct_series(folder: Path, n_slices: int) -> list[Path]:
    """A small CT series (a bright insert) written as DICOM, with the type-2 attributes a
    DICOM SEG copies from its source images."""
    import pydicom

    from noctis_lab.dicom import Volume, write_series

    hu = np.full((n_slices, 32, 32), -1000.0, np.float32)
    hu[:, 6:22, 6:22] = 200.0
    hu[:, 10:16, 10:16] = 900.0
    uid = f"1.2.826.0.1.3680043.8.498.{n_slices}{os.getpid()}"
    files = write_series(Volume(hu=hu, spacing=(2.0, 0.8, 0.8), series_uid=uid), folder)
    for f in files:
        ds = pydicom.dcmread(f)
        for key, value in {
            "PatientBirthDate": "",
            "PatientSex": "",
            "AccessionNumber": "",
            "ReferringPhysicianName": "",
            "StudyID": "1",
            "StudyDate": "20260101",
            "StudyTime": "120000",
        }.items():
            if key not in ds:
                setattr(ds, key, value)
        ds.save_as(f)
    return files


def _write_seg(files: list[Path], masks: dict[str, np.ndarray], out: Path) -> Path:
    """A binary DICOM SEG with one segment per entry of ``masks`` ((slices, rows, cols))."""
    import pydicom

    build_seg([pydicom.dcmread(f) for f in files], masks).save_as(out)
    return out


def test_dicom_seg_read_back_by_segment_label(tmp_path: Path) -> None:
    files = _ct_series(tmp_path / "ct", 3)
    insert = np.zeros((3, 32, 32), bool)
    insert[:, 6:22, 6:22] = True
    core = np.zeros_like(insert)
    core[1, 10:16, 10:16] = True  # overlaps the insert, on the middle slice only
    seg = _write_seg(files, {"insert": insert, "core": core}, tmp_path / "seg.dcm")
    rows = [{"case_id": "vol", "image": "ct", "mask": "seg.dcm"}]
    meta = {"task": "segmentation", "classes": ["core", "insert"]}
    (tmp_path / "m.json").write_text(json.dumps({"meta": meta, "cases": rows}))
    mask = load_test_set(tmp_path / "m.json").cases[0].mask
    assert mask is not None and mask.shape == (2, 3, 32, 32)
    assert (mask[0] == core).all() and (mask[1] == insert).all()  # by label, not number
    # without labels the truth is binary: a two-segment SEG does not fit
    (tmp_path / "m.json").write_text(json.dumps({"meta": {"task": "segmentation"}, "cases": rows}))
    with pytest.raises(ManifestError, match=r"mask shape \(2, 3, 32, 32\) does not match"):
        load_test_set(tmp_path / "m.json")
    # one slice of the series as a 2-D image: the SEG frames of that slice
    rows = [{"case_id": "mid", "image": f"ct/{files[1].name}", "mask": "seg.dcm"}]
    meta = {"task": "segmentation", "classes": ["insert", "core"]}
    (tmp_path / "m.json").write_text(json.dumps({"meta": meta, "cases": rows}))
    mask = load_test_set(tmp_path / "m.json").cases[0].mask
    assert mask is not None and (mask[0] == insert[1]).all() and (mask[1] == core[1]).all()
    # a label the SEG does not have, and a SEG of another image, name the case
    meta["classes"] = ["insert", "necrosis"]
    (tmp_path / "m.json").write_text(json.dumps({"meta": meta, "cases": rows}))
    with pytest.raises(ManifestError, match=r"case mid\).*no segment labelled 'necrosis'"):
        load_test_set(tmp_path / "m.json")
    other = _ct_series(tmp_path / "other", 1)
    meta["classes"] = ["insert", "core"]
    rows[0]["image"] = f"other/{other[0].name}"
    (tmp_path / "m.json").write_text(json.dumps({"meta": meta, "cases": rows}))
    with pytest.raises(ManifestError, match=r"case mid\).*does not fit the image"):
        load_test_set(tmp_path / "m.json")
    assert seg.exists()


ARCH = textwrap.dedent(
    """
    import torch
    import torch.nn as nn


    class Levels(nn.Module):
        # two labels: pixels above 500 HU ("core") and above 0 HU ("insert"), as
        # probabilities; the order of the channels is the declared classes' order
        def __init__(self):
            super().__init__()
            self.levels = nn.Parameter(torch.tensor([500.0, 0.0]).view(1, 2, 1, 1))

        def forward(self, x):
            return torch.sigmoid((x - self.levels) / 10.0)


    def build():
        return Levels()
    """
)


def test_multilabel_model_on_dicom_seg_truth_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's masks equal the truth except the core's SEG covers one pixel less on
    each side on two of the three slices: Dice(insert) = 1; core Dice per slice 1 on the
    middle slice and 2 * 16 / (36 + 16) = 8/13 on the others -> mean (1 + 16/13) / 3."""
    from noctis_lab.ai import ModelSpec, evaluate, save_model
    from noctis_lab.ai._nets import build_network

    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    mod = f"user_levels_{os.getpid()}"
    (pkg / f"{mod}.py").write_text(ARCH)
    monkeypatch.syspath_prepend(str(pkg))
    files = _ct_series(tmp_path / "ct", 3)
    insert = np.zeros((3, 32, 32), bool)
    insert[:, 6:22, 6:22] = True
    core = np.zeros_like(insert)
    core[:, 11:15, 11:15] = True
    core[1, 10:16, 10:16] = True
    _write_seg(files, {"insert": insert, "core": core}, tmp_path / "seg.dcm")
    rows = [
        {"case_id": f"s{i}", "image": f"ct/{f.name}", "mask": "seg.dcm"}
        for i, f in enumerate(files)
    ]
    meta = {"task": "segmentation", "classes": ["core", "insert"], "name": "seg-truth"}
    (tmp_path / "m.json").write_text(json.dumps({"meta": meta, "cases": rows}))

    def model(classes: tuple[str, ...]) -> Path:
        spec = ModelSpec(
            task="segmentation",
            format="safetensors",
            factory=f"{mod}:build",
            input_shape=(1, 1, 32, 32),
            output_shape=(1, 2, 32, 32),
            classes=classes,
        )
        out = tmp_path / f"levels-{'-'.join(classes)}.safetensors"
        save_model(build_network(f"{mod}:build"), out, spec)
        return out

    res = evaluate(model(("core", "insert")), tmp_path / "m.json", n_boot=0, log_to_mlflow=False)
    m = res.metrics
    assert m["dice_insert"].value == pytest.approx(1.0)
    assert m["dice_core"].value == pytest.approx((1 + 2 * 8 / 13) / 3, abs=1e-6)
    assert m["dice"].value == pytest.approx((1 + (1 + 2 * 8 / 13) / 3) / 2, abs=1e-6)
    with pytest.raises(ModelCheckError, match="class mismatch \\(in another order\\)"):
        evaluate(model(("insert", "core")), tmp_path / "m.json", n_boot=0, log_to_mlflow=False)
