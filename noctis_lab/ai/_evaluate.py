"""Evaluation harness: run a model on a test set, compute task metrics, log an MLflow run."""

from __future__ import annotations

import json
import math
import tempfile
import time
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
    classification_metrics,
    detection_metrics,
    segmentation_metrics,
)
from noctis_lab.ai._registry import RegisteredModelVersion, ensure_experiment, resolve_model
from noctis_lab.ai._spec import ModelSpec

__all__ = ["EvaluationResult", "evaluate", "find_peaks", "predict"]


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
    """

    model_name: str
    model_version: str
    task: str
    test_set: dict[str, Any]
    metrics: TaskMetrics
    run_id: str | None
    params: dict[str, str]
    timings: dict[str, float]
    case_ids: tuple[str, ...] = field(default=())

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
            "task": self.task,
            "test_set": self.test_set,
            "metrics": self.metrics.to_dict(),
            "run_id": self.run_id,
            "params": self.params,
            "timings": self.timings,
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
    """Forward passes in batches under ``torch.inference_mode``; images (n, H, W) -> outputs."""
    import torch

    x_all = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    outs = []
    with torch.inference_mode():
        for start in range(0, len(x_all), batch_size):
            outs.append(module(x_all[start : start + batch_size]))
    return torch.cat(outs).numpy()


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
        p1 = probs[:, -1] if probs.shape[1] > 1 else probs[:, 0]
        return classification_metrics(
            [int(c.label or 0) for c in cases],
            p1,
            threshold=spec.threshold,
            n_boot=n_boot,
            seed=seed,
        )
    if spec.task == "detection":
        pts, scs = find_peaks(outputs)
        return detection_metrics(
            pts,
            scs,
            [c.centres for c in cases],  # type: ignore[misc]
            image_shape=cases[0].image.shape,
            spacing=cases[0].spacing,
            radius_mm=detection_radius_mm,
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
    else:
        path = Path(model)  # type: ignore[arg-type]
        report = check_model_file(path, spec)
        spec = report.spec
        name, version = path.stem, "file"
    report = check_model_file(path, spec)
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
    outputs = predict(module, test_set.images())
    t1 = time.perf_counter()
    metrics = compute_task_metrics(
        spec,
        outputs,
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
        "task": spec.task,
        "test_set_name": test_set.name,
        "test_set_sha256": test_set.sha256,
        "n_cases": str(len(test_set)),
        "decision_threshold": f"{spec.threshold:g}",
        "n_boot": str(n_boot),
        "bootstrap_seed": str(seed),
        **{k: v[:5000] for k, v in metrics.info.items()},
    }
    if spec.task == "detection":
        params["detection_radius_mm"] = f"{detection_radius_mm:g}"
    if spec.task == "segmentation":
        params["nsd_tolerance_mm"] = f"{nsd_tolerance_mm:g}"
    case_ids = tuple(c.case_id for c in test_set.cases)
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
    )


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
        "noctis.task": result.task,
        "noctis.test_set": str(result.test_set["name"]),
        "noctis.headline": result.metrics.headline,
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
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result.to_dataframe().to_csv(folder / "per_case.csv", index=False)
        (folder / "metrics.json").write_text(result.to_json())
        if plots:
            from noctis_lab.ai._plots import evaluation_plots

            for fname, fig in evaluation_plots(result).items():
                fig.savefig(folder / fname, dpi=90)
        client.log_artifacts(run_id, str(folder), artifact_path="evaluation")
    client.set_terminated(run_id)
    return str(run_id)
