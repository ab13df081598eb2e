"""Task metrics (scikit-learn and MONAI) with per-case bootstrap confidence intervals.

Point estimates come from the libraries: scikit-learn for classification, MONAI for
detection (``monai.metrics.froc``, ``monai.apps.detection.metrics.coco``) and segmentation
(``compute_dice``, ``compute_iou``, ``compute_surface_dice``, ``compute_hausdorff_distance``
with voxel spacing). Confidence intervals resample *cases* (images), 1000 times by default,
seeded; each resample is a row of case weights (multinomial counts) and the metric is
evaluated for all rows at once with array formulas that equal the library's result at
unit weights (tests check this).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from noctis_lab.ai._spec import Task

__all__ = [
    "DISTANCE_IMPLEMENTATION",
    "FROC_FP_RATES",
    "MetricValue",
    "TaskMetrics",
    "bootstrap_weights",
    "box_detection_metrics",
    "classification_metrics",
    "detection_metrics",
    "multiclass_metrics",
    "multilabel_segmentation_metrics",
    "segmentation_metrics",
]

#: False-positive rates per image at which the FROC score averages sensitivity (LUNA16).
FROC_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _distance_impl() -> str:
    import monai

    return (
        f"MONAI {monai.__version__}: get_mask_edges + get_surface_distance (euclidean, "
        "spacing) once per case, reduced as compute_hausdorff_distance(percentile=95) and "
        "compute_surface_dice(class_thresholds=[tau mm]) do"
    )


#: Which implementation computes surface distances (recorded with every evaluation).
DISTANCE_IMPLEMENTATION = (
    "monai.metrics (edges and distances: monai.metrics.utils.get_mask_edges and "
    "get_surface_distance; HD95 and NSD reduced as compute_hausdorff_distance and "
    "compute_surface_dice do)"
)


@dataclass(frozen=True)
class MetricValue:
    """A metric with its bootstrap confidence interval (``nan`` bounds when not bootstrapped)."""

    name: str
    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return {
            "name": self.name,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@dataclass(frozen=True)
class TaskMetrics:
    """All metrics of one evaluation.

    Attributes
    ----------
    task : str
    values : dict of str to MetricValue
    headline : str
        The metric whose CI lower bound drives the status.
    per_case : dict of str to ndarray
        Per-case columns (``case_id`` added by the evaluator).
    curves : dict of str to ndarray
        ROC (``fpr``, ``tpr``) or FROC (``fps_per_image``, ``sensitivity``) points.
    confusion : ndarray or None
        Confusion matrix (rows: truth, columns: prediction) for classification.
    info : dict of str to str
        How it was computed: matching criterion, distance implementation, thresholds.
    """

    task: Task
    values: dict[str, MetricValue]
    headline: str
    per_case: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    confusion: np.ndarray | None = None
    info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Keep the task an enum member, whatever text it was given as."""
        object.__setattr__(self, "task", Task(self.task))

    def __getitem__(self, key: str) -> MetricValue:
        return self.values[key]

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (no per-case arrays)."""
        return {
            "task": self.task.value,
            "headline": self.headline,
            "values": {k: v.to_dict() for k, v in self.values.items()},
            "confusion": None if self.confusion is None else self.confusion.tolist(),
            "info": dict(self.info),
        }


def bootstrap_weights(n: int, n_boot: int, seed: int) -> npt.NDArray[np.float64]:
    """Case weights of ``n_boot`` bootstrap resamples: (n_boot, n) multinomial counts."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = idx + (np.arange(n_boot)[:, None] * n)
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [a, 1.0 - a])
    return float(lo), float(hi)


def _div(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _finite_mean_ci(
    per_case: np.ndarray, w: np.ndarray | None, level: float
) -> tuple[float, float, float]:
    """Mean of the defined (finite) per-case values and its bootstrap CI.

    ``w`` holds the bootstrap weights (None: no CI); each resample averages the cases
    that are defined, as the point estimate does. NaN throughout when no case is defined.
    """
    ok = np.isfinite(per_case)
    if not ok.any():
        return math.nan, math.nan, math.nan
    point = float(per_case[ok].mean())
    if w is None:
        return point, math.nan, math.nan
    vals = np.where(ok, per_case, 0.0)
    lo, hi = _ci(_div(w @ vals, w @ ok.astype(float), math.nan), level)
    return point, lo, hi


def weighted_auroc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUROC for each row of case weights ``w`` (B, n); equals sklearn's weighted ROC AUC.

    Ties count one half (Mann-Whitney). Rows with no positive or no negative weight give nan.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    yy = y[order].astype(bool)
    # cumulative negative weight in score order (only the negatives' columns are non-zero)
    w_neg = w[:, order[~yy]]
    cum_neg = np.zeros((w.shape[0], len(s) + 1), dtype=np.float64)
    cum_neg[:, 1:][:, ~yy] = w_neg
    np.cumsum(cum_neg, axis=1, out=cum_neg)
    # for each positive: negative weight strictly below its score, and tied with it
    new = np.r_[True, s[1:] != s[:-1]]
    start = np.flatnonzero(new)
    end = np.r_[start[1:], len(s)]
    group = (np.cumsum(new) - 1)[yy]
    below = cum_neg[:, start[group]]
    upto = cum_neg[:, end[group]]
    w_pos = w[:, order[yy]]
    num = np.einsum("bi,bi->b", w_pos, below + upto) * 0.5
    den = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    return _div(num, den, math.nan)


def calibration_bins(
    y: np.ndarray, p: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins of P(positive) and their contents.

    Returns the bin index per case, and per bin the mean predicted probability, the
    observed positive fraction and the case count (nan for empty bins).
    """
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    conf = _div(np.bincount(idx, p, minlength=n_bins), count, math.nan)
    freq = _div(np.bincount(idx, y.astype(np.float64), minlength=n_bins), count, math.nan)
    return idx, conf, freq, count


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, n_bins: int = 10
) -> np.ndarray:
    """ECE of P(positive) for each row of case weights ``w`` (B, n).

    That is the case-weighted mean over equal-width bins of |observed positive fraction -
    mean predicted probability|.
    """
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    onehot = (idx[None, :] == np.arange(n_bins)[:, None]).astype(np.float64)  # (bins, n)
    gap = np.abs(w @ (onehot * y).T - w @ (onehot * p).T)  # (B, bins)
    return np.asarray(gap.sum(axis=1) / w.sum(axis=1))


def operating_points(
    y: np.ndarray, p: np.ndarray, target_sensitivity: float = 0.9
) -> dict[str, float]:
    """Youden's J point and the point of a fixed sensitivity on the ROC (scikit-learn).

    ``youden_*``: the threshold maximising sensitivity + specificity - 1, with both there;
    ``*_at_sens_<s>``: the highest threshold reaching ``target_sensitivity``, with the
    specificity there. Nan when the test set has one class.
    """
    from sklearn.metrics import roc_curve

    tag = f"{target_sensitivity:g}"
    keys = (
        "youden_threshold",
        "youden_sensitivity",
        "youden_specificity",
        f"threshold_at_sens_{tag}",
        f"specificity_at_sens_{tag}",
    )
    if len(np.unique(y)) < 2:
        return dict.fromkeys(keys, math.nan)
    fpr, tpr, thr = roc_curve(y, p)
    finite = np.isfinite(thr)
    j = np.where(finite, tpr - fpr, -np.inf)
    b = int(np.argmax(j))
    s = int(np.flatnonzero((tpr >= target_sensitivity) & finite)[0])
    return dict(
        zip(
            keys,
            (float(thr[b]), float(tpr[b]), float(1 - fpr[b]), float(thr[s]), float(1 - fpr[s])),
            strict=True,
        )
    )


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_prob: Sequence[float] | np.ndarray,
    *,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> TaskMetrics:
    """Binary classification metrics from scikit-learn, with bootstrap CIs.

    Metrics: ``auroc``, ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``
    (sensitivity), ``specificity``, ``f1``, ``mcc``, ``brier``; ``auc`` repeats ``auroc``
    (the seed system's name). Headline: ``auroc``. ``y_prob`` is P(class 1).
    """
    from sklearn import metrics as skm

    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} probabilities")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("classification_metrics is binary: labels must be 0 or 1")
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    # per-class precision / recall / F1 in one call: recall of class 0 is the specificity
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    point = {
        "auroc": float(skm.roc_auc_score(y, p)) if both else math.nan,
        "accuracy": float(skm.accuracy_score(y, pred)),
        # sklearn's balanced_accuracy_score is the mean per-class recall
        "balanced_accuracy": float(np.mean(rec)) if both else math.nan,
        "precision": float(prec[1]),
        "recall": float(rec[1]),
        "specificity": float(rec[0]),
        "f1": float(f1[1]),
        "mcc": float(skm.matthews_corrcoef(y, pred)),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        "ece": float(expected_calibration_error(y, p, np.ones((1, y.size)))[0]),
    }
    point.update(operating_points(y, p))
    samples: dict[str, np.ndarray] = {}
    if n_boot > 0:
        w = bootstrap_weights(y.size, n_boot, seed)
        yb, pb = y.astype(bool), pred.astype(bool)
        tp = w @ (yb & pb)
        fp = w @ (~yb & pb)
        fn = w @ (yb & ~pb)
        tn = w @ (~yb & ~pb)
        n = tp + fp + fn + tn
        sens = _div(tp, tp + fn)
        spec = _div(tn, tn + fp)
        mcc_den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        samples = {
            "auroc": weighted_auroc(y, p, w),
            "accuracy": (tp + tn) / n,
            "balanced_accuracy": np.where((tp + fn > 0) & (tn + fp > 0), (sens + spec) / 2, np.nan),
            "precision": _div(tp, tp + fp),
            "recall": sens,
            "specificity": spec,
            "f1": _div(2 * tp, 2 * tp + fp + fn),
            "mcc": _div(tp * tn - fp * fn, mcc_den),
            "brier": (w @ (p - y) ** 2) / n,
            "ece": expected_calibration_error(y, p, w),
        }
    values = {}
    for k, v in point.items():
        lo, hi = _ci(samples[k], level) if k in samples else (math.nan, math.nan)
        values[k] = MetricValue(k, v, lo, hi)
    values["auc"] = MetricValue(
        "auc", values["auroc"].value, values["auroc"].ci_low, values["auroc"].ci_high
    )
    fpr, tpr, _ = skm.roc_curve(y, p) if both else (np.array([]), np.array([]), None)
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    _, rel_conf, rel_freq, rel_count = calibration_bins(y, p)
    return TaskMetrics(
        task=Task.CLASSIFICATION,
        values=values,
        headline="auroc",
        per_case={"label": y, "probability": p, "prediction": pred},
        curves={
            "fpr": np.asarray(fpr),
            "tpr": np.asarray(tpr),
            "reliability_confidence": rel_conf,
            "reliability_frequency": rel_freq,
            "reliability_count": rel_count,
        },
        confusion=cm,
        info={
            "threshold": f"{threshold:g}",
            "ece": "expected calibration error of P(positive), 10 equal-width bins",
            "operating_points": "Youden's J and the highest threshold with sensitivity >= 0.9",
            "implementation": "scikit-learn (point estimates); bootstrap by case",
            "ci": f"{level:.0%} percentile bootstrap, {n_boot} resamples, seed {seed}",
        },
    )


def multiclass_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_prob: np.ndarray,
    *,
    classes: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> TaskMetrics:
    """Multi-class metrics (scikit-learn point estimates) with bootstrap CIs.

    ``y_prob`` is (n, K) class probabilities, column k = class k. Metrics: ``auroc``
    (macro one-vs-rest, the headline), ``auroc_micro``, ``auroc_<class>`` per class,
    ``accuracy``, ``balanced_accuracy``, ``f1_macro``; the confusion matrix (rows: truth,
    columns: arg-max prediction). A class absent from the test set has an undefined
    (nan) AUROC, and so has the macro mean.
    """
    from sklearn import metrics as skm

    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(y_prob, dtype=np.float64)
    n, k = p.shape
    if y.size != n:
        raise ValueError(f"{y.size} labels but {n} probability rows")
    names = list(classes) if len(classes) == k else [str(i) for i in range(k)]
    pred = p.argmax(axis=1)
    onehot = (y[:, None] == np.arange(k)[None, :]).astype(int)
    per_class = [
        float(skm.roc_auc_score(onehot[:, c], p[:, c])) if 0 < onehot[:, c].sum() < n else math.nan
        for c in range(k)
    ]
    present = onehot.any(axis=0)
    point = {
        "auroc": float(np.mean(per_class)),
        "auroc_micro": float(skm.roc_auc_score(onehot.ravel(), p.ravel())),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(
            np.mean([np.mean(pred[y == c] == c) for c in range(k) if present[c]])
        ),
        "f1_macro": float(
            skm.f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)
        ),
    }
    for c in range(k):
        point[f"auroc_{names[c]}"] = per_class[c]
    samples: dict[str, np.ndarray] = {}
    if n_boot > 0:
        w = bootstrap_weights(n, n_boot, seed)
        per = np.stack([weighted_auroc(onehot[:, c], p[:, c], w) for c in range(k)], axis=1)
        samples["auroc"] = per.mean(axis=1)
        samples["auroc_micro"] = weighted_auroc(onehot.ravel(), p.ravel(), np.repeat(w, k, axis=1))
        correct = (pred == y).astype(float)
        samples["accuracy"] = (w @ correct) / w.sum(axis=1)
        tp = np.stack([w @ ((y == c) & (pred == c)) for c in range(k)], axis=1)
        n_true = np.stack([w @ (y == c) for c in range(k)], axis=1)
        n_pred = np.stack([w @ (pred == c) for c in range(k)], axis=1)
        rec = _div(tp, n_true, math.nan)
        samples["balanced_accuracy"] = np.nanmean(rec[:, present], axis=1)
        samples["f1_macro"] = _div(2 * tp, n_true + n_pred).mean(axis=1)
        for c in range(k):
            samples[f"auroc_{names[c]}"] = per[:, c]
    values = {}
    for key, v in point.items():
        lo, hi = (
            _ci(samples[key], level) if key in samples and math.isfinite(v) else (math.nan,) * 2
        )
        values[key] = MetricValue(key, v, lo, hi)
    cm = skm.confusion_matrix(y, pred, labels=list(range(k)))
    return TaskMetrics(
        task=Task.CLASSIFICATION,
        values=values,
        headline="auroc",
        per_case={"label": y, "prediction": pred, **{f"p_{names[c]}": p[:, c] for c in range(k)}},
        confusion=cm,
        info={
            "classes": ",".join(names),
            "averaging": "auroc: macro mean of one-vs-rest AUROCs; auroc_micro: pooled one-vs-rest",
            "implementation": "scikit-learn (point estimates); bootstrap by case",
            "ci": f"{level:.0%} percentile bootstrap, {n_boot} resamples, seed {seed}",
        },
    )


def match_one_to_one(
    points: np.ndarray,
    scores: np.ndarray,
    targets: np.ndarray,
    spacing: np.ndarray,
    radius_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of one image's detections to its targets, distances in mm.

    Detections are taken by decreasing score; each claims the nearest target within
    ``radius_mm`` that no higher-scoring detection claimed. A detection within reach of
    claimed targets only is a duplicate (neither true nor false positive, as a second hit
    on one target counts once in ``monai.metrics.froc``); one near no target is a false
    positive. Returns the false positives' scores and, per target, the score of the
    detection that claimed it (0 when missed): the ``fp_probs`` / ``tp_probs`` that
    ``monai.metrics.compute_froc_curve_data`` takes.
    """
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(targets), dtype=np.float64)
    claimed = np.zeros(len(targets), dtype=bool)
    fp: list[float] = []
    if len(targets):
        d = np.sqrt((((points[:, None, :] - targets[None, :, :]) * spacing) ** 2).sum(axis=2))
    for i in order:
        near = np.flatnonzero(d[i] <= radius_mm) if len(targets) else np.zeros(0, int)
        free = near[~claimed[near]]
        if len(free):
            j = int(free[np.argmin(d[i, free])])
            claimed[j] = True
            tp[j] = scores[i]
        elif not len(near):
            fp.append(float(scores[i]))
    return np.asarray(fp, dtype=np.float64), tp


def _froc(
    fps_l: list[np.ndarray],
    tps_l: list[np.ndarray],
    fp_rates: tuple[float, ...],
    n_boot: int,
    seed: int,
) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """MONAI's FROC curve and score from per-image matching results, with bootstrap rows.

    ``fps_l[i]`` holds image i's false positives' scores, ``tps_l[i]`` per target the score
    of the detection that claimed it (0 when missed). Returns the point values
    (``froc_score``, ``sensitivity_at_{0.5,1,2}_fp``), their bootstrap samples, and the
    curve (false positives per image, sensitivity).
    """
    from monai.metrics.froc import compute_froc_curve_data, compute_froc_score

    n_img = len(tps_l)
    n_t = np.array([len(t) for t in tps_l], dtype=np.float64)
    # MONAI (after CAMELYON16) skips the lowest score as a threshold, assuming it is the 0 of
    # a missed target; a 0.0 sentinel keeps the lowest real detection in the curve when
    # every target was hit (it is never counted: real thresholds are > 0).
    all_fp = np.concatenate([*fps_l, [0.0]])
    all_tp = np.concatenate(tps_l) if tps_l else np.zeros(0)
    total = int(n_t.sum())
    if total == 0:
        raise ValueError("detection test set has no targets")
    fpi, sens = compute_froc_curve_data(all_fp, all_tp, total, n_img)
    point = {"froc_score": float(compute_froc_score(fpi, sens, fp_rates))}
    for r in (0.5, 1.0, 2.0):
        point[f"sensitivity_at_{r:g}_fp"] = float(compute_froc_score(fpi, sens, (r,)))
    # bootstrap: FROC curve for every resample at once (same thresholds as MONAI)
    samples: dict[str, np.ndarray] = {}
    if n_boot > 0:
        w = bootstrap_weights(n_img, n_boot, seed)
        thr = np.array(sorted(set(all_fp.tolist()) | set(all_tp.tolist()))[1:])
        fp_cnt = np.array([len(f) - np.searchsorted(np.sort(f), thr) for f in fps_l])
        tp_cnt = np.array([len(q) - np.searchsorted(np.sort(q), thr) for q in tps_l])
        fp_cnt = fp_cnt.reshape(n_img, len(thr))
        tp_cnt = tp_cnt.reshape(n_img, len(thr))
        fpi_b = np.concatenate([w @ fp_cnt, np.zeros((n_boot, 1))], axis=1) / n_img
        tgt_b = w @ n_t
        sens_b = np.concatenate([w @ tp_cnt, np.zeros((n_boot, 1))], axis=1)
        sens_b = _div(sens_b, tgt_b[:, None], math.nan)

        def froc_rows(rates: tuple[float, ...]) -> np.ndarray:
            return np.array(
                [np.mean(np.interp(rates, fpi_b[b, ::-1], sens_b[b, ::-1])) for b in range(n_boot)]
            )

        samples["froc_score"] = froc_rows(fp_rates)
        for r in (0.5, 1.0, 2.0):
            samples[f"sensitivity_at_{r:g}_fp"] = froc_rows((r,))
    return point, samples, np.asarray(fpi), np.asarray(sens)


def _coco_ap(
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    gt_boxes: Sequence[np.ndarray],
    iou_list: tuple[float, ...],
    iou_range: tuple[float, float, float],
) -> dict[str, float]:
    """COCO AP of one class by ``monai.apps.detection.metrics.coco.COCOMetric``.

    Boxes are ``[lo..., hi...]`` per row (2-D or 3-D), up to 100 detections per image (by
    score). Returns ``ap_iou_<t>`` for each of ``iou_list`` and ``map`` (mean AP over the
    thresholds ``iou_range`` = (start, stop, step)); -1 (no target) becomes nan.
    """
    from monai.apps.detection.metrics.coco import COCOMetric
    from monai.apps.detection.metrics.matching import matching_batch
    from monai.data.box_utils import box_iou

    coco = COCOMetric(
        classes=["target"],
        iou_list=iou_list,
        iou_range=iou_range,
        max_detection=(100,),
        verbose=False,
    )

    width = next((np.asarray(b).shape[-1] for b in gt_boxes if np.asarray(b).size), 4)

    def rows(b: np.ndarray) -> np.ndarray:
        return np.asarray(b, dtype=np.float32).reshape(-1, width)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matched = matching_batch(
            iou_fn=box_iou,  # type: ignore[arg-type]
            iou_thresholds=list(coco.iou_thresholds),
            pred_boxes=[rows(b) for b in pred_boxes],
            pred_classes=[np.zeros(len(np.asarray(s).ravel()), int) for s in pred_scores],
            pred_scores=[np.asarray(s, np.float32).ravel() for s in pred_scores],
            gt_boxes=[rows(g) for g in gt_boxes],
            gt_classes=[np.zeros(len(np.asarray(g)), int) for g in gt_boxes],
            max_detections=100,
        )
        coco_out = coco(matched)[0]
    out: dict[str, float] = {}
    for t in iou_list:
        key = f"AP_IoU_{t:.2f}_MaxDet_100"
        if key in coco_out:
            out[f"ap_iou_{t:g}"] = float(coco_out[key])
    range_key = next((k for k in coco_out if k.startswith("mAP_IoU_")), None)
    if range_key is not None:
        out["map"] = float(coco_out[range_key])
    return {k: (math.nan if v < 0 else v) for k, v in out.items()}


def _detection_result(
    point: dict[str, float],
    samples: dict[str, np.ndarray],
    fps_l: list[np.ndarray],
    tps_l: list[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    curve: tuple[np.ndarray, np.ndarray],
    level: float,
    info: dict[str, str],
) -> TaskMetrics:
    """Detection metrics (point values, bootstrap CIs, per-image counts) as TaskMetrics."""
    values = {}
    for k, v in point.items():
        lo, hi = _ci(samples[k], level) if k in samples else (math.nan, math.nan)
        values[k] = MetricValue(k, v, lo, hi)
    return TaskMetrics(
        task=Task.DETECTION,
        values=values,
        headline="froc_score",
        per_case={
            "n_targets": np.array([len(t) for t in tps_l]),
            "n_detections": np.array([len(np.asarray(s).ravel()) for s in pred_scores]),
            "targets_hit": np.array([float((t > 0).sum()) for t in tps_l]),
            "false_positives": np.array([len(f) for f in fps_l]),
        },
        curves={"fps_per_image": curve[0], "sensitivity": curve[1]},
        info=info,
    )


def detection_metrics(
    pred_points: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    gt_centres: Sequence[np.ndarray],
    *,
    image_shape: tuple[int, ...],
    spacing: Sequence[float] | Sequence[Sequence[float]] = (1.0, 1.0),
    radius_mm: float = 4.0,
    fp_rates: tuple[float, ...] = FROC_FP_RATES,
    box_size_px: float = 8.0,
    iou_thresholds: tuple[float, ...] = (0.1, 0.5),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> TaskMetrics:
    """Centre-based detection metrics: FROC (MONAI), sensitivity at fixed FP/image, COCO mAP.

    Matching criterion (:func:`match_one_to_one`): a detection is a true positive when it
    claims a target centre within ``radius_mm`` (in mm, with each image's own ``spacing``)
    that no higher-scoring detection claimed, so two close targets are both credited;
    further hits on a claimed target count once (as in ``monai.metrics.froc``); detections
    near no target are false positives. The FROC curve and score are MONAI's.
    mAP: ``monai.apps.detection.metrics.coco.COCOMetric`` on boxes of ``box_size_px`` around
    each centre, at ``iou_thresholds``. Headline: ``froc_score`` (mean sensitivity at
    ``fp_rates`` false positives per image). Detectors that output boxes:
    :func:`box_detection_metrics`.
    """
    n_img = len(gt_centres)
    if not (len(pred_points) == len(pred_scores) == n_img):
        raise ValueError("pred_points, pred_scores and gt_centres must have one entry per image")
    ndim = len(image_shape)
    sp = np.asarray(spacing, dtype=np.float64)
    spacings = np.broadcast_to(sp, (n_img, ndim)) if sp.ndim == 1 else sp
    if spacings.shape != (n_img, ndim):
        raise ValueError(f"spacing must be one ({ndim},) spacing or one per image")
    fps_l, tps_l = [], []
    for pts, sc, gt, case_sp in zip(pred_points, pred_scores, gt_centres, spacings, strict=True):
        fp, tp = match_one_to_one(
            np.asarray(pts, dtype=np.float64).reshape(-1, ndim),
            np.asarray(sc, dtype=np.float64).ravel(),
            np.asarray(gt, dtype=np.float64).reshape(-1, ndim),
            case_sp,
            radius_mm,
        )
        fps_l.append(fp)
        tps_l.append(tp)
    point, samples, fpi, sens = _froc(fps_l, tps_l, fp_rates, n_boot, seed)
    # COCO mAP on fixed-size boxes around centres
    half = box_size_px / 2.0

    def boxes(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float32).reshape(-1, ndim)
        return np.concatenate([p - half, p + half], axis=1)

    iou_range = (min(iou_thresholds), max(iou_thresholds), 0.05)
    point.update(
        _coco_ap(
            [boxes(p) for p in pred_points],
            pred_scores,
            [boxes(g) for g in gt_centres],
            iou_thresholds,
            iou_range,
        )
    )
    info = {
        "matching": f"one-to-one: each target claimed by the highest-scoring detection "
        f"within {radius_mm:g} mm (per-image spacing); duplicates ignored, others false "
        "positives",
        "froc_fp_rates": ",".join(f"{r:g}" for r in fp_rates),
        "map": f"monai COCOMetric on {box_size_px:g}-px boxes around centres: AP at IoU "
        + ",".join(f"{t:g}" for t in iou_thresholds)
        + "; map = mean AP over IoU "
        + f"{min(iou_thresholds):g}..{max(iou_thresholds):g} step 0.05",
        "ci": f"{level:.0%} percentile bootstrap over images, {n_boot} resamples, seed {seed}",
    }
    return _detection_result(point, samples, fps_l, tps_l, pred_scores, (fpi, sens), level, info)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 2*d) with every box of ``b`` (m, 2*d): (n, m).

    Boxes are ``[lo_1..lo_d, hi_1..hi_d]`` in continuous coordinates (extent ``hi - lo``,
    as COCO's ``w * h``), 2-D or 3-D.
    """
    d = a.shape[1] // 2
    lo = np.maximum(a[:, None, :d], b[None, :, :d])
    hi = np.minimum(a[:, None, d:], b[None, :, d:])
    inter = np.clip(hi - lo, 0.0, None).prod(axis=2)
    area_a = (a[:, d:] - a[:, :d]).prod(axis=1)
    area_b = (b[:, d:] - b[:, :d]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(_div(inter, union, 0.0))


def match_boxes_one_to_one(
    boxes: np.ndarray, scores: np.ndarray, targets: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one IoU matching of one image's box detections to its target boxes (COCO).

    Detections are taken by decreasing score; each claims the unclaimed target of highest
    IoU if that IoU is at least ``iou_threshold``, else it is a false positive (a second
    box on a claimed target is a false positive, as in COCO). Returns the false positives'
    scores and, per target, the score of the detection that claimed it (0 when missed).
    """
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(targets), dtype=np.float64)
    claimed = np.zeros(len(targets), dtype=bool)
    fp: list[float] = []
    iou = box_iou(boxes, targets) if len(targets) and len(boxes) else None
    for i in order:
        j = -1
        if iou is not None:
            cand = np.where(claimed, -1.0, iou[i])
            j = int(np.argmax(cand)) if cand.max() >= iou_threshold else -1
        if j >= 0:
            claimed[j] = True
            tp[j] = scores[i]
        else:
            fp.append(float(scores[i]))
    return np.asarray(fp, dtype=np.float64), tp


def box_detection_metrics(
    pred_boxes: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray],
    gt_boxes: Sequence[np.ndarray],
    *,
    iou_threshold: float = 0.5,
    fp_rates: tuple[float, ...] = FROC_FP_RATES,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> TaskMetrics:
    """Metrics of a detector that outputs boxes: COCO mAP, AP50, AP75 and an IoU FROC.

    Boxes are ``[row0, col0, row1, col1]`` (or 3-D ``[z0, r0, c0, z1, r1, c1]``) in pixels.
    ``map`` is the COCO mean AP over IoU 0.50:0.95 (step 0.05, 101-point interpolated
    precision, up to 100 detections per image) and ``ap_iou_0.5`` / ``ap_iou_0.75`` the AP
    at one IoU, all by ``monai.apps.detection.metrics.coco.COCOMetric``. FROC (MONAI):
    true positives are one-to-one IoU matches at ``iou_threshold``
    (:func:`match_boxes_one_to_one`); headline ``froc_score``, with bootstrap CIs over
    images (the AP values are point estimates).
    """
    n_img = len(gt_boxes)
    if not (len(pred_boxes) == len(pred_scores) == n_img):
        raise ValueError("pred_boxes, pred_scores and gt_boxes must have one entry per image")
    fps_l, tps_l = [], []
    for i, (pb, sc, gb) in enumerate(zip(pred_boxes, pred_scores, gt_boxes, strict=True)):
        pb = np.asarray(pb, dtype=np.float64)
        gb = np.asarray(gb, dtype=np.float64)
        width = gb.shape[1] if gb.ndim == 2 and gb.shape[1] else pb.shape[-1]
        pb, gb = pb.reshape(-1, width), gb.reshape(-1, width)
        half = width // 2
        if width not in (4, 6) or any((b[:, half:] < b[:, :half]).any() for b in (pb, gb)):
            raise ValueError(f"image {i}: boxes must be [lo..., hi...] rows of 4 or 6 numbers")
        fp, tp = match_boxes_one_to_one(pb, np.asarray(sc, np.float64).ravel(), gb, iou_threshold)
        fps_l.append(fp)
        tps_l.append(tp)
    point, samples, fpi, sens = _froc(fps_l, tps_l, fp_rates, n_boot, seed)
    point.update(_coco_ap(pred_boxes, pred_scores, gt_boxes, (0.5, 0.75), (0.5, 0.95, 0.05)))
    info = {
        "matching": f"one-to-one by IoU >= {iou_threshold:g}: each target claimed by the "
        "highest-scoring box of highest IoU; other boxes (duplicates included) false positives",
        "froc_fp_rates": ",".join(f"{r:g}" for r in fp_rates),
        "map": "monai COCOMetric on the boxes: map = mean AP over IoU 0.50..0.95 step 0.05; "
        "AP at IoU 0.5 and 0.75; 100 detections per image",
        "ci": f"{level:.0%} percentile bootstrap over images, {n_boot} resamples, seed {seed} "
        "(FROC values; AP values are point estimates)",
    }
    return _detection_result(point, samples, fps_l, tps_l, pred_scores, (fpi, sens), level, info)


def _hd95_nsd(
    pred: np.ndarray, gt: np.ndarray, spacing: np.ndarray, tolerance_mm: float
) -> tuple[float, float]:
    """MONAI's HD95 (mm) and NSD of one case whose masks are both non-empty.

    ``compute_hausdorff_distance(percentile=95)`` and ``compute_surface_dice`` each call
    ``monai.metrics.utils.get_edge_surface_distance`` on the same masks with the same
    arguments; here the edges and edge-to-edge distances (MONAI's
    ``get_surface_distance``, both directions) are computed once and reduced with those
    two functions' own formulas: HD95 = max over the directions of ``torch.quantile(d,
    0.95)``; NSD = share of edge points of both masks within ``tolerance_mm`` of the other
    mask's edge. The edges are what ``get_mask_edges`` computes on CPU without spacing:
    the masks cropped to the union's bounding box with a 1-pixel zero margin (its
    ``CropForegroundd``; here by slicing a padded copy, same coordinates, so the same
    distances), then ``scipy.ndimage.binary_erosion(m) ^ m``. Called directly, this skips
    ``get_mask_edges``' per-call overhead (tensor conversions, and an optional import of
    cuCIM that formats a traceback on every call when cuCIM is absent). The results equal
    MONAI's functions exactly (float32, as they return); tests check it.
    """
    import torch
    from monai.metrics.utils import get_surface_distance
    from scipy.ndimage import binary_erosion

    union = pred | gt
    # the box [min - 1, max + 2) of each axis, cut from a copy padded by one zero per side
    box = []
    for axis in range(union.ndim):
        others = tuple(a for a in range(union.ndim) if a != axis)
        idx = np.flatnonzero(union.any(axis=others))
        box.append(slice(int(idx[0]), int(idx[-1]) + 3))
    p = np.pad(pred, 1)[tuple(box)]
    g = np.pad(gt, 1)[tuple(box)]
    edges_p = binary_erosion(p) ^ p
    edges_g = binary_erosion(g) ^ g
    sp = [float(v) for v in spacing]
    d_pg = torch.from_numpy(np.asarray(get_surface_distance(edges_p, edges_g, "euclidean", sp)))
    d_gp = torch.from_numpy(np.asarray(get_surface_distance(edges_g, edges_p, "euclidean", sp)))
    hd = torch.max(torch.stack([torch.quantile(d, 0.95) for d in (d_pg, d_gp)]))
    correct = torch.sum(d_pg <= tolerance_mm) + torch.sum(d_gp <= tolerance_mm)
    nsd = correct / (len(d_pg) + len(d_gp))
    return float(hd.to(torch.float32)), float(nsd.to(torch.float32))


def segmentation_metrics(
    pred_masks: Sequence[np.ndarray] | np.ndarray,
    gt_masks: Sequence[np.ndarray] | np.ndarray,
    *,
    spacing: Sequence[float] | Sequence[Sequence[float]] = (1.0, 1.0),
    nsd_tolerance_mm: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> TaskMetrics:
    """Per-case Dice, IoU, NSD and HD95 (mm) from MONAI; means with bootstrap CIs.

    ``spacing`` is one (row, col[, ...]) spacing in mm for all cases or one per case.
    Cases where truth and prediction are both empty score Dice = IoU = NSD = 1 and HD95 = 0;
    when only one is empty, NSD is 0 (as MONAI's ``compute_surface_dice`` counts it) and
    HD95 is undefined (nan, left out of its mean, counted in ``n_undefined_distance``).
    Headline: ``dice``.
    """
    import torch

    # the per-case torch work is many small ops (MONAI's per-channel Dice sums, edges,
    # quantiles): with several intra-op threads they pay thread wake-ups (on a busy 2-core
    # machine ~10 ms per masked_select of 256x256 vs 0.2 ms on one thread); results do not
    # depend on the thread count (sums of 0/1 values are exact)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _segmentation_metrics(
            pred_masks, gt_masks, spacing, nsd_tolerance_mm, n_boot, seed, level
        )
    finally:
        torch.set_num_threads(threads)


def _segmentation_metrics(
    pred_masks: Sequence[np.ndarray] | np.ndarray,
    gt_masks: Sequence[np.ndarray] | np.ndarray,
    spacing: Sequence[float] | Sequence[Sequence[float]],
    nsd_tolerance_mm: float,
    n_boot: int,
    seed: int,
    level: float,
) -> TaskMetrics:
    import torch
    from monai.metrics.meandice import compute_dice
    from monai.metrics.meaniou import compute_iou

    preds = [np.asarray(m, dtype=bool) for m in pred_masks]
    gts = [np.asarray(m, dtype=bool) for m in gt_masks]
    n = len(gts)
    if len(preds) != n or n == 0:
        raise ValueError("need one predicted mask per ground-truth mask (and at least one)")
    sp = np.asarray(spacing, dtype=np.float64)
    spacings = np.broadcast_to(sp, (n, gts[0].ndim)) if sp.ndim == 1 else sp
    for i, (pm, gm) in enumerate(zip(preds, gts, strict=True)):
        if pm.shape != gm.shape:
            raise ValueError(f"case {i}: predicted mask {pm.shape} vs truth {gm.shape}")
    # one batched MONAI call per metric (cases share a shape; spacing is per case)
    yp = torch.from_numpy(np.stack(preds)[:, None].astype(np.float32))
    yt = torch.from_numpy(np.stack(gts)[:, None].astype(np.float32))
    dice = compute_dice(yp, yt, include_background=True, ignore_empty=False).numpy().ravel()
    iou = compute_iou(yp, yt, include_background=True, ignore_empty=False).numpy().ravel()
    dice = dice.astype(np.float64)
    iou = iou.astype(np.float64)
    p_any = np.array([m.any() for m in preds])
    g_any = np.array([m.any() for m in gts])
    both_empty = ~p_any & ~g_any
    dice[both_empty] = iou[both_empty] = 1.0
    nsd = np.full(n, math.nan)
    hd95 = np.full(n, math.nan)
    nsd[both_empty] = 1.0
    nsd[p_any ^ g_any] = 0.0  # as compute_surface_dice: no boundary point is within tolerance
    hd95[both_empty] = 0.0
    for j in np.flatnonzero(p_any & g_any).tolist():
        hd95[j], nsd[j] = _hd95_nsd(preds[j], gts[j], spacings[j], nsd_tolerance_mm)
    per_case = {"dice": dice, "iou": iou, "nsd": nsd, "hd95_mm": hd95}
    values: dict[str, MetricValue] = {}
    w = bootstrap_weights(n, n_boot, seed) if n_boot > 0 else None
    for k, v in per_case.items():
        values[k] = MetricValue(k, *_finite_mean_ci(v, w, level))
    values["n_undefined_distance"] = MetricValue(
        "n_undefined_distance", float((~np.isfinite(hd95)).sum()), math.nan, math.nan
    )
    return TaskMetrics(
        task=Task.SEGMENTATION,
        values=values,
        headline="dice",
        per_case=per_case,
        info={
            "distance_implementation": _distance_impl(),
            "nsd_tolerance_mm": f"{nsd_tolerance_mm:g}",
            "spacing": "per case" if sp.ndim == 2 else ",".join(f"{v:g}" for v in sp),
            "ci": f"{level:.0%} percentile bootstrap over cases, {n_boot} resamples, seed {seed}",
        },
    )


def multilabel_segmentation_metrics(
    pred_masks: np.ndarray | Sequence[np.ndarray],
    gt_masks: np.ndarray | Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    spacing: Sequence[float] | Sequence[Sequence[float]] = (1.0, 1.0),
    nsd_tolerance_mm: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> TaskMetrics:
    """Per-label Dice, IoU, NSD and HD95 (mm) of multi-label masks, and their means.

    Each case's masks are (L, ...) booleans, one channel per label of ``labels`` (labels may
    overlap, as DICOM SEG segments can). Every label is scored as
    :func:`segmentation_metrics` scores a binary mask (MONAI's functions, MONAI's count of
    empty cases): ``dice_<label>``, ``nsd_<label>``, ``hd95_mm_<label>``,
    ``iou_<label>``. ``dice``, ``iou``, ``nsd`` and ``hd95_mm`` are the means over labels
    of each case's values (labels with an undefined HD95 left out of that case's mean),
    averaged over cases with bootstrap CIs; headline ``dice``.
    """
    preds = [np.asarray(m, dtype=bool) for m in pred_masks]
    gts = [np.asarray(m, dtype=bool) for m in gt_masks]
    n_lab = len(labels)
    for i, (pm, gm) in enumerate(zip(preds, gts, strict=True)):
        if pm.shape != gm.shape or pm.shape[0] != n_lab:
            raise ValueError(
                f"case {i}: predicted masks {pm.shape} vs truth {gm.shape}; expected "
                f"{n_lab} label channels first"
            )
    per_label = [
        segmentation_metrics(
            [p[k] for p in preds],
            [g[k] for g in gts],
            spacing=spacing,
            nsd_tolerance_mm=nsd_tolerance_mm,
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
        for k in range(n_lab)
    ]
    values: dict[str, MetricValue] = {}
    per_case: dict[str, np.ndarray] = {}
    w = bootstrap_weights(len(gts), n_boot, seed) if n_boot > 0 else None
    for key in ("dice", "iou", "nsd", "hd95_mm"):
        stack = np.stack([m.per_case[key] for m in per_label])  # (L, n)
        ok = np.isfinite(stack)
        case_mean = _div(np.where(ok, stack, 0.0).sum(axis=0), ok.sum(axis=0), math.nan)
        per_case[key] = case_mean
        values[key] = MetricValue(key, *_finite_mean_ci(case_mean, w, level))
        for lab, m in zip(labels, per_label, strict=True):
            name = f"{key}_{lab}"
            v = m.values[key]
            values[name] = MetricValue(name, v.value, v.ci_low, v.ci_high)
            per_case[name] = m.per_case[key]
    n_undef = sum(m.values["n_undefined_distance"].value for m in per_label)
    values["n_undefined_distance"] = MetricValue(
        "n_undefined_distance", float(n_undef), math.nan, math.nan
    )
    return TaskMetrics(
        task=Task.SEGMENTATION,
        values=values,
        headline="dice",
        per_case=per_case,
        info={
            **per_label[0].info,
            "labels": ",".join(labels),
            "label_mean": "each case's mean over labels (undefined HD95 left out), then the "
            "mean over cases",
        },
    )
