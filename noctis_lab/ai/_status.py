"""Model status (excellent / good / warning / error), issues and degradation over run history.

Sources of status, combined so that the worst wins (an ``error`` is never overwritten):

1. file checks of the registered version (missing, hash mismatch, unsafe, bad output);
2. the latest evaluation: the lower 95% bound of the headline metric against
   ``metric_excellent`` / ``metric_good`` / ``metric_warning``;
3. analyses in the last ``window_days``: success rate against ``success_*`` (the seed's
   95 / 85 / 70%) and median processing time against ``slow_processing_s``;
4. degradation: a one-sided CUSUM of each key metric over the evaluation runs after the
   baseline run, in units of the baseline's bootstrap standard error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from noctis_lab.ai._analysis import AnalysisSummary, FeedbackSummary
from noctis_lab.ai._types import Issue, Status, worst_status

__all__ = [
    "KEY_METRICS",
    "DriftResult",
    "ModelStatus",
    "StatusThresholds",
    "cusum_drift",
    "metric_history",
    "model_status",
    "status_from_level",
]

#: Metrics watched for degradation, per task: name -> higher is better.
KEY_METRICS: dict[str, dict[str, bool]] = {
    "classification": {"auroc": True, "balanced_accuracy": True, "brier": False},
    "detection": {"froc_score": True, "sensitivity_at_1_fp": True},
    "segmentation": {"dice": True, "nsd": True, "hd95_mm": False},
}


class StatusThresholds(BaseModel):
    """Documented, configurable thresholds of the model status.

    Attributes
    ----------
    success_excellent, success_good, success_warning : float
        Analysis success rate over ``window_days`` (seed: 0.95 / 0.85 / 0.70); below
        ``success_warning`` the status is ``error``.
    metric_excellent, metric_good, metric_warning : float
        Lower 95% bound of the headline metric (AUROC, FROC score, Dice); below
        ``metric_warning`` the status is ``error``.
    low_accuracy : float
        The seed's rule: latest accuracy (classification) or headline value below this adds
        a ``warning`` issue.
    slow_processing_s : float
        Median processing time per study above this adds a ``warning`` issue.
    window_days : float
        Window of analyses feeding the success rate.
    min_analyses : int
        Fewer analyses than this in the window: the success rate is not judged.
    cusum_k, cusum_h : float
        CUSUM reference value and decision limit, in baseline standard errors
        (k = 0.5, h = 4 detect a one-standard-error shift in about 8 runs with a false
        alarm about every 170 runs on in-control data).
    min_sigma : float
        Floor of the baseline standard error (stops alarms on tiny bootstrap CIs).
    review_confidence : float
        Results with confidence below this are marked as needing human review.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    success_excellent: float = Field(0.95, ge=0, le=1)
    success_good: float = Field(0.85, ge=0, le=1)
    success_warning: float = Field(0.70, ge=0, le=1)
    metric_excellent: float = Field(0.90, ge=0, le=1)
    metric_good: float = Field(0.80, ge=0, le=1)
    metric_warning: float = Field(0.70, ge=0, le=1)
    low_accuracy: float = Field(0.80, ge=0, le=1)
    slow_processing_s: float = Field(5.0, gt=0)
    window_days: float = Field(7.0, gt=0)
    min_analyses: int = Field(1, ge=1)
    cusum_k: float = Field(0.5, ge=0)
    cusum_h: float = Field(4.0, gt=0)
    min_sigma: float = Field(0.005, gt=0)
    review_confidence: float = Field(0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> StatusThresholds:
        for kind in ("success", "metric"):
            e, g, w = (getattr(self, f"{kind}_{lvl}") for lvl in ("excellent", "good", "warning"))
            if not e >= g >= w:
                raise ValueError(f"{kind} thresholds must satisfy excellent >= good >= warning")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return self.model_dump()


def status_from_level(value: float, excellent: float, good: float, warning: float) -> Status:
    """Map a value onto the four levels (nan -> ``error``: an unknown value is not fine)."""
    if not math.isfinite(value):
        return "error"
    if value >= excellent:
        return "excellent"
    if value >= good:
        return "good"
    if value >= warning:
        return "warning"
    return "error"


@dataclass(frozen=True)
class DriftResult:
    """CUSUM result for one metric over the run history.

    ``statistic`` holds the CUSUM after each run; ``alarm_index`` is the first run (0-based,
    in ``values``) where it crossed ``h``, or ``None``.
    """

    metric: str
    baseline: float
    sigma: float
    values: tuple[float, ...]
    statistic: tuple[float, ...]
    h: float
    alarm_index: int | None
    higher_is_better: bool = True

    @property
    def alarm(self) -> bool:
        """True when the CUSUM crossed its limit."""
        return self.alarm_index is not None

    def explanation(self) -> str:
        """Plain-words account of the result."""
        if not self.values:
            return f"{self.metric}: no runs after the baseline yet."
        latest = self.values[-1]
        direction = "fallen" if self.higher_is_better else "risen"
        if self.alarm:
            return (
                f"{self.metric} has {direction} from its baseline {self.baseline:.3f} to "
                f"{latest:.3f}: a sustained change beyond chance (CUSUM crossed its limit "
                f"at evaluation {self.alarm_index + 1 if self.alarm_index is not None else 0} "
                f"of {len(self.values)})."
            )
        return (
            f"{self.metric} stays within chance of its baseline {self.baseline:.3f} "
            f"(latest {latest:.3f})."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "sigma": self.sigma,
            "values": list(self.values),
            "statistic": list(self.statistic),
            "h": self.h,
            "alarm": self.alarm,
            "alarm_index": self.alarm_index,
            "higher_is_better": self.higher_is_better,
            "explanation": self.explanation(),
        }


def cusum_drift(
    metric: str,
    values: Sequence[float],
    *,
    baseline: float,
    sigma: float,
    k: float = 0.5,
    h: float = 4.0,
    higher_is_better: bool = True,
) -> DriftResult:
    """One-sided CUSUM for a worsening of ``metric`` relative to ``baseline``.

    ``S_t = max(0, S_{t-1} + z_t - k)`` with ``z_t = (baseline - x_t) / sigma`` (sign flipped
    when lower is better); alarm when ``S_t > h``. Non-finite values are skipped.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, not {sigma}")
    s = 0.0
    stats: list[float] = []
    alarm: int | None = None
    sign = 1.0 if higher_is_better else -1.0
    for i, x in enumerate(values):
        if math.isfinite(x):
            s = max(0.0, s + sign * (baseline - x) / sigma - k)
        stats.append(s)
        if alarm is None and s > h:
            alarm = i
    return DriftResult(
        metric,
        baseline,
        sigma,
        tuple(float(v) for v in values),
        tuple(stats),
        h,
        alarm,
        higher_is_better,
    )


_HISTORY_COLUMNS = [
    "run_id",
    "start_time",
    "model_version",
    "test_set",
    "period",
    "baseline",
    "metric",
    "value",
    "ci_low",
    "ci_high",
]


def metric_history(name: str, *, tracking_uri: str | None = None) -> Any:
    """Evaluation runs of a model as a tidy DataFrame, oldest first.

    Columns: run_id, start_time (UTC), model_version, test_set, period, baseline (bool),
    metric, value, ci_low, ci_high. Empty (with these columns) when there are none.
    """
    import pandas as pd

    from noctis_lab.ai._config import EXPERIMENT_PREFIX, mlflow_client

    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT_PREFIX + name)
    if exp is None:
        return pd.DataFrame(columns=_HISTORY_COLUMNS)
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string="tags.`noctis.kind` = 'evaluation'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )
    rows = []
    for r in runs:
        m = r.data.metrics
        tags = r.data.tags
        start = datetime.fromtimestamp(r.info.start_time / 1000, tz=_utc())
        for key, val in m.items():
            if key.endswith(("_ci_low", "_ci_high")) or key.startswith("time_"):
                continue
            rows.append(
                {
                    "run_id": r.info.run_id,
                    "start_time": start,
                    "model_version": tags.get("noctis.model_version", ""),
                    "test_set": tags.get("noctis.test_set", ""),
                    "period": tags.get("noctis.period", ""),
                    "baseline": tags.get("noctis.baseline", "") == "true",
                    "metric": key,
                    "value": val,
                    "ci_low": m.get(f"{key}_ci_low", math.nan),
                    "ci_high": m.get(f"{key}_ci_high", math.nan),
                }
            )
    return pd.DataFrame(rows, columns=_HISTORY_COLUMNS)


def _utc() -> Any:
    from datetime import UTC

    return UTC


def degradation(history: Any, task: str, thresholds: StatusThresholds) -> tuple[DriftResult, ...]:
    """CUSUM of each key metric of ``task`` over a :func:`metric_history` frame.

    The baseline is the run tagged ``noctis.baseline=true``, else the first run; later runs
    are monitored. The baseline standard error is its bootstrap CI width / 3.92.
    """
    if history is None or len(history) == 0:
        return ()
    runs = history.drop_duplicates("run_id")[["run_id", "baseline"]].reset_index(drop=True)
    base_rows = runs.index[runs["baseline"]].tolist()
    b = base_rows[-1] if base_rows else 0
    base_id = runs.loc[b, "run_id"]
    later = runs.loc[b + 1 :, "run_id"].tolist()
    out = []
    for metric, higher in KEY_METRICS.get(task, {}).items():
        h = history[history["metric"] == metric].set_index("run_id")
        if base_id not in h.index:
            continue
        base = h.loc[base_id]
        width = float(base["ci_high"] - base["ci_low"])
        sigma = max(width / 3.92 if math.isfinite(width) else 0.0, thresholds.min_sigma)
        vals = [float(h.loc[r, "value"]) if r in h.index else math.nan for r in later]
        out.append(
            cusum_drift(
                metric,
                vals,
                baseline=float(base["value"]),
                sigma=sigma,
                k=thresholds.cusum_k,
                h=thresholds.cusum_h,
                higher_is_better=higher,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class ModelStatus:
    """Status of one registered model, with every issue in plain words.

    Attributes
    ----------
    name, version : str
        Registered name and the version checked (``""`` when unknown).
    status : {"excellent", "good", "warning", "error"}
        Worst of the sources in ``sources``.
    sources : dict of str to status
        Status from ``file``, ``metrics``, ``analyses``, ``history`` (absent when no data).
    issues : tuple of Issue
    headline : dict or None
        ``{"name", "value", "ci_low", "ci_high"}`` of the latest evaluation's headline metric.
    metrics : dict of str to dict
        All metrics of the latest evaluation with CIs.
    analyses : AnalysisSummary or None
    feedback : FeedbackSummary or None
    drift : tuple of DriftResult
    task : str
    last_run_id : str or None
    thresholds : StatusThresholds
    """

    name: str
    version: str
    status: Status
    sources: dict[str, Status]
    issues: tuple[Issue, ...]
    headline: dict[str, Any] | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    analyses: AnalysisSummary | None = None
    feedback: FeedbackSummary | None = None
    drift: tuple[DriftResult, ...] = ()
    task: str = ""
    last_run_id: str | None = None
    thresholds: StatusThresholds = field(default_factory=StatusThresholds)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-compatible, NaN as None)."""
        d = {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "status": self.status,
            "sources": dict(self.sources),
            "issues": [i.to_dict() for i in self.issues],
            "headline": self.headline,
            "metrics": self.metrics,
            "analyses": None if self.analyses is None else self.analyses.to_dict(),
            "feedback": None if self.feedback is None else self.feedback.to_dict(),
            "drift": [d.to_dict() for d in self.drift],
            "last_run_id": self.last_run_id,
            "thresholds": self.thresholds.to_dict(),
        }
        return _clean(d)

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def model_status(
    name: str,
    *,
    thresholds: StatusThresholds | None = None,
    tracking_uri: str | None = None,
    db_url: str | None = None,
    now: datetime | None = None,
) -> ModelStatus:
    """Status of a registered model from file checks, evaluation, analyses and history.

    Never raises for a missing model or an empty store: the result says what is wrong.
    """
    from noctis_lab._errors import ModelCheckError, NoctisError
    from noctis_lab.ai._analysis import analysis_summary, feedback_summary
    from noctis_lab.ai._checks import check_model_file
    from noctis_lab.ai._registry import resolve_model

    th = thresholds or StatusThresholds()
    issues: list[Issue] = []
    sources: dict[str, Status] = {}
    # 1. file
    version = ""
    task = ""
    try:
        mv = resolve_model(name, tracking_uri=tracking_uri)
    except ModelCheckError as exc:
        issues.append(Issue("not_registered", "error", f"{exc}.", "file"))
        sources["file"] = "error"
        return ModelStatus(name, "", "error", sources, tuple(issues), thresholds=th)
    version, task = mv.version, mv.spec.task
    report = check_model_file(mv.path, mv.spec, target=f"{mv.name}/{mv.version}")
    sources["file"] = report.status
    issues.extend(report.issues)
    # 2. latest evaluation
    history = metric_history(mv.name, tracking_uri=tracking_uri)
    headline = None
    metrics: dict[str, dict[str, float]] = {}
    last_run = None
    if len(history):
        last_run = str(history["run_id"].iloc[-1])
        latest = history[history["run_id"] == last_run]
        metrics = {
            r.metric: {"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high}
            for r in latest.itertuples()
        }
        head_name = {
            "classification": "auroc",
            "detection": "froc_score",
            "segmentation": "dice",
        }.get(task, "")
        if head_name in metrics:
            hm = metrics[head_name]
            judged = hm["ci_low"] if math.isfinite(hm["ci_low"]) else hm["value"]
            headline = {"name": head_name, **hm}
            level = status_from_level(
                judged, th.metric_excellent, th.metric_good, th.metric_warning
            )
            sources["metrics"] = level
            if level in ("warning", "error"):
                issues.append(
                    Issue(
                        "low_metric",
                        level,
                        f"The latest evaluation's {head_name} could be as low as {judged:.3f} "
                        f"(lower 95% bound), below the {th.metric_good:.2f} expected of a good "
                        "model.",
                        "metrics",
                    )
                )
        acc_name = "accuracy" if "accuracy" in metrics else head_name
        if acc_name in metrics and metrics[acc_name]["value"] < th.low_accuracy:
            issues.append(
                Issue(
                    "low_accuracy",
                    "warning",
                    f"The latest {acc_name} is {metrics[acc_name]['value']:.3f}, below "
                    f"{th.low_accuracy:.2f}.",
                    "metrics",
                )
            )
    else:
        sources["metrics"] = "warning"
        issues.append(
            Issue(
                "not_evaluated",
                "warning",
                "The model has never been evaluated on a test set, so its performance is unknown.",
                "metrics",
            )
        )
    # 3. analyses
    summary: AnalysisSummary | None = None
    fb: FeedbackSummary | None = None
    try:
        summary = analysis_summary(mv.name, th.window_days, now=now, db_url=db_url)
        fb = feedback_summary(mv.name, db_url=db_url)
    except NoctisError as exc:
        issues.append(
            Issue("store_unavailable", "warning", f"Analyses could not be read: {exc}", "analyses")
        )
    if summary is not None and summary.n >= th.min_analyses:
        level = status_from_level(
            summary.success_rate, th.success_excellent, th.success_good, th.success_warning
        )
        sources["analyses"] = level
        if level in ("warning", "error"):
            issues.append(
                Issue(
                    "low_success_rate",
                    level,
                    f"Only {summary.n_success} of {summary.n} analyses in the last "
                    f"{th.window_days:g} days succeeded ({summary.success_rate:.0%}).",
                    "analyses",
                )
            )
        if summary.median_time_s > th.slow_processing_s:
            issues.append(
                Issue(
                    "slow_processing",
                    "warning",
                    f"Analyses take {summary.median_time_s:.1f} s per study (median), more than "
                    f"the {th.slow_processing_s:g} s allowed.",
                    "analyses",
                )
            )
    # 4. degradation
    drift = degradation(history, task, th)
    alarms = [d for d in drift if d.alarm]
    if drift:
        sources["history"] = "warning" if alarms else "excellent"
    for d in alarms:
        issues.append(Issue("degradation", "warning", d.explanation(), "history"))
    status = worst_status(*sources.values(), *(i.severity for i in issues))
    return ModelStatus(
        mv.name,
        version,
        status,
        sources,
        tuple(issues),
        headline,
        metrics,
        summary,
        fb,
        drift,
        task,
        last_run,
        th,
    )
