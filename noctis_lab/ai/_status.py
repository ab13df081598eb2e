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
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from noctis_lab.ai._analysis import AnalysisSummary, FeedbackSummary
from noctis_lab.ai._types import Issue, Status, worst_status
from noctis_lab.quality import Direction, DriftResult, DriftTest, cusum, window_z

__all__ = [
    "KEY_METRICS",
    "DriftResult",
    "ModelStatus",
    "StatusThresholds",
    "compare_runs",
    "cusum_drift",
    "metric_history",
    "model_status",
    "status_from_level",
    "window_drift",
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
    drift_window, drift_z : int, float
        Degradation test: the mean of the last ``drift_window`` evaluations (of one model
        version on one test set) against the baseline run, in units of the standard error of
        that difference, which includes the baseline's own uncertainty; an alarm when it
        exceeds ``drift_z``. The defaults keep false alarms at or below 5 % over 20 stable
        runs (simulation in ``tests/ai/test_status.py``).
    cusum_k, cusum_h : float
        Parameters of :func:`cusum_drift` (kept for callers of that function; the status
        uses the windowed test above).
    min_sigma : float
        Floor of every standard error (stops alarms on tiny bootstrap CIs).
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
    drift_window: int = Field(5, ge=1)
    drift_z: float = Field(2.5, gt=0)
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

    @classmethod
    def from_file(cls, path: str | Path) -> StatusThresholds:
        """Thresholds from a JSON or TOML file (any subset of the fields; the rest default).

        Raises
        ------
        ModelCheckError
            The file is missing, unreadable, or holds an unknown field or a bad value.
        """
        import tomllib

        from noctis_lab._errors import ModelCheckError

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
            return cls.model_validate(data)
        except OSError as exc:
            raise ModelCheckError(f"thresholds file {p}: cannot read it: {exc}") from None
        except ValueError as exc:  # JSON, TOML and pydantic errors
            why = " ".join(str(exc).split())[:300]
            raise ModelCheckError(f"thresholds file {p}: {why}") from None


def status_from_level(value: float, excellent: float, good: float, warning: float) -> Status:
    """Map a value onto the four levels (nan -> ``error``: an unknown value is not fine)."""
    if not math.isfinite(value):
        return Status.ERROR
    if value >= excellent:
        return Status.EXCELLENT
    if value >= good:
        return Status.GOOD
    if value >= warning:
        return Status.WARNING
    return Status.ERROR


def _explanation(
    metric: str,
    baseline: float,
    values: Sequence[float],
    alarm_index: int | None,
    *,
    higher_is_better: bool,
    first_run: int,
) -> str:
    """Plain-words account of a degradation test of one metric."""
    if not values:
        return f"{metric}: no runs after the baseline yet."
    latest = values[-1]
    direction = "fallen" if higher_is_better else "risen"
    last_run = first_run + len(values) - 1
    if alarm_index is not None:
        return (
            f"{metric} has {direction} from its baseline {baseline:.3f} "
            f"(run {first_run - 1}) to {latest:.3f}: a sustained change beyond "
            f"chance, the baseline's own uncertainty included (limit crossed at run "
            f"{first_run + alarm_index} of {last_run})."
        )
    return (
        f"{metric} stays within chance of its baseline {baseline:.3f} "
        f"(run {first_run - 1}; latest {latest:.3f}, run {last_run})."
    )


def _metric_drift(
    metric: str,
    values: Sequence[float],
    statistic: Sequence[float],
    *,
    method: DriftTest,
    baseline: float,
    sigma: float,
    limit: float,
    higher_is_better: bool,
    first_run: int,
) -> DriftResult:
    """The shared :class:`~noctis_lab.quality.DriftResult` of a metric's degradation test.

    ``values`` are the monitored runs (after the baseline, oldest first), ``statistic``
    the test statistic after each; the alarm is the first run where it exceeds
    ``limit``. ``first_run`` is the 1-based number of ``values[0]`` in the history of
    this model version on this test set (the baseline is run ``first_run - 1``), so
    text and plots count runs the same way.
    """
    vals = tuple(float(v) for v in values)
    alarm = next((i for i, z in enumerate(statistic) if z > limit), None)
    worse = Direction.DOWN if higher_is_better else Direction.UP
    return DriftResult(
        quantity=metric,
        method=method,
        values=vals,
        statistic=tuple(float(z) for z in statistic),
        threshold=limit,
        alarm_index=alarm,
        baseline_mean=baseline,
        baseline_sd=sigma,
        message=_explanation(
            metric, baseline, vals, alarm, higher_is_better=higher_is_better, first_run=first_run
        ),
        direction=None if alarm is None else worse,
        higher_is_better=higher_is_better,
        first_run=first_run,
    )


def window_drift(
    metric: str,
    values: Sequence[float],
    sigmas: Sequence[float],
    *,
    baseline: float,
    baseline_sigma: float,
    window: int = 5,
    z_limit: float = 2.5,
    higher_is_better: bool = True,
    first_run: int = 2,
) -> DriftResult:
    """Windowed test for a worsening of ``metric`` against an uncertain baseline.

    After each run ``t``, with the last ``m = min(t, window)`` finite values ``x`` and their
    standard errors ``s``: ``z_t = (baseline - mean(x)) / sqrt(baseline_sigma² +
    mean(s²) / m)`` (sign flipped when lower is better); alarm when ``z_t > z_limit``.
    The baseline's standard error enters every comparison, so a baseline that happened to
    come out high does not turn every later run into "degradation". The statistic is
    :func:`noctis_lab.quality.window_z`.
    """
    if not baseline_sigma > 0:
        raise ValueError(f"baseline_sigma must be > 0, not {baseline_sigma}")
    stats = window_z(
        values,
        sigmas,
        baseline=baseline,
        baseline_sigma=baseline_sigma,
        window=window,
        sign=1.0 if higher_is_better else -1.0,
    )
    return _metric_drift(
        metric,
        values,
        stats,
        method=DriftTest.WINDOW,
        baseline=baseline,
        sigma=baseline_sigma,
        limit=z_limit,
        higher_is_better=higher_is_better,
        first_run=first_run,
    )


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
    when lower is better); alarm when ``S_t > h``. Non-finite values are skipped. The
    statistic is the worsening side of :func:`noctis_lab.quality.cusum`.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, not {sigma}")
    sign = 1.0 if higher_is_better else -1.0
    z = [sign * (baseline - x) / sigma for x in values]
    worsening, _ = cusum(z, k)
    return _metric_drift(
        metric,
        values,
        [float(v) for v in worsening],
        method=DriftTest.CUSUM,
        baseline=baseline,
        sigma=sigma,
        limit=h,
        higher_is_better=higher_is_better,
        first_run=2,
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


def metric_history(
    name: str,
    *,
    version: str | None = None,
    test_set: str | None = None,
    tracking_uri: str | None = None,
) -> Any:
    """Evaluation runs of a model as a tidy DataFrame, oldest first.

    Columns: run_id, start_time (UTC), model_version, test_set, period, baseline (bool),
    metric, value, ci_low, ci_high. Empty (with these columns) when there are none.
    ``version`` and ``test_set`` keep only that model version / test set: a history for
    status and degradation is always one version on one test set.
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
        if version is not None and tags.get("noctis.model_version") != str(version):
            continue
        if test_set is not None and tags.get("noctis.test_set") != test_set:
            continue
        start = datetime.fromtimestamp(r.info.start_time / 1000, tz=_utc())
        undefined = [u for u in tags.get("noctis.undefined_metrics", "").split(",") if u]
        keys = [
            k for k in m if not k.endswith(("_ci_low", "_ci_high")) and not k.startswith("time_")
        ]
        for key in [*keys, *(u for u in undefined if u not in m)]:
            rows.append(
                {
                    "run_id": r.info.run_id,
                    "start_time": start,
                    "model_version": tags.get("noctis.model_version", ""),
                    "test_set": tags.get("noctis.test_set", ""),
                    "period": tags.get("noctis.period", ""),
                    "baseline": tags.get("noctis.baseline", "") == "true",
                    "metric": key,
                    "value": m.get(key, math.nan),
                    "ci_low": m.get(f"{key}_ci_low", math.nan),
                    "ci_high": m.get(f"{key}_ci_high", math.nan),
                }
            )
    return pd.DataFrame(rows, columns=_HISTORY_COLUMNS)


def _utc() -> Any:
    from datetime import UTC

    return UTC


def degradation(history: Any, task: str, thresholds: StatusThresholds) -> tuple[DriftResult, ...]:
    """Degradation test of each key metric of ``task`` over one version on one test set.

    ``history`` is a :func:`metric_history` frame of **one** model version on **one** test
    set (a frame mixing several raises ``ValueError``: comparing versions or test sets is a
    comparison, see :func:`compare_runs`, not degradation). The baseline is the last run
    tagged ``noctis.baseline=true``, else the first run; later runs are monitored with
    :func:`window_drift`. Standard errors are bootstrap CI widths / 3.92.
    """
    if history is None or len(history) == 0:
        return ()
    for col in ("model_version", "test_set"):
        if history[col].nunique() > 1:
            raise ValueError(
                f"degradation needs the runs of one model version on one test set; this "
                f"history mixes {col} values {sorted(map(str, history[col].unique()))}"
            )
    runs = history.drop_duplicates("run_id")[["run_id", "baseline"]].reset_index(drop=True)
    base_rows = runs.index[runs["baseline"]].tolist()
    b = base_rows[-1] if base_rows else 0
    base_id = runs.loc[b, "run_id"]
    later = runs.loc[b + 1 :, "run_id"].tolist()
    out = []
    for metric, higher in KEY_METRICS.get(task, {}).items():
        h = history[history["metric"] == metric].set_index("run_id")
        if base_id not in h.index or not math.isfinite(float(h.loc[base_id, "value"])):
            continue
        base = h.loc[base_id]
        vals = [float(h.loc[r, "value"]) if r in h.index else math.nan for r in later]
        sigmas = [_sigma(h.loc[r], thresholds) if r in h.index else math.nan for r in later]
        out.append(
            window_drift(
                metric,
                vals,
                sigmas,
                baseline=float(base["value"]),
                baseline_sigma=_sigma(base, thresholds),
                window=thresholds.drift_window,
                z_limit=thresholds.drift_z,
                higher_is_better=higher,
                first_run=b + 2,
            )
        )
    return tuple(out)


def _sigma(row: Any, thresholds: StatusThresholds) -> float:
    width = float(row["ci_high"] - row["ci_low"])
    return max(width / 3.92 if math.isfinite(width) else 0.0, thresholds.min_sigma)


def compare_runs(
    name: str,
    a: tuple[str, str],
    b: tuple[str, str],
    *,
    tracking_uri: str | None = None,
) -> Any:
    """Explicit comparison of the latest evaluations of two (version, test set) pairs.

    Parameters
    ----------
    name : str
        Registered model name.
    a, b : (version, test set name)
        E.g. ``("1", "cls-test")`` vs ``("2", "cls-test")`` (two versions on one test set)
        or ``("1", "easy")`` vs ``("1", "hard")`` (one version on two test sets).

    Returns
    -------
    pandas.DataFrame
        One row per metric both runs have: value and CI of each, ``difference`` (b - a)
        and whether the CIs overlap. Empty when either pair was never evaluated.
    """
    import pandas as pd

    frames = []
    for label, (version, test_set) in (("a", a), ("b", b)):
        h = metric_history(name, version=version, test_set=test_set, tracking_uri=tracking_uri)
        if len(h) == 0:
            return pd.DataFrame(columns=["metric", "a", "b", "difference", "cis_overlap"])
        last = h[h["run_id"] == h["run_id"].iloc[-1]].set_index("metric")
        frames.append(last[["value", "ci_low", "ci_high"]].add_prefix(f"{label}_"))
    both = frames[0].join(frames[1], how="inner")
    both["difference"] = both["b_value"] - both["a_value"]
    both["cis_overlap"] = (both["a_ci_low"] <= both["b_ci_high"]) & (
        both["b_ci_low"] <= both["a_ci_high"]
    )
    return both.reset_index()


@dataclass(frozen=True)
class ModelStatus:
    """Status of one registered model, with every issue in plain words.

    Attributes
    ----------
    name, version : str
        Registered name and the version checked (``""`` when unknown).
    status : Status
        Worst of the sources in ``sources`` (``excellent``, ``good``, ``warning`` or
        ``error``).
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
    test_set : str
        The test set whose evaluations of this version the metrics and drift come from.
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
    test_set: str = ""

    def __post_init__(self) -> None:
        """Keep the statuses enum members, whatever text they were given as."""
        object.__setattr__(self, "status", Status.parse(self.status))
        object.__setattr__(self, "sources", {k: Status.parse(v) for k, v in self.sources.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-compatible: statuses as their values, NaN as None)."""
        d = {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "status": self.status.value,
            "sources": {k: v.value for k, v in self.sources.items()},
            "issues": [i.to_dict() for i in self.issues],
            "headline": self.headline,
            "metrics": self.metrics,
            "analyses": None if self.analyses is None else self.analyses.to_dict(),
            "feedback": None if self.feedback is None else self.feedback.to_dict(),
            "drift": [d.to_dict() for d in self.drift],
            "last_run_id": self.last_run_id,
            "test_set": self.test_set,
            "thresholds": self.thresholds.to_dict(),
        }
        cleaned: dict[str, Any] = _clean(d)
        return cleaned

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
    test_set: str | None = None,
    thresholds: StatusThresholds | None = None,
    tracking_uri: str | None = None,
    db_url: str | None = None,
    now: datetime | None = None,
) -> ModelStatus:
    """Status of one registered model version from file checks, evaluation, analyses, history.

    The one status behind ``ai check``, ``ai status``, dashboards and reports.
    ``name`` is ``name`` (@champion, else latest), ``name@alias`` or ``name/3``. Metrics and
    degradation come only from evaluations of **that version** on **one test set**
    (``test_set``, else the one of the version's latest evaluation); other versions' runs are
    never used. Never raises for a missing model or an empty store: the result says what is
    wrong.
    """
    from noctis_lab._errors import ModelCheckError
    from noctis_lab.ai._checks import check_model_file
    from noctis_lab.ai._registry import resolve_model

    th = thresholds or StatusThresholds()
    issues: list[Issue] = []
    sources: dict[str, Status] = {}
    # 1. file
    try:
        mv = resolve_model(name, tracking_uri=tracking_uri)
    except ModelCheckError as exc:
        issues.append(Issue("not_registered", Status.ERROR, f"{exc}.", "file"))
        sources["file"] = Status.ERROR
        return ModelStatus(name, "", Status.ERROR, sources, tuple(issues), thresholds=th)
    version, task = mv.version, mv.spec.task
    report = check_model_file(mv.path, mv.spec, target=f"{mv.name}/{mv.version}")
    sources["file"] = report.status
    issues.extend(report.issues)
    # 2. latest evaluation of THIS version (on the test set asked for, else its latest one)
    history, ts_name, others = _version_history(mv.name, version, test_set, tracking_uri)
    headline, metrics, last_run = _judge_latest(history, task, th, issues, sources, ts_name)
    if last_run is None:
        _not_evaluated(version, test_set, others, issues, sources)
    # 3. analyses
    summary, fb = _judge_analyses(mv.name, th, issues, sources, now=now, db_url=db_url)
    # 4. degradation: this version on this test set only
    drift = _judge_degradation(history, task, th, issues, sources)
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
        ts_name,
    )


def _not_evaluated(
    version: str,
    test_set: str | None,
    others: str,
    issues: list[Issue],
    sources: dict[str, Status],
) -> None:
    """A version never evaluated (on the test set asked for) is a warning: unknown quality."""
    sources["metrics"] = Status.WARNING
    where = f" on test set {test_set!r}" if test_set else ""
    also = f" (other versions' evaluations are not borrowed: {others})" if others else ""
    issues.append(
        Issue(
            "not_evaluated",
            Status.WARNING,
            f"Version {version} has never been evaluated{where}, so its performance is "
            f"unknown{also}.",
            "metrics",
        )
    )


def _judge_analyses(
    name: str,
    th: StatusThresholds,
    issues: list[Issue],
    sources: dict[str, Status],
    *,
    now: datetime | None,
    db_url: str | None,
) -> tuple[AnalysisSummary | None, FeedbackSummary | None]:
    """Grade the recent analyses: success rate and processing time; read the feedback."""
    from noctis_lab._errors import NoctisError
    from noctis_lab.ai._analysis import analysis_summary, feedback_summary

    summary: AnalysisSummary | None = None
    fb: FeedbackSummary | None = None
    try:
        summary = analysis_summary(name, th.window_days, now=now, db_url=db_url)
        fb = feedback_summary(name, db_url=db_url)
    except NoctisError as exc:
        issues.append(
            Issue(
                "store_unavailable",
                Status.WARNING,
                f"Analyses could not be read: {exc}",
                "analyses",
            )
        )
    if summary is None or summary.n < th.min_analyses:
        return summary, fb
    level = status_from_level(
        summary.success_rate, th.success_excellent, th.success_good, th.success_warning
    )
    sources["analyses"] = level
    if level in (Status.WARNING, Status.ERROR):
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
                Status.WARNING,
                f"Analyses take {summary.median_time_s:.1f} s per study (median), more than "
                f"the {th.slow_processing_s:g} s allowed.",
                "analyses",
            )
        )
    return summary, fb


def _judge_degradation(
    history: Any,
    task: str,
    th: StatusThresholds,
    issues: list[Issue],
    sources: dict[str, Status],
) -> tuple[DriftResult, ...]:
    """The degradation tests of the key metrics; each alarm is a warning issue."""
    drift = degradation(history, task, th)
    alarms = [d for d in drift if d.alarm]
    if drift:
        sources["history"] = Status.WARNING if alarms else Status.EXCELLENT
    for d in alarms:
        issues.append(Issue("degradation", Status.WARNING, d.explanation(), "history"))
    return drift


#: The headline metric of each task (its lower CI bound drives the metrics status).
HEADLINE_METRIC: dict[str, str] = {
    "classification": "auroc",
    "detection": "froc_score",
    "segmentation": "dice",
}


def _version_history(
    name: str, version: str, test_set: str | None, tracking_uri: str | None
) -> tuple[Any, str, str]:
    """Runs of one version on one test set, that test set's name, and a note on other versions.

    The runs of other versions are never used; the note only says they exist.
    """
    all_runs = metric_history(name, tracking_uri=tracking_uri)
    if len(all_runs) == 0:
        return all_runs, test_set or "", ""
    mine = all_runs[all_runs["model_version"] == str(version)]
    other_versions = sorted(set(all_runs["model_version"]) - {str(version)})
    note = f"version(s) {', '.join(other_versions)} have runs" if other_versions else ""
    if test_set is None and len(mine):
        test_set = str(mine["test_set"].iloc[-1])
    if test_set is not None:
        mine = mine[mine["test_set"] == test_set]
    return mine.reset_index(drop=True), test_set or "", note


def _judge_latest(
    history: Any,
    task: str,
    th: StatusThresholds,
    issues: list[Issue],
    sources: dict[str, Status],
    test_set: str,
) -> tuple[dict[str, Any] | None, dict[str, dict[str, float]], str | None]:
    """Grade the latest run's headline; an undefined headline is never excellent/good."""
    if len(history) == 0:
        return None, {}, None
    last_run = str(history["run_id"].iloc[-1])
    latest = history[history["run_id"] == last_run]
    metrics = {
        r.metric: {"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high}
        for r in latest.itertuples()
    }
    head_name = HEADLINE_METRIC.get(task, "")
    hm = metrics.get(head_name)
    if hm is None or not math.isfinite(hm["value"]):
        sources["metrics"] = Status.WARNING
        issues.append(
            Issue(
                "undefined_metric",
                Status.WARNING,
                f"The headline metric {head_name} is undefined on test set {test_set!r} "
                "(for example a test set with only one class), so the model cannot be "
                "graded on it.",
                "metrics",
            )
        )
        return (
            {"name": head_name, "value": None, "ci_low": None, "ci_high": None, "undefined": True},
            metrics,
            last_run,
        )
    judged = hm["ci_low"] if math.isfinite(hm["ci_low"]) else hm["value"]
    headline = {"name": head_name, **hm}
    level = status_from_level(judged, th.metric_excellent, th.metric_good, th.metric_warning)
    sources["metrics"] = level
    if level in (Status.WARNING, Status.ERROR):
        issues.append(
            Issue(
                "low_metric",
                level,
                f"The latest evaluation's {head_name} could be as low as {judged:.3f} "
                f"(lower 95% bound), below the {th.metric_good:.2f} expected of a good model.",
                "metrics",
            )
        )
    acc_name = "accuracy" if "accuracy" in metrics else head_name
    if acc_name in metrics and metrics[acc_name]["value"] < th.low_accuracy:
        issues.append(
            Issue(
                "low_accuracy",
                Status.WARNING,
                f"The latest {acc_name} is {metrics[acc_name]['value']:.3f}, below "
                f"{th.low_accuracy:.2f}.",
                "metrics",
            )
        )
    return headline, metrics, last_run
