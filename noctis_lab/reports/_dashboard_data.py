"""Display-ready data for the dashboards and reports, read from the real stores.

Everything here reads the calibration history (:class:`noctis_lab.hu.history.CalibrationHistory`)
or the AI store (:mod:`noctis_lab.ai`) and turns it into frames with human column
names, plus the friendly messages of the empty states. No analysis happens here:
statuses, drift, metrics and recommendations come from the owning subsystems.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noctis_lab import _paths
from noctis_lab._errors import ReportError
from noctis_lab.quality import PALETTE, Status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from noctis_lab.hu._drift import DriftResult
    from noctis_lab.hu._result import CalibrationResult
    from noctis_lab.hu.history import CalibrationHistory, HistoryRecord

__all__ = [
    "EMPTY_AI",
    "EMPTY_HU",
    "ai_analyses_frame",
    "ai_feedback_frame",
    "ai_issues",
    "ai_metrics_frame",
    "ai_model_names",
    "ai_overview_frame",
    "ai_recent_analyses",
    "ai_trend_figure",
    "drift_summary",
    "hu_checks_frame",
    "hu_drift_frame",
    "hu_overview_frame",
    "hu_recommendations",
    "hu_slice_figure",
    "not_checked_note",
    "not_checked_rois",
    "open_history",
    "period_text",
    "profile_facts",
    "report_verdict",
    "resolve_scanner",
    "resolve_source",
    "scanner_label",
    "status_counts",
]

EMPTY_HU = (
    "No calibrations are recorded yet. Analyse a phantom series and record it "
    "(`noctis-lab hu analyze SERIES --record`), or write the demo data (`noctis-lab demo`)."
)
EMPTY_AI = (
    "No AI models are registered yet. Evaluate a model (`noctis-lab ai evaluate ...`), "
    "or write the demo data (`noctis-lab demo`)."
)


# --------------------------------------------------------------------------- HU
def open_history(url: str | None = None) -> CalibrationHistory:
    """Open the calibration history without creating an empty SQLite file.

    Raises
    ------
    ReportError
        When the default SQLite file does not exist (the empty state).
    """
    from noctis_lab.hu.history import CalibrationHistory

    resolved = url or _paths.db_url()
    if resolved.startswith("sqlite:///"):
        path = Path(resolved.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ReportError(f"{EMPTY_HU} (no history database at {path})")
    return CalibrationHistory(resolved)


def scanner_label(row: Any) -> str:
    """``station — manufacturer model (serial)`` of a :meth:`CalibrationHistory.scanners` row."""
    station = str(row.get("station") or "").strip()
    what = " ".join(str(row.get(k) or "").strip() for k in ("manufacturer", "model")).strip()
    serial = str(row.get("serial") or "").strip()
    text = f"{what} ({serial})" if serial else what or str(row.get("scanner"))
    return f"{station} — {text}" if station else text


def _day(value: Any) -> str:
    if value is None:
        return "—"
    try:
        return str(value.strftime("%Y-%m-%d"))
    except (AttributeError, ValueError):
        return str(value)


def hu_overview_frame(history: CalibrationHistory, *, now: Any = None) -> pd.DataFrame:
    """One row per scanner: status, last calibration, overdue marker, drift alarm.

    Returns an empty frame (same columns) when nothing is recorded.
    """
    import pandas as pd

    df = history.scanners(now=now, drift=False)
    rows = []
    for _, r in df.iterrows():
        drifts = history.drift(str(r["scanner"]))
        rows.append(
            {
                "Scanner": scanner_label(r),
                "Key": r["scanner"],
                "Phantoms": r["phantoms"],
                "Status": r["latest_status"],
                "Last calibration": _day(r["last_calibration"]),
                "Days since": round(float(r["days_since"])),
                "Overdue": "OVERDUE" if bool(r["overdue"]) else "",
                "Drift alarm": drift_summary(drifts),
                "Records": int(r["n_records"]),
                "Review": r["decision"] or "not reviewed",
            }
        )
    cols = [
        "Scanner",
        "Key",
        "Phantoms",
        "Status",
        "Last calibration",
        "Days since",
        "Overdue",
        "Drift alarm",
        "Records",
        "Review",
    ]
    return pd.DataFrame(rows, columns=cols)


_TEST_NAMES = {"cusum": "CUSUM", "ewma": "EWMA", "trend": "trend", "step": "step"}


def drift_summary(drifts: Sequence[DriftResult]) -> str:
    """One line for a scanner's drift: ``none``, or the alarming materials and the tests.

    A sudden change reads as a step, a slow one as drifting:
    ``⚠ step change (step): Water +14.1 HU; drifting (CUSUM, trend): Air +6.4 HU``;
    the full sentences are in :func:`hu_drift_frame`.
    """
    alarms = [d for d in drifts if d.alarm]
    if not alarms:
        return "none"
    parts = []
    for shape, word in (("step", "step change"), ("drift", "drifting")):
        group = [d for d in alarms if d.shape == shape]
        if not group:
            continue
        tests = sorted({t for d in group for t in d.alarm_by}, key=lambda t: (t == "trend", t))
        items = [
            f"{d.material} {d.drift_hu:+.1f}" if d.drift_hu is not None else d.material
            for d in group[:4]
        ]
        more = f" and {len(group) - 4} more" if len(group) > 4 else ""
        names = ", ".join(_TEST_NAMES.get(t, t) for t in tests)
        parts.append(f"{word} ({names}): {', '.join(items)} HU{more}")
    return "⚠ " + "; ".join(parts)


def hu_drift_frame(drifts: Sequence[DriftResult]) -> pd.DataFrame:
    """The alarming materials of one scanner: change, rate with its CI, tests, since when."""
    import pandas as pd

    from noctis_lab.hu._drift import _tolerance_text

    rows = []
    for d in drifts:
        if not d.alarm:
            continue
        rate = "—" if d.rate_hu_per_30d is None else f"{d.rate_hu_per_30d:+.1f}"
        if d.trend is not None:
            _, lo, hi = d.trend.per_30d()
            rate += f" (trend CI {lo:+.1f} to {hi:+.1f})"
        rows.append(
            {
                "Material": f"{d.material} ({d.module})",
                "Change (HU)": "—" if d.drift_hu is None else f"{d.drift_hu:+.1f}",
                "Rate (HU/month)": rate,
                "Kind": "step" if d.shape == "step" else "drift",
                "Tests": " + ".join(_TEST_NAMES.get(t, t) for t in d.alarm_by),
                "Since": "—" if d.first_alarm_time is None else f"{d.first_alarm_time:%Y-%m-%d}",
                "Tolerance": _tolerance_text(d.low, d.high, None) or "—",
                "Leaves tolerance": (
                    "already outside"
                    if "already outside" in d.message
                    else "—"
                    if d.projected_exit is None
                    else f"{d.projected_exit:%Y-%m-%d}"
                ),
            }
        )
    cols = [
        "Material",
        "Kind",
        "Change (HU)",
        "Rate (HU/month)",
        "Tests",
        "Since",
        "Tolerance",
        "Leaves tolerance",
    ]
    return pd.DataFrame(rows, columns=cols)


def profile_facts(name: str) -> dict[str, Any]:
    """What a tolerance profile is, what it judges and its sources (for covers and captions).

    Returns ``{"name", "version", "title", "judges": [...], "sources": [...]}``; a
    profile that cannot be loaded gives its name and an empty list of criteria.
    """
    from noctis_lab.hu._profiles import load_profile

    try:
        prof = load_profile(name)
    except Exception as exc:  # an unknown or edited profile must not break a report
        return {
            "name": name,
            "version": "?",
            "title": f"(not loadable: {exc})",
            "judges": [],
            "sources": [],
        }
    return {
        "name": prof.name,
        "version": prof.version,
        "title": prof.title,
        "judges": [c.description or c.id for c in prof.criteria],
        "sources": [f"{src.id}: {src.citation}" for src in prof.sources],
    }


def not_checked_rois(record: HistoryRecord | CalibrationResult) -> list[str]:
    """The ROIs of a record (or result) measured but judged by no criterion of its profile."""
    result = record.result if hasattr(record, "result") else record
    df = result.to_dataframe()
    if df.empty or "status" not in df:
        return []
    rows = df[df["status"] == "not_checked"]
    return [f"{r['module']}/{r['name']} ({r['material']})" for _, r in rows.iterrows()]


def not_checked_note(result: CalibrationResult) -> str:
    """Why some ROIs read "not checked", in words ("" when every ROI was judged).

    Names the profile, what it judges, and the profile that checks every insert.
    """
    skipped = not_checked_rois(result)
    if not skipped:
        return ""
    facts = profile_facts(result.profile)
    judges = "; ".join(facts["judges"]) or "(its criteria could not be read)"
    return (
        f"{len(skipped)} ROIs are measured but not checked: the tolerance profile "
        f"{result.profile} v{result.profile_version} ({facts['title']}) judges only {judges}. "
        "No criterion of it applies to the other materials. The profile 'manufacturer' "
        "checks every insert against the phantom manual's range."
    )


def resolve_scanner(history: CalibrationHistory, text: str) -> str:
    """The scanner key named by ``text``: its key, serial, station or label.

    Raises
    ------
    ReportError
        When no scanner, or several, match (the message lists the recorded ones).
    """
    df = history.scanners(drift=False)
    if df.empty:
        raise ReportError(f"no scanner {text!r}: {EMPTY_HU}")
    needle = text.strip().lower()
    hits = []
    for _, r in df.iterrows():
        names = {str(r[c]).strip().lower() for c in ("scanner", "serial", "station")}
        names.add(scanner_label(r).lower())
        if needle in names:
            hits.append(str(r["scanner"]))
    if len(hits) == 1:
        return hits[0]
    known = "; ".join(f"{scanner_label(r)} [{r['scanner']}]" for _, r in df.iterrows())
    if not hits:
        raise ReportError(f"no scanner {text!r} in the history {history.url}; known: {known}")
    raise ReportError(f"{text!r} names several scanners ({', '.join(hits)}); use the key")


def hu_checks_frame(record: HistoryRecord) -> pd.DataFrame:
    """Every check of a record with its tolerance and source, for display."""
    df = record.result.checks_dataframe()
    if df.empty:
        return df
    out = df.rename(
        columns={
            "id": "Check",
            "kind": "Kind",
            "target": "Target",
            "measured": "Measured",
            "expected": "Expected",
            "deviation": "Deviation",
            "unit": "Unit",
            "status": "Status",
            "tolerance": "Tolerance",
            "source": "Source",
        }
    )
    cols = [
        "Target",
        "Kind",
        "Measured",
        "Expected",
        "Deviation",
        "Unit",
        "Tolerance",
        "Status",
        "Source",
    ]
    return out[[c for c in cols if c in out.columns]]


def hu_recommendations(record: HistoryRecord) -> list[str]:
    """The analysis' recommendations for a record, in words (never empty)."""
    recs = [str(r) for r in record.result.recommendations]
    if recs:
        return recs
    if record.status == "pass":
        return ["Every check passed: no action needed."]
    return [f"Status {record.status}: review the failed checks below."]


def hu_slice_figure(record: HistoryRecord) -> Figure:
    """The record's annotated slice (ROIs coloured by status), read from its source images.

    Raises
    ------
    ReportError
        When the images of the calibration are no longer at their recorded source.
    """
    from noctis_lab.dicom import load_series

    source = record.source or record.result.source
    found = resolve_source(source)
    if found is None:
        raise ReportError(
            f"the images of calibration #{record.id} are not available at "
            f"{source or '(no source recorded)'} (looked in {_paths.home()})"
        )
    volume = load_series(found)
    return record.result.plot_slice(volume)


def resolve_source(source: str | None) -> Path | None:
    """Where a recorded image source is now: as recorded, else relative to the home.

    A source recorded relative (``data/demo/...``, written by a command run in the
    project folder) is found from any working directory (a Voila kernel runs in
    ``notebooks/dashboards``); ``None`` when it is nowhere.
    """
    if not source:
        return None
    path = Path(source)
    candidates = [path] if path.is_absolute() else [_paths.home() / path, Path.cwd() / path]
    return next((c for c in candidates if c.exists()), None)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)[:10]


def period_text(since: Any, until: Any) -> str:
    """``2026-01-01 to 2026-06-30``, ``since 2026-01-01``, ``all dates`` ..."""
    s, u = _iso(since), _iso(until)
    if s and u:
        return f"{s} to {u}"
    if s:
        return f"since {s}"
    if u:
        return f"until {u}"
    return "all dates"


def report_verdict(statuses: Sequence[str]) -> str:
    """The verdict over several calibrations: ``fail``, else ``review``, else the worst.

    ``review`` (needs review: the localisation is doubtful) is no verdict: it is
    never hidden under a pass or a warning, only under a failure.
    """
    from noctis_lab.hu._result import worst_status

    if "fail" in statuses:
        return "fail"
    if "review" in statuses:
        return "review"
    return str(worst_status(statuses))


def status_counts(statuses: Sequence[str]) -> dict[str, int]:
    """``{"pass": n, "warning": n, "fail": n, "review": n}`` (``review`` = needs review)."""
    return {k: sum(1 for s in statuses if s == k) for k in ("pass", "warning", "fail", "review")}


# --------------------------------------------------------------------------- AI
def ai_model_names() -> list[str]:
    """Registered model names, without creating an empty MLflow store.

    Raises
    ------
    ReportError
        When the store does not exist or holds no model (the empty state).
    """
    from noctis_lab.ai import list_models

    uri = _paths.mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ReportError(f"{EMPTY_AI} (no MLflow store at {path})")
    names = [m.name for m in list_models()]
    if not names:
        raise ReportError(f"{EMPTY_AI} (MLflow store {uri} has no registered model)")
    return names


def _ci_text(value: Any, low: Any, high: Any) -> str:
    import math

    if value is None or not math.isfinite(float(value)):
        return "—"
    if (
        low is None
        or high is None
        or not (math.isfinite(float(low)) and math.isfinite(float(high)))
    ):
        return f"{float(value):.3f}"
    return f"{float(value):.3f} [{float(low):.3f}, {float(high):.3f}]"


def _pct(x: Any) -> str:
    import math

    return "—" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.0f} %"


def ai_overview_frame(statuses: Sequence[Any]) -> pd.DataFrame:
    """One row per model (from :func:`noctis_lab.ai.model_status` results)."""
    import pandas as pd

    rows = []
    for s in statuses:
        head = s.headline or {}
        alarms = [d.metric for d in s.drift if d.alarm]
        a, f = s.analyses, s.feedback
        rows.append(
            {
                "Model": s.name,
                "Task": s.task or "—",
                "Version": s.version or "—",
                "Status": s.status,
                "Headline (95 % CI)": (
                    f"{head.get('name')}: "
                    + _ci_text(head.get("value"), head.get("ci_low"), head.get("ci_high"))
                    if head
                    else "—"
                ),
                "Degradation": ("⚠ " + ", ".join(alarms)) if alarms else "none",
                "Analyses": "—" if a is None else f"{a.n} ({_pct(a.success_rate)} ok)",
                "Feedback": "—" if f is None else f"{f.n} ({_pct(f.agreement_rate)} agree)",
                "Issues": len(s.issues),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "Model",
            "Task",
            "Version",
            "Status",
            "Headline (95 % CI)",
            "Degradation",
            "Analyses",
            "Feedback",
            "Issues",
        ],
    )


def ai_metrics_frame(status: Any) -> pd.DataFrame:
    """The latest evaluation's metrics with their 95 % bootstrap CIs."""
    import pandas as pd

    rows = [
        {
            "Metric": name,
            "Value": m.get("value"),
            "CI low": m.get("ci_low"),
            "CI high": m.get("ci_high"),
            "Value [95 % CI]": _ci_text(m.get("value"), m.get("ci_low"), m.get("ci_high")),
        }
        for name, m in status.metrics.items()
    ]
    return pd.DataFrame(rows, columns=["Metric", "Value [95 % CI]", "Value", "CI low", "CI high"])


def ai_issues(status: Any) -> list[tuple[str, str]]:
    """``(severity, message)`` of every issue, then the metrics that stay within chance.

    Degradation alarms are already issues of the status; the quiet metrics are added
    as ``info`` so a reader sees what was monitored.
    """
    out = [(str(i.severity), str(i.message)) for i in status.issues]
    out += [("info", d.explanation()) for d in status.drift if not d.alarm]
    return out


def ai_trend_figure(name: str, status: Any, *, since: Any = None, until: Any = None) -> Figure:
    """Each monitored metric over the evaluation runs, with CIs and degradation alarms.

    The runs and their values are :func:`noctis_lab.ai.metric_history`'s; the alarms
    are the CUSUM results in ``status.drift``.

    Raises
    ------
    ReportError
        When the model has no evaluation run.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from noctis_lab.ai import metric_history

    hist = metric_history(name)
    if since is not None:
        hist = hist[hist["start_time"] >= pd.Timestamp(str(since), tz="UTC")]
    if until is not None:
        hist = hist[hist["start_time"] < pd.Timestamp(str(until), tz="UTC") + pd.Timedelta(days=1)]
    if len(hist) == 0:
        raise ReportError(f"model {name!r} has no evaluation run to plot")
    drift = {d.metric: d for d in status.drift}
    metrics = [m for m in drift] or list(dict.fromkeys(hist["metric"]))[:4]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.6 * len(metrics), 3.0), squeeze=False, layout="constrained"
    )
    runs = list(dict.fromkeys(hist["run_id"]))
    for ax, metric in zip(axes[0], metrics, strict=True):
        h = hist[hist["metric"] == metric].set_index("run_id").reindex(runs)
        x = list(range(1, len(runs) + 1))
        ax.fill_between(x, h["ci_low"], h["ci_high"], alpha=0.25, color="#1e88e5", label="95 % CI")
        ax.plot(x, h["value"], "o-", color="#1e88e5", label=metric)
        base = h[h["baseline"].fillna(False).astype(bool)]
        if len(base):
            ax.axhline(float(base["value"].iloc[-1]), ls="--", color="grey", lw=1, label="baseline")
        d = drift.get(metric)
        title = metric
        if d is not None and d.alarm and d.alarm_index is not None:
            n_later = len(d.values)
            idx = len(runs) - n_later + d.alarm_index
            if 0 <= idx < len(runs):
                ax.plot(
                    [idx + 1],
                    [h["value"].iloc[idx]],
                    "X",
                    ms=12,
                    color=PALETTE[Status.FAIL].colour,
                    label="degradation alarm",
                )
            title += "  ⚠ degradation"
            ax.title.set_color(PALETTE[Status.FAIL].colour)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("evaluation run")
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(
                lab if lab in ("95 % CI", "baseline", "degradation alarm") else "value", h
            )
    fig.legend(
        list(handles.values()), list(handles), loc="outside right upper", fontsize=8, frameon=False
    )  # one legend beside the panels, never over the data
    fig.suptitle(f"{name}: metrics over evaluation runs", fontsize=11)
    return fig


def ai_analyses_frame(name: str, window_days: float = 7.0, *, now: Any = None) -> pd.DataFrame:
    """Recent analyses of a model: count, success rate, processing time, confidence."""
    import pandas as pd

    from noctis_lab.ai import analysis_summary

    s = analysis_summary(name, window_days, now=now)
    row = {
        "Window": f"last {window_days:g} days",
        "Analyses": s.n,
        "Succeeded": s.n_success,
        "Success rate": _pct(s.success_rate),
        "Median time (s)": s.median_time_s,
        "95th pct time (s)": s.p95_time_s,
        "Mean confidence": s.mean_confidence,
    }
    return pd.DataFrame([row])


def ai_recent_analyses(name: str, limit: int = 8) -> pd.DataFrame:
    """The latest analyses of a model (newest first), to pick one for feedback."""
    from noctis_lab.ai import analyses_frame

    df = analyses_frame(name)
    cols = ["id", "created_at", "model_version", "study_uid", "status", "processing_time_s"]
    have = [c for c in cols if c in df.columns]
    return df[have].sort_values("id", ascending=False).head(limit).reset_index(drop=True)


def ai_feedback_frame(name: str) -> pd.DataFrame:
    """Feedback on a model: count per verdict, agreement rate, mean rating."""
    import math

    import pandas as pd

    from noctis_lab.ai import feedback_summary

    f = feedback_summary(name)
    row: dict[str, Any] = {"Feedback": f.n}
    row.update({k.replace("_", " "): v for k, v in f.counts.items()})
    row["Agreement"] = _pct(f.agreement_rate)
    row["Mean rating"] = "—" if not math.isfinite(f.mean_rating) else f"{f.mean_rating:.1f} / 5"
    return pd.DataFrame([row])
