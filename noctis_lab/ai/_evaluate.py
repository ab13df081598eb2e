"""Evaluation harness: run a model on a test set, compute task metrics, log an MLflow run."""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noctis_lab._errors import ModelCheckError
from noctis_lab.ai._checks import check_model_file, load_model
from noctis_lab.ai._config import EXPERIMENT_PREFIX, import_mlflow
from noctis_lab.ai._config import tracking_uri as _resolve_uri
from noctis_lab.ai._manifest import TestSet, load_test_set
from noctis_lab.ai._metrics import (
    TaskMetrics,
    box_detection_metrics,
    classification_metrics,
    detection_metrics,
    multiclass_metrics,
    multilabel_segmentation_metrics,
    segmentation_metrics,
)
from noctis_lab.ai._registry import RegisteredModelVersion, ensure_experiment, resolve_model
from noctis_lab.ai._runners import ModelRunner, TorchRunner
from noctis_lab.ai._spec import ModelSpec, Task

__all__ = [
    "EvaluationResult",
    "apply_activation",
    "check_outputs",
    "evaluate",
    "find_peaks",
    "predict",
]


@dataclass(frozen=True)
class EvaluationResult:
    """One evaluation of a model on a test set.

    Attributes
    ----------
    model_name, model_version : str
    task : str
    test_set : dict
        Name, hash, size and path of the test set.
    metrics : TaskMetrics
        Values with bootstrap CIs, curves, per-case columns, how they were computed.
    run_id : str or None
        The MLflow run (``None`` when not logged).
    params : dict of str to str
        What was logged as run parameters.
    timings : dict of str to float
        Seconds spent in ``inference``, ``metrics`` and ``logging``.
    case_ids : tuple of str
    subgroups : tuple of dict
        The headline metric by scanner / site / kVp (``attribute``, ``group``, ``n``,
        ``metric``, ``value``, ``ci_low``, ``ci_high``), when the cases carry them.
    """

    model_name: str
    model_version: str
    task: Task
    test_set: dict[str, Any]
    metrics: TaskMetrics
    run_id: str | None
    params: dict[str, str]
    timings: dict[str, float]
    case_ids: tuple[str, ...] = field(default=())
    subgroups: tuple[dict[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        """Keep the task an enum member, whatever text it was given as."""
        object.__setattr__(self, "task", Task(self.task))

    @property
    def headline(self) -> tuple[str, float, float, float]:
        """``(name, value, ci_low, ci_high)`` of the headline metric."""
        m = self.metrics.values[self.metrics.headline]
        return m.name, m.value, m.ci_low, m.ci_high

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-compatible; no per-case arrays)."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "task": self.task.value,
            "test_set": self.test_set,
            "metrics": self.metrics.to_dict(),
            "run_id": self.run_id,
            "params": self.params,
            "timings": self.timings,
            "subgroups": list(self.subgroups),
        }

    def to_json(self) -> str:
        """JSON text (NaN written as null)."""
        return json.dumps(_nan_to_none(self.to_dict()), indent=2)

    def to_dataframe(self) -> Any:
        """Per-case table (pandas DataFrame) with ``case_id`` first."""
        import pandas as pd

        df = pd.DataFrame({k: np.asarray(v) for k, v in self.metrics.per_case.items()})
        if self.case_ids:
            df.insert(0, "case_id", list(self.case_ids))
        return df


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def predict(module: Any, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Outputs of a model for images (n, H, W).

    The model is a runner from :func:`noctis_lab.ai.load_model` (weights and ONNX in our
    process, TorchScript / ``torch.export`` in the sandbox) or a ``torch.nn.Module`` (run
    under ``torch.inference_mode``). A model that refuses a batch of several cases (static
    batch of one) is run one case at a time.
    """
    x = np.ascontiguousarray(images, dtype=np.float32)[:, None]
    if isinstance(module, ModelRunner):
        return module.run(x, batch_size=batch_size)[0]
    return TorchRunner(module).run(x, batch_size=batch_size)[0]


def check_outputs(outputs: np.ndarray, spec: ModelSpec, case_ids: Sequence[str]) -> np.ndarray:
    """Check model outputs case by case and apply the declared activation.

    Raises
    ------
    ModelCheckError
        Naming the first case whose output has the wrong shape, NaN/inf values, or values
        outside the declared range (probabilities outside [0, 1], say).
    """
    want = tuple(spec.output_shape[1:])
    if outputs.ndim == 0 or len(outputs) != len(case_ids):
        raise ModelCheckError(
            f"the model returned {0 if outputs.ndim == 0 else len(outputs)} outputs for "
            f"{len(case_ids)} cases"
        )
    if tuple(outputs.shape[1:]) != want:
        raise ModelCheckError(
            f"case {case_ids[0]}: output shape {tuple(outputs.shape[1:])} differs from the "
            f"declared {want}"
        )
    flat = outputs.reshape(len(outputs), -1).astype(np.float64)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        ids = [case_ids[i] for i in np.flatnonzero(bad)[:5]]
        raise ModelCheckError(
            f"case {ids[0]}: model output holds NaN or inf ({int(bad.sum())} case(s): "
            f"{', '.join(ids)}{'...' if bad.sum() > 5 else ''}); no metric was computed"
        )
    if spec.output_range is not None:
        lo, hi = spec.output_range
        ranged = spec.scores_of(flat.reshape(outputs.shape)).reshape(len(outputs), -1)
        out = (ranged < lo) | (ranged > hi)
        if out.any():
            i = int(np.flatnonzero(out.any(axis=1))[0])
            raise ModelCheckError(
                f"case {case_ids[i]}: output values {ranged[i].min():.3g}.."
                f"{ranged[i].max():.3g} "
                f"lie outside the declared range [{lo:g}, {hi:g}] (logits? declare "
                "output_range=None and the activation)"
            )
    return apply_activation(outputs.astype(np.float64), spec)


def apply_activation(outputs: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Probabilities from outputs: as they are, or the declared sigmoid / softmax (axis 1).

    Box outputs keep their coordinates; a sigmoid applies to the score column only.
    """
    if spec.task == "detection" and spec.detection_output == "boxes":
        if spec.activation == "softmax":
            raise ModelCheckError("box detector scores take a sigmoid, not a softmax")
        out = outputs.copy()
        if spec.activation == "sigmoid":
            out[..., -1] = 1.0 / (1.0 + np.exp(-out[..., -1]))
        return out
    if spec.activation == "sigmoid":
        return np.asarray(1.0 / (1.0 + np.exp(-outputs)))
    if spec.activation == "softmax":
        z = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    return outputs


def find_peaks(
    heatmaps: np.ndarray, *, min_score: float = 0.1, window: int = 5, max_peaks: int = 50
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Local maxima of heatmaps (n, 1, H, W): per image (k, 2) points and (k,) scores."""
    import torch
    import torch.nn.functional as F

    h = torch.from_numpy(np.ascontiguousarray(heatmaps, dtype=np.float32))
    pooled = F.max_pool2d(h, window, stride=1, padding=window // 2)
    keep = (pooled == h) & (h >= min_score)
    points, scores = [], []
    for i in range(h.shape[0]):
        idx = torch.nonzero(keep[i, 0]).numpy()
        sc = h[i, 0].numpy()[idx[:, 0], idx[:, 1]] if len(idx) else np.zeros(0, np.float32)
        order = np.argsort(-sc, kind="stable")[:max_peaks]
        points.append(idx[order].astype(np.float64))
        scores.append(sc[order].astype(np.float64))
    return points, scores


def box_detections(
    outputs: np.ndarray, case_ids: Sequence[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Box outputs (n, K, 2*d + 1) as per image (k, 2*d) boxes and (k,) scores.

    All-zero slots are empty and left out.

    Raises
    ------
    ModelCheckError
        A box ends before it starts; the message names the case.
    """
    if outputs.ndim != 3 or outputs.shape[2] not in (5, 7):
        raise ModelCheckError(
            f"box outputs must be (n, K, 5) or (n, K, 7) slots [lo..., hi..., score], got "
            f"{outputs.shape}"
        )
    d = (outputs.shape[2] - 1) // 2
    boxes, scores = [], []
    for case_id, slots in zip(case_ids, outputs, strict=True):
        used = slots[(slots != 0).any(axis=1)]
        if (used[:, d : 2 * d] < used[:, :d]).any():
            raise ModelCheckError(
                f"case {case_id}: the model output a box that ends before it starts"
            )
        boxes.append(used[:, : 2 * d])
        scores.append(used[:, -1])
    return boxes, scores


def _same_classes(spec: ModelSpec, test_set: TestSet) -> tuple[str, ...]:
    """The class (or label) names the model and the test set agree on.

    Raises
    ------
    ModelCheckError
        Both name classes, but different ones or the same in another order (a reversed
        order would silently swap every score or mask).
    """
    model_cls, set_cls = tuple(spec.classes), tuple(test_set.classes)
    if model_cls and set_cls and model_cls != set_cls:
        how = "in another order" if sorted(model_cls) == sorted(set_cls) else "different classes"
        raise ModelCheckError(
            f"class mismatch ({how}): the model's outputs are {list(model_cls)}, the test "
            f"set {test_set.name!r} labels {list(set_cls)}; fix the spec or the manifest"
        )
    return set_cls or model_cls


def class_labels(spec: ModelSpec, test_set: TestSet, n_outputs: int) -> np.ndarray:
    """The test set's labels as indices of the model's output columns.

    Raises
    ------
    ModelCheckError
        The model and the test set name different classes or the same classes in another
        order (a reversed order would silently invert every score), or a label has no
        output column; the message names the classes or the case.
    """
    _same_classes(spec, test_set)
    n_cls = max(n_outputs, 2)
    labels = np.array([-1 if c.label is None else int(c.label) for c in test_set.cases])
    bad = np.flatnonzero((labels < 0) | (labels >= n_cls))
    if len(bad):
        case = test_set.cases[int(bad[0])]
        raise ModelCheckError(
            f"case {case.case_id}: label {case.label} has no output column (the model gives "
            f"{n_outputs} output(s); {'binary' if n_outputs <= 2 else 'multi-class'})"
        )
    return labels


def compute_task_metrics(
    spec: ModelSpec,
    outputs: np.ndarray,
    test_set: TestSet,
    *,
    n_boot: int,
    seed: int,
    detection_radius_mm: float,
    nsd_tolerance_mm: float,
) -> TaskMetrics:
    """Turn model outputs into the task's metrics (post-processing included)."""
    cases = test_set.cases
    if spec.task == "classification":
        probs = outputs.reshape(len(cases), -1)
        labels = class_labels(spec, test_set, probs.shape[1])
        if probs.shape[1] >= 3:
            return multiclass_metrics(
                labels, probs, classes=spec.classes or test_set.classes, n_boot=n_boot, seed=seed
            )
        p1 = probs[:, 1] if probs.shape[1] == 2 else probs[:, 0]
        return classification_metrics(
            labels, p1, threshold=spec.threshold, n_boot=n_boot, seed=seed
        )
    if spec.task == "detection" and spec.detection_output == "boxes":
        missing = [c.case_id for c in cases if c.boxes is None]
        if missing:
            raise ModelCheckError(
                f"case {missing[0]}: a box detector needs target boxes, the test set "
                f"{test_set.name!r} gives centres only"
            )
        boxes, scores = box_detections(outputs, [c.case_id for c in cases])
        targets = [np.asarray(c.boxes) for c in cases]
        return box_detection_metrics(boxes, scores, targets, n_boot=n_boot, seed=seed)
    if spec.task == "detection":
        pts, scs = find_peaks(outputs)
        return detection_metrics(
            pts,
            scs,
            [c.centres for c in cases],  # type: ignore[misc]
            image_shape=cases[0].image.shape,
            spacing=[c.spacing for c in cases],
            radius_mm=detection_radius_mm,
            n_boot=n_boot,
            seed=seed,
        )
    if test_set.classes:  # multi-label: one output channel per label, in the same order
        names = _same_classes(spec, test_set)
        shape = (len(cases), len(names), *cases[0].image.shape)
        if outputs.size != int(np.prod(shape)):
            raise ModelCheckError(
                f"the model gives {outputs.shape[1:]} per case; test set {test_set.name!r} "
                f"needs {shape[1:]} (one channel per label {list(names)})"
            )
        return multilabel_segmentation_metrics(
            outputs.reshape(shape) >= spec.threshold,
            [c.mask for c in cases],  # type: ignore[misc]
            names,
            spacing=[c.spacing for c in cases],
            nsd_tolerance_mm=nsd_tolerance_mm,
            n_boot=n_boot,
            seed=seed,
        )
    masks = outputs.reshape((len(cases), *cases[0].image.shape)) >= spec.threshold
    return segmentation_metrics(
        masks,
        [c.mask for c in cases],  # type: ignore[misc]
        spacing=[c.spacing for c in cases],
        nsd_tolerance_mm=nsd_tolerance_mm,
        n_boot=n_boot,
        seed=seed,
    )


def subgroup_metrics(
    spec: ModelSpec,
    probs: np.ndarray,
    test_set: TestSet,
    *,
    n_boot: int,
    seed: int,
    detection_radius_mm: float,
    nsd_tolerance_mm: float,
    min_cases: int = 5,
) -> tuple[dict[str, Any], ...]:
    """The headline metric, with its bootstrap CI, within each subgroup.

    Subgroups are the scanner / site / kVp groups of at least ``min_cases`` cases; empty
    when the cases carry no such attributes.
    """
    from dataclasses import replace

    from noctis_lab.ai._manifest import SUBGROUP_COLUMNS

    rows: list[dict[str, Any]] = []
    for attr in SUBGROUP_COLUMNS:
        groups: dict[str, list[int]] = {}
        for i, case in enumerate(test_set.cases):
            if attr in case.attributes:
                groups.setdefault(case.attributes[attr], []).append(i)
        for value, idx in sorted(groups.items()):
            if len(idx) < min_cases:
                continue
            sub = replace(test_set, cases=tuple(test_set.cases[i] for i in idx))
            try:
                m = compute_task_metrics(
                    spec,
                    probs[idx],
                    sub,
                    n_boot=n_boot,
                    seed=seed,
                    detection_radius_mm=detection_radius_mm,
                    nsd_tolerance_mm=nsd_tolerance_mm,
                )
            except ValueError:  # e.g. a subgroup without a target: nothing to report
                continue
            head = m.values[m.headline]
            rows.append(
                {
                    "attribute": attr,
                    "group": value,
                    "n": len(idx),
                    "metric": head.name,
                    "value": head.value,
                    "ci_low": head.ci_low,
                    "ci_high": head.ci_high,
                }
            )
    return tuple(rows)


def evaluate(
    model: str | Path | RegisteredModelVersion,
    test_set: str | Path | TestSet,
    *,
    spec: ModelSpec | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    detection_radius_mm: float = 4.0,
    nsd_tolerance_mm: float = 1.0,
    log_to_mlflow: bool = True,
    plots: bool = True,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> EvaluationResult:
    """Evaluate a model on a test set and (by default) record it as an MLflow run.

    Parameters
    ----------
    model : str, Path or RegisteredModelVersion
        A registered reference (``name``, ``name@alias``, ``name/3``) or a model file path
        (then its spec comes from ``spec`` or the file's ``.spec.json``).
    test_set : str, Path or TestSet
        A manifest path or a loaded :class:`TestSet`.
    n_boot, seed : int
        Bootstrap resamples (cases) and seed for the 95% CIs.
    detection_radius_mm : float
        Detection matching criterion (distance to the target centre).
    nsd_tolerance_mm : float
        Tolerance of the normalised surface distance.
    log_to_mlflow : bool
        Log params (model version, test-set hash, thresholds), metrics with CI bounds,
        per-case table and plots as a run of experiment ``noctis-ai/<model name>``.

    Raises
    ------
    ModelCheckError
        The model file fails its checks (it is not run).
    ManifestError
        The manifest is malformed.
    """
    if isinstance(model, RegisteredModelVersion):
        mv: RegisteredModelVersion | None = model
    elif isinstance(model, Path) or Path(str(model)).exists():
        mv = None
    else:
        mv = resolve_model(str(model), tracking_uri=tracking_uri)
    if mv is not None:
        path, spec, name, version = mv.path, mv.spec, mv.name, mv.version
        if mv.model_id:
            tags = {"noctis.model_id": mv.model_id, **(tags or {})}
    else:
        path = Path(model)  # type: ignore[arg-type]
        name, version = path.stem, "file"
    report = check_model_file(path, spec)
    spec = report.spec
    if report.status == "error" or spec is None:
        reasons = "; ".join(c.detail for c in report.checks if c.state == "fail") or "no spec"
        raise ModelCheckError(
            f"{name} ({path}): not evaluated, the model failed its checks: {reasons}"
        )
    ts = test_set if isinstance(test_set, TestSet) else load_test_set(test_set, task=spec.task)
    if ts.task != spec.task:
        raise ModelCheckError(f"{name} is a {spec.task} model but test set {ts.name} is {ts.task}")
    module = load_model(path, spec)
    return evaluate_loaded(
        module,
        spec,
        ts,
        model_name=name,
        model_version=version,
        n_boot=n_boot,
        seed=seed,
        detection_radius_mm=detection_radius_mm,
        nsd_tolerance_mm=nsd_tolerance_mm,
        log_to_mlflow=log_to_mlflow,
        plots=plots,
        tracking_uri=tracking_uri,
        run_name=run_name,
        tags=tags,
    )


def evaluate_loaded(
    module: Any,
    spec: ModelSpec,
    test_set: TestSet,
    *,
    model_name: str,
    model_version: str,
    n_boot: int = 1000,
    seed: int = 0,
    detection_radius_mm: float = 4.0,
    nsd_tolerance_mm: float = 1.0,
    log_to_mlflow: bool = True,
    plots: bool = True,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> EvaluationResult:
    """Evaluate an already loaded (and checked) module; see :func:`evaluate`."""
    t0 = time.perf_counter()
    case_ids = tuple(c.case_id for c in test_set.cases)
    outputs = predict(module, test_set.images())
    probs = check_outputs(outputs, spec, case_ids)
    t1 = time.perf_counter()
    metrics = compute_task_metrics(
        spec,
        probs,
        test_set,
        n_boot=n_boot,
        seed=seed,
        detection_radius_mm=detection_radius_mm,
        nsd_tolerance_mm=nsd_tolerance_mm,
    )
    subgroups = subgroup_metrics(
        spec,
        probs,
        test_set,
        n_boot=n_boot,
        seed=seed,
        detection_radius_mm=detection_radius_mm,
        nsd_tolerance_mm=nsd_tolerance_mm,
    )
    t2 = time.perf_counter()
    params = {
        "model_name": model_name,
        "model_version": model_version,
        "model_sha256": spec.sha256 or "",
        "task": spec.task.value,
        "test_set_name": test_set.name,
        "test_set_sha256": test_set.sha256,
        "n_cases": str(len(test_set)),
        "decision_threshold": f"{spec.threshold:g}",
        "n_boot": str(n_boot),
        "model_format": spec.format,
        "model_runs_in": getattr(module, "where", "in-process"),
        "batching": "one case at a time (static batch)"
        if getattr(module, "per_case", False)
        else "batched",
        "bootstrap_seed": str(seed),
        **{k: v[:5000] for k, v in metrics.info.items()},
    }
    if spec.task == "detection":
        params["detection_radius_mm"] = f"{detection_radius_mm:g}"
    if spec.task == "segmentation":
        params["nsd_tolerance_mm"] = f"{nsd_tolerance_mm:g}"
    result = EvaluationResult(
        model_name,
        model_version,
        spec.task,
        test_set.to_dict(),
        metrics,
        None,
        params,
        {"inference": t1 - t0, "metrics": t2 - t1, "logging": 0.0},
        case_ids,
        subgroups,
    )
    if not log_to_mlflow:
        return result
    run_id = _log_run(result, plots=plots, tracking_uri=tracking_uri, run_name=run_name, tags=tags)
    t3 = time.perf_counter()
    return EvaluationResult(
        model_name,
        model_version,
        spec.task,
        test_set.to_dict(),
        metrics,
        run_id,
        params,
        {"inference": t1 - t0, "metrics": t2 - t1, "logging": t3 - t2},
        case_ids,
        subgroups,
    )


def _log_inputs(client: Any, run_id: str, result: EvaluationResult, model_id: str) -> None:
    """The run's inputs: the test set and the registered version's MLflow model.

    The test set is logged as an MLflow dataset (name, manifest path, content hash).
    """
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import (  # type: ignore[attr-defined]  # made at import
        LocalArtifactDatasetSource,
    )
    from mlflow.entities import DatasetInput, InputTag, LoggedModelInput

    ts = result.test_set
    dataset = MetaDataset(  # type: ignore[abstract]  # profile is optional in MLflow 3
        LocalArtifactDatasetSource(str(ts["path"])),
        name=str(ts["name"]),
        digest=str(ts["sha256"])[:16],
    )
    inputs = [
        DatasetInput(
            dataset._to_mlflow_entity(),
            tags=[InputTag("mlflow.data.context", "evaluation")],
        )
    ]
    models = [LoggedModelInput(model_id)] if model_id else None
    client.log_inputs(run_id, datasets=inputs, models=models)


def _log_run(
    result: EvaluationResult,
    *,
    plots: bool,
    tracking_uri: str | None,
    run_name: str | None,
    tags: dict[str, str] | None,
) -> str:
    mlflow = import_mlflow()
    from mlflow.entities import Metric, Param

    uri = _resolve_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = ensure_experiment(EXPERIMENT_PREFIX + result.model_name, uri)
    run_tags = {
        "noctis.kind": "evaluation",
        "noctis.model_name": result.model_name,
        "noctis.model_version": result.model_version,
        "noctis.task": result.task.value,
        "noctis.test_set": str(result.test_set["name"]),
        "noctis.test_set_sha256": str(result.test_set["sha256"]),
        "noctis.headline": result.metrics.headline,
        "noctis.undefined_metrics": ",".join(
            k for k, v in result.metrics.values.items() if not math.isfinite(v.value)
        ),
        **(tags or {}),
    }
    run = client.create_run(
        exp_id, run_name=run_name or f"evaluate {result.model_name}", tags=run_tags
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = []
    for k, v in result.metrics.values.items():
        for suffix, val in (("", v.value), ("_ci_low", v.ci_low), ("_ci_high", v.ci_high)):
            if math.isfinite(val):
                metrics.append(Metric(k + suffix, float(val), now, 0))
    for k, secs in result.timings.items():
        if k != "logging":
            metrics.append(Metric(f"time_{k}_s", float(secs), now, 0))
    client.log_batch(
        run_id, metrics=metrics, params=[Param(k, v) for k, v in result.params.items()]
    )
    _log_inputs(client, run_id, result, run_tags.get("noctis.model_id", ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result.to_dataframe().to_csv(folder / "per_case.csv", index=False)
        if result.subgroups:
            import pandas as pd

            pd.DataFrame(list(result.subgroups)).to_csv(folder / "subgroups.csv", index=False)
        (folder / "metrics.json").write_text(result.to_json())
        if plots:
            from noctis_lab.ai._plots import evaluation_plots

            for fname, fig in evaluation_plots(result).items():
                fig.savefig(folder / fname, dpi=90)
        client.log_artifacts(run_id, str(folder), artifact_path="evaluation")
    client.set_terminated(run_id)
    return str(run_id)
