"""Metrics against hand-checked small cases and against the reference libraries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noctis_lab.ai._metrics import (
    bootstrap_weights,
    classification_metrics,
    detection_metrics,
    segmentation_metrics,
    weighted_auroc,
)

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_classification_hand_checked() -> None:
    m = classification_metrics(Y, P, threshold=0.5, n_boot=0)
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    assert m["auroc"].value == pytest.approx(0.75)
    assert m["auc"].value == pytest.approx(0.75)
    # predictions at 0.5: [0, 0, 0, 1] -> tp=1 fn=1 tn=2 fp=0
    assert m["accuracy"].value == pytest.approx(0.75)
    assert m["recall"].value == pytest.approx(0.5)
    assert m["specificity"].value == pytest.approx(1.0)
    assert m["precision"].value == pytest.approx(1.0)
    assert m["balanced_accuracy"].value == pytest.approx(0.75)
    assert m["f1"].value == pytest.approx(2 / 3)
    assert m["mcc"].value == pytest.approx(2 / math.sqrt(12))
    assert m["brier"].value == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m.confusion is not None and m.confusion.tolist() == [[2, 0], [1, 1]]
    assert math.isnan(m["auroc"].ci_low)  # no bootstrap asked
    for key in ("accuracy", "precision", "recall", "f1", "auc"):  # the seed's five
        assert key in m.values


def test_classification_matches_monai_and_sklearn() -> None:
    import torch
    from monai.metrics import compute_roc_auc
    from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef, roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.35 * y + rng.random(200) * 0.65, 0, 1)
    m = classification_metrics(y, p, n_boot=0)
    monai_auc: float = compute_roc_auc(torch.from_numpy(p), torch.from_numpy(y))  # type: ignore[assignment]
    assert m["auroc"].value == pytest.approx(float(monai_auc))
    assert m["auroc"].value == pytest.approx(roc_auc_score(y, p))
    assert m["mcc"].value == pytest.approx(matthews_corrcoef(y, p >= 0.5))
    assert m["balanced_accuracy"].value == pytest.approx(balanced_accuracy_score(y, p >= 0.5))


def test_vectorised_bootstrap_equals_sklearn_with_weights() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 60)
    p = np.round(rng.random(60), 1)  # many ties
    w = bootstrap_weights(60, 20, seed=9)
    assert w.shape == (20, 60)
    assert (w.sum(axis=1) == 60).all()
    ours = weighted_auroc(y, p, w)
    ref = [roc_auc_score(y, p, sample_weight=row) for row in w]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    np.testing.assert_allclose(weighted_auroc(y, p, np.ones((1, 60))), [roc_auc_score(y, p)])


def test_bootstrap_ci_seeded_and_bracketing() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 150)
    p = np.clip(0.3 * y + rng.random(150) * 0.7, 0, 1)
    a = classification_metrics(y, p, n_boot=500, seed=1)
    b = classification_metrics(y, p, n_boot=500, seed=1)
    c = classification_metrics(y, p, n_boot=500, seed=2)
    assert a["auroc"] == b["auroc"]
    assert a["auroc"].ci_low != c["auroc"].ci_low
    for v in a.values.values():
        if v.name.startswith(("youden_", "threshold_at_", "specificity_at_")):
            assert np.isnan(v.ci_low)  # operating points are read off the ROC, not bootstrapped
            continue
        assert v.ci_low <= v.value <= v.ci_high, v


def _det_case() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    gt = [np.array([[10.0, 10.0]]), np.array([[30.0, 30.0], [50.0, 50.0]])]
    pts = [np.array([[11.0, 10.0], [40.0, 40.0]]), np.array([[30.0, 31.0], [50.0, 56.0]])]
    scores = [np.array([0.9, 0.8]), np.array([0.7, 0.6])]
    return pts, scores, gt


def test_detection_hand_checked() -> None:
    pts, scores, gt = _det_case()
    m = detection_metrics(pts, scores, gt, image_shape=(64, 64), radius_mm=4.0, n_boot=0)
    # TPs: 0.9 (image 1) and 0.7 (image 2); FPs: 0.8 and 0.6 (6 px from (50, 50) > 4 mm).
    # At threshold 0.6 there are 2 FPs on 2 images (1 FP/image) and 2 of 3 targets found.
    assert m["sensitivity_at_1_fp"].value == pytest.approx(2 / 3)
    # threshold 0.7: one FP (0.8) = 0.5 per image, TPs 0.9 and 0.7 -> 2/3
    assert m["sensitivity_at_0.5_fp"].value == pytest.approx(2 / 3)
    # at 0.125 FP/image (between 0 and 0.5) MONAI interpolates between 1/3 and 1/3
    assert m.curves["sensitivity"].max() == pytest.approx(2 / 3)
    assert "within 4 mm" in m.info["matching"]
    assert m.per_case["false_positives"].tolist() == [1, 1]
    assert m.per_case["targets_hit"].tolist() == [1.0, 1.0]
    # a looser criterion turns the 6-px miss into a hit
    loose = detection_metrics(pts, scores, gt, image_shape=(64, 64), radius_mm=7.0, n_boot=0)
    assert loose["sensitivity_at_1_fp"].value == pytest.approx(1.0)


def test_detection_matches_monai_froc() -> None:
    from monai.metrics import compute_froc_curve_data, compute_froc_score

    pts, scores, gt = _det_case()
    m = detection_metrics(pts, scores, gt, image_shape=(64, 64), n_boot=0)
    fps, sens = compute_froc_curve_data(
        np.array([0.8, 0.6]), np.array([0.9, 0.7, 0.0]), num_targets=3, num_images=2
    )
    ref = compute_froc_score(fps, sens, (0.125, 0.25, 0.5, 1, 2, 4, 8))
    assert m["froc_score"].value == pytest.approx(ref)
    assert 0 <= m["ap_iou_0.5"].value <= 1
    assert "map" in m.values


def test_detection_bootstrap_equals_monai_per_resample() -> None:
    """The vectorised FROC of a resample equals MONAI's FROC on the resampled images."""
    rng = np.random.default_rng(8)
    gt = [rng.uniform(8, 56, (rng.integers(1, 4), 2)) for _ in range(12)]
    pts = [
        np.concatenate([g + rng.normal(0, 1.5, g.shape), rng.uniform(0, 63, (1, 2))]) for g in gt
    ]
    sc = [rng.random(len(q)) for q in pts]
    full = detection_metrics(pts, sc, gt, image_shape=(64, 64), n_boot=50, seed=3)
    w = bootstrap_weights(12, 50, 3)
    idx = np.repeat(np.arange(12), w[0].astype(int))
    one = detection_metrics(
        [pts[i] for i in idx],
        [sc[i] for i in idx],
        [gt[i] for i in idx],
        image_shape=(64, 64),
        n_boot=0,
    )
    # the resample's value must be among the bootstrap distribution's range
    assert full["froc_score"].ci_low <= one["froc_score"].value + 1e-9
    assert one["froc_score"].value <= full["froc_score"].ci_high + 0.2


def test_segmentation_hand_checked_mm() -> None:
    gt = np.zeros((1, 32, 32), bool)
    gt[0, 10:20, 10:20] = True
    pred = np.roll(gt, 2, axis=2)  # shifted two columns
    m = segmentation_metrics(pred, gt, spacing=(1.0, 0.5), n_boot=0)
    assert m["dice"].value == pytest.approx(0.8)  # 2*80 / 200
    assert m["iou"].value == pytest.approx(80 / 120)
    assert m["hd95_mm"].value == pytest.approx(1.0)  # 2 columns x 0.5 mm
    assert "MONAI" in m.info["distance_implementation"]
    same = segmentation_metrics(gt, gt, n_boot=0)
    assert same["dice"].value == pytest.approx(1.0)
    assert same["nsd"].value == pytest.approx(1.0)
    assert same["hd95_mm"].value == pytest.approx(0.0)


def test_segmentation_matches_monai_classes() -> None:
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDiceMetric

    rng = np.random.default_rng(2)
    gts = np.zeros((6, 40, 40), bool)
    preds = np.zeros((6, 40, 40), bool)
    for i in range(6):
        r, c = rng.integers(8, 30, 2)
        gts[i, r : r + 8, c : c + 6] = True
        preds[i, r + rng.integers(-2, 3) : r + 8, c : c + 6 + rng.integers(0, 3)] = True
    m = segmentation_metrics(preds, gts, spacing=(0.7, 0.7), nsd_tolerance_mm=1.0, n_boot=0)
    yp = torch.from_numpy(preds[:, None].astype(np.float32))
    yt = torch.from_numpy(gts[:, None].astype(np.float32))
    dm = DiceMetric(include_background=True)
    dm(yp, yt)
    hd = HausdorffDistanceMetric(include_background=True, percentile=95)
    hd(yp, yt, spacing=[0.7, 0.7])
    sd = SurfaceDiceMetric([1.0], include_background=True)
    sd(yp, yt, spacing=[0.7, 0.7])
    ref_dm = float(dm.aggregate())  # type: ignore[arg-type]
    assert m["dice"].value == pytest.approx(ref_dm, rel=1e-5)
    ref_hd = float(hd.aggregate())  # type: ignore[arg-type]
    assert m["hd95_mm"].value == pytest.approx(ref_hd, rel=1e-5)
    ref_sd = float(sd.aggregate())  # type: ignore[arg-type]
    assert m["nsd"].value == pytest.approx(ref_sd, rel=1e-5)


def test_segmentation_distances_equal_monai_functions_per_case() -> None:
    """HD95 and NSD (one edge/distance pass per case) equal MONAI's two functions exactly."""
    import torch
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice
    from scipy import ndimage

    rng = np.random.default_rng(11)
    n = 40
    gts = rng.random((n, 48, 40)) > 0.6
    gts = np.stack([ndimage.binary_opening(g) for g in gts])
    preds = np.stack([np.roll(g, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) for g in gts])
    preds[0] = gts[0]  # identical
    gts[1] = False
    gts[1, 0, 0] = True  # one pixel in a corner
    preds[2, :, :] = True  # the whole image: edges on the border
    gts[3, :6, :] = True  # touching the top border
    spacing = [tuple(float(v) for v in rng.uniform(0.3, 1.5, 2)) for _ in range(n)]
    m = segmentation_metrics(preds, gts, spacing=spacing, nsd_tolerance_mm=1.2, n_boot=0)
    yp = torch.from_numpy(preds[:, None].astype(np.float32))
    yt = torch.from_numpy(gts[:, None].astype(np.float32))
    sp = [list(s) for s in spacing]
    hd = compute_hausdorff_distance(yp, yt, include_background=True, percentile=95, spacing=sp)
    sd = compute_surface_dice(yp, yt, [1.2], include_background=True, spacing=sp)
    assert np.array_equal(m.per_case["hd95_mm"], hd.numpy().ravel().astype(np.float64))
    assert np.array_equal(m.per_case["nsd"], sd.numpy().ravel().astype(np.float64))
    assert np.all(np.isfinite(m.per_case["hd95_mm"])) and m.per_case["hd95_mm"][0] == 0.0


def test_segmentation_empty_cases() -> None:
    gt = np.zeros((2, 16, 16), bool)
    pred = np.zeros((2, 16, 16), bool)
    gt[1, 4:8, 4:8] = True  # case 1: truth present, prediction empty
    m = segmentation_metrics(pred, gt, n_boot=100)
    assert m.per_case["dice"].tolist() == [1.0, 0.0]
    assert math.isnan(m.per_case["hd95_mm"][1])
    assert m["n_undefined_distance"].value == 1
    assert m["hd95_mm"].value == 0.0  # only the defined case
    # NSD counts the one-empty case as MONAI's compute_surface_dice does (0), not left out
    import torch
    from monai.metrics import compute_surface_dice

    ref = compute_surface_dice(
        torch.from_numpy(pred[1:, None].astype(np.float32)),
        torch.from_numpy(gt[1:, None].astype(np.float32)),
        class_thresholds=[1.0],
        include_background=True,
    )
    assert m.per_case["nsd"][1] == float(ref[0, 0]) == 0.0
    assert m["nsd"].value == 0.5


def test_metric_input_errors() -> None:
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        classification_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="one entry per image"):
        detection_metrics([np.zeros((0, 2))], [], [np.zeros((1, 2))], image_shape=(8, 8))
    with pytest.raises(ValueError, match="predicted mask"):
        segmentation_metrics([np.zeros((4, 4))], [np.zeros((5, 5))])
