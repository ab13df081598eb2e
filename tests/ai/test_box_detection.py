"""Detectors that output boxes: IoU one-to-one matching, COCO mAP / AP50 / AP75, IoU FROC.

Referees: neither pycocotools nor torchmetrics is installed, so (1) a small case whose
values are worked out by hand below, and (2) a brute-force COCO evaluation written here
from the COCO definition (pycocotools' ``evaluateImg`` + ``accumulate``), run on random
images; ``box_detection_metrics`` delegates AP to MONAI's ``COCOMetric``, so the second
check also pins how we call it (box layout, max detections, the IoU grid).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from noctis_lab.ai._metrics import box_detection_metrics, box_iou, match_boxes_one_to_one


def test_box_metrics_hand_checked() -> None:
    """One image, targets G1 = [0, 0, 10, 10] and G2 = [20, 20, 30, 30].

    Detections: P1 = G1 (score 0.9, IoU 1), P2 = [20, 20, 30, 35] (score 0.8; IoU with
    G2 = 100 / (100 + 150 - 100) = 2/3), P3 = [50, 50, 60, 60] (0.7, overlaps nothing).

    * IoU thresholds 0.50, 0.55, 0.60, 0.65 (<= 2/3): P1, P2 true, P3 false; recall
      0.5, 1, 1 and precision 1, 1, 2/3: the interpolated precision is 1 at every recall
      point, AP = 1.
    * thresholds 0.70 ... 0.95 (six): only P1 is true; recall stays 0.5 with precision 1
      up to it: 51 of the 101 recall points (0, 0.01, ..., 0.50) have precision 1,
      AP = 51/101.
    * mAP = (4 * 1 + 6 * 51/101) / 10 = 0.702970...; AP50 = 1; AP75 = 51/101.
    * FROC at IoU 0.5: both targets found at 1 false positive per image (P3), so the
      sensitivity at 1 FP/image is 1; at 0.5 FP/image (threshold above 0.7) also 1.
    """
    pred = [np.array([[0, 0, 10, 10], [20, 20, 30, 35], [50, 50, 60, 60]], float)]
    scores = [np.array([0.9, 0.8, 0.7])]
    gt = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)]
    m = box_detection_metrics(pred, scores, gt, n_boot=0)
    assert m["map"].value == pytest.approx((4 + 6 * 51 / 101) / 10, abs=1e-6)
    assert m["ap_iou_0.5"].value == pytest.approx(1.0)
    assert m["ap_iou_0.75"].value == pytest.approx(51 / 101, abs=1e-6)
    assert m["sensitivity_at_1_fp"].value == pytest.approx(1.0)
    assert m.per_case["false_positives"].tolist() == [1]
    assert m.per_case["targets_hit"].tolist() == [2.0]
    # at a stricter FROC criterion P2 (IoU 2/3) no longer counts
    strict = box_detection_metrics(pred, scores, gt, iou_threshold=0.7, n_boot=0)
    assert strict.per_case["targets_hit"].tolist() == [1.0]
    assert strict["sensitivity_at_1_fp"].value == pytest.approx(0.5)


def test_duplicates_are_false_positives_and_close_targets_both_credited() -> None:
    targets = np.array([[0, 0, 10, 10], [0, 6, 10, 16]], float)  # overlapping targets
    # the best box sits between them but closer to the second; a second box on target 1
    boxes = np.array([[0, 5, 10, 15], [0, 0, 10, 10], [0, 0, 10, 11]], float)
    fp, tp = match_boxes_one_to_one(boxes, np.array([0.9, 0.8, 0.7]), targets, 0.5)
    # box 0: IoU 1/3 with target 0 and 9/11 with target 1 -> claims target 1
    assert box_iou(boxes[:1], targets)[0] == pytest.approx([50 / 150, 90 / 110])
    assert tp.tolist() == [0.8, 0.9]  # target 0 by box 1, target 1 by box 0
    assert fp.tolist() == [0.7]  # box 2 overlaps only claimed targets: a duplicate, false


def _coco_ap_reference(
    pred: list[np.ndarray], scores: list[np.ndarray], gt: list[np.ndarray], t: float
) -> float:
    """COCO AP at one IoU threshold, written out from pycocotools' algorithm."""
    matched_scores, is_tp = [], []
    for pb, sc, gb in zip(pred, scores, gt, strict=True):
        order = np.argsort(-sc, kind="mergesort")[:100]
        used = set()
        for i in order:
            best, best_iou = -1, min(t, 1 - 1e-10)
            for j in range(len(gb)):
                if j in used:
                    continue
                lo = np.maximum(pb[i, :2], gb[j, :2])
                hi = np.minimum(pb[i, 2:], gb[j, 2:])
                inter = float(np.prod(np.clip(hi - lo, 0, None)))
                union = float(np.prod(pb[i, 2:] - pb[i, :2]) + np.prod(gb[j, 2:] - gb[j, :2]))
                iou = inter / (union - inter)
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best >= 0:
                used.add(best)
            matched_scores.append(sc[i])
            is_tp.append(best >= 0)
    n_gt = sum(len(g) for g in gt)
    order = np.argsort(-np.asarray(matched_scores), kind="mergesort")
    tp = np.cumsum(np.asarray(is_tp)[order])
    fp = np.cumsum(~np.asarray(is_tp)[order])
    recall = tp / n_gt
    precision = tp / (tp + fp + np.spacing(1))
    for k in range(len(precision) - 1, 0, -1):  # the precision envelope
        precision[k - 1] = max(precision[k - 1], precision[k])
    rec_points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, rec_points, side="left")
    q = [precision[i] if i < len(precision) else 0.0 for i in idx]
    return float(np.mean(q))


def test_map_equals_a_brute_force_coco_evaluation() -> None:
    rng = np.random.default_rng(7)
    pred, scores, gt = [], [], []
    for _ in range(12):
        k = int(rng.integers(0, 5))
        lo = rng.uniform(0, 200, size=(k, 2))
        g = np.concatenate([lo, lo + rng.uniform(8, 40, size=(k, 2))], axis=1)
        # detections: jittered copies of some targets plus random false boxes
        hit = g[rng.random(k) < 0.8]
        jit = hit + rng.normal(0, 3, size=hit.shape)
        jit[:, 2:] = np.maximum(jit[:, 2:], jit[:, :2] + 1)
        lo2 = rng.uniform(0, 200, size=(int(rng.integers(0, 3)), 2))
        false = np.concatenate([lo2, lo2 + rng.uniform(8, 40, size=lo2.shape)], axis=1)
        p = np.concatenate([jit, false])
        gt.append(g)
        pred.append(p)
        scores.append(rng.uniform(0.05, 1, size=len(p)))
    m = box_detection_metrics(pred, scores, gt, n_boot=0)
    grid = np.linspace(0.5, 0.95, 10)
    ref = [_coco_ap_reference(pred, scores, gt, float(t)) for t in grid]
    assert 0.2 < ref[0] < 1.0 and ref[-1] < ref[0]  # a non-trivial case
    assert m["ap_iou_0.5"].value == pytest.approx(ref[0], abs=1e-6)
    assert m["ap_iou_0.75"].value == pytest.approx(ref[5], abs=1e-6)
    assert m["map"].value == pytest.approx(float(np.mean(ref)), abs=1e-6)


def test_box_froc_has_bootstrap_cis_and_bad_boxes_are_refused() -> None:
    pred = [np.array([[0, 0, 10, 10]], float), np.array([[5, 5, 9, 9]], float)]
    gt = [np.array([[0, 0, 10, 10]], float), np.array([[20, 20, 30, 30]], float)]
    m = box_detection_metrics(pred, [np.array([0.9]), np.array([0.6])], gt, n_boot=200)
    head = m[m.headline]
    assert head.name == "froc_score" and head.ci_low <= head.value <= head.ci_high
    with pytest.raises(ValueError, match="image 1"):
        box_detection_metrics(
            pred, [np.array([0.9]), np.array([0.6])], [gt[0], np.array([[9, 9, 5, 5]], float)]
        )


BOX_ARCH = textwrap.dedent(
    """
    import torch
    import torch.nn as nn


    class BoxNet(nn.Module):
        # two slots: the bounding box of the pixels above `level` (score: the brightest
        # pixel) and an empty, all-zero slot
        def __init__(self):
            super().__init__()
            self.level = nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            m = x[:, 0] > self.level
            n, h, w = m.shape
            rows, cols = m.any(dim=2), m.any(dim=1)
            ir = torch.arange(h, dtype=x.dtype).expand(n, h)
            ic = torch.arange(w, dtype=x.dtype).expand(n, w)
            r0 = torch.where(rows, ir, float(h)).amin(1)
            r1 = torch.where(rows, ir, -1.0).amax(1) + 1
            c0 = torch.where(cols, ic, float(w)).amin(1)
            c1 = torch.where(cols, ic, -1.0).amax(1) + 1
            score = x.amax(dim=(1, 2, 3)).clamp(0, 1)
            slot = torch.stack([r0, c0, r1, c1, score], dim=1)
            return torch.stack([slot, torch.zeros_like(slot)], dim=1)


    def build():
        return BoxNet()
    """
)


@pytest.fixture()
def box_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's box detector (own architecture, safetensors weights)."""
    from noctis_lab.ai import ModelSpec, save_model
    from noctis_lab.ai._nets import build_network

    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    mod = f"user_boxnet_{os.getpid()}"
    (pkg / f"{mod}.py").write_text(BOX_ARCH)
    monkeypatch.syspath_prepend(str(pkg))
    spec = ModelSpec(
        task="detection",
        format="safetensors",
        factory=f"{mod}:build",
        output_shape=(1, 2, 5),
        detection_output="boxes",
    )
    out = tmp_path / "boxnet.safetensors"
    save_model(build_network(f"{mod}:build"), out, spec)
    return out


def _square_set(folder: Path, n: int = 8) -> Path:
    """Images with one bright 10x10 square at (r, c); the first half's target box is the
    square, the second half's is shifted 2 px along columns (IoU 8/12 = 2/3), and those
    squares are dimmer (lower scores)."""
    rng = np.random.default_rng(3)
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        img = rng.uniform(0.0, 0.4, (64, 64)).astype(np.float32)
        r, c = (int(v) for v in rng.integers(5, 45, 2))
        img[r : r + 10, c : c + 10] = 0.95 - 0.01 * i if i < n // 2 else 0.7 - 0.01 * i
        shift = 0 if i < n // 2 else 2
        np.save(folder / "img" / f"s{i}.npy", img)
        box = [r, c + shift, r + 10, c + 10 + shift]
        rows.append({"case_id": f"s{i}", "image": f"img/s{i}.npy", "boxes": [box]})
    meta = {"task": "detection", "name": "squares"}
    (folder / "manifest.json").write_text(json.dumps({"meta": meta, "cases": rows}))
    return folder / "manifest.json"


def test_box_detector_evaluated_end_to_end(tmp_path: Path, box_model: Path) -> None:
    """The detector finds every square exactly; against the targets: IoU 1 for the first
    half (scores 0.95..0.92), 2/3 for the second (scores 0.66..0.63). Ranked by score, the
    exact boxes come first: at IoU 0.50..0.65 every box is true (AP 1); at 0.70..0.95 the
    first half is true and the rest false (recall 0.5 at precision 1: AP 51/101), so
    mAP = (4 + 6 * 51/101) / 10, AP50 = 1, AP75 = 51/101. The empty slot is ignored."""
    from noctis_lab.ai import check_model, evaluate

    assert check_model(box_model).status != "error"
    res = evaluate(box_model, _square_set(tmp_path / "ts"), n_boot=50, log_to_mlflow=False)
    m = res.metrics
    assert m["map"].value == pytest.approx((4 + 6 * 51 / 101) / 10, abs=1e-6)
    assert m["ap_iou_0.5"].value == pytest.approx(1.0)
    assert m["ap_iou_0.75"].value == pytest.approx(51 / 101, abs=1e-6)
    assert m.per_case["n_detections"].tolist() == [1] * 8
    assert m.per_case["false_positives"].tolist() == [0] * 8


def test_box_detector_needs_target_boxes_and_sane_boxes(tmp_path: Path, box_model: Path) -> None:
    from noctis_lab import ModelCheckError
    from noctis_lab.ai import evaluate
    from noctis_lab.ai._evaluate import box_detections

    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "a.npy", np.zeros((64, 64), np.float32))
    rows = [{"case_id": "a", "image": "a.npy", "centres": [[10, 10]]}]
    (tmp_path / "c" / "m.json").write_text(json.dumps(rows))
    with pytest.raises(ModelCheckError, match="case a: a box detector needs target boxes"):
        evaluate(box_model, tmp_path / "c" / "m.json", n_boot=0, log_to_mlflow=False)
    out = np.zeros((2, 2, 5))
    out[1, 0] = [10, 10, 5, 20, 0.9]
    with pytest.raises(ModelCheckError, match="case y: the model output a box that ends"):
        box_detections(out, ["x", "y"])
