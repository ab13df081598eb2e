"""Trend plots of the calibration history (matplotlib, no pyplot state: Agg-safe)."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

from noctis_lab._errors import HistoryError
from noctis_lab.quality import PALETTE, STATUS_COLOURS, DriftShape, DriftTest, Status, worst_status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from noctis_lab.quality import DriftResult

__all__ = ["plot_trend_frame"]

#: Drift alarms are drawn in the colour of a failure.
_ALARM = PALETTE[Status.FAIL].colour


def plot_trend_frame(
    trend: pd.DataFrame,
    *,
    drift: bool = True,
    ncols: int = 3,
    panel_size: tuple[float, float] = (4.6, 3.0),
    title: str | None = None,
    **drift_params: Any,
) -> Figure:
    """One panel per (phantom, module, material): measured mean HU over time.

    Each panel shows the measured means (markers coloured by status, error bars
    of one standard error), the nominal HU (dashed), the tolerance band of the checks the
    records were judged by (shaded, as it was at each record), and, when
    ``drift`` is on, the drift alarm (a red triangle at the first alarm and a
    red line from there on), the trend test's line when it alarms (dashed red), and
    the alarming materials as the figure's footnote. One legend for the figure sits
    above the panels (never over the data); a single record gets a month-wide axis,
    not years. ``title`` defaults to the scanner keys.

    Raises
    ------
    HistoryError
        When the frame holds no measurement to plot.
    """
    if trend is None or trend.empty or trend["mean"].notna().sum() == 0:
        raise HistoryError("nothing to plot: the trend holds no measurement")
    df = trend[trend["mean"].notna()]
    groups = list(df.groupby(["scanner", "phantom", "module", "material"], sort=True))
    drifts = _drifts_by_key(df, drift_params) if drift else {}
    scanners = sorted(set(df["scanner"]))
    heading = title if title is not None else f"HU trend: {', '.join(scanners)}"
    fig, axes, ncols = _new_figure(len(groups), ncols, panel_size, heading)
    handles: dict[str, Any] = {}
    for ax, (key, grp) in zip(axes.flat, groups, strict=False):
        scanner, phantom, module, material = (str(k) for k in key)
        per = _per_record(grp)
        t = per["time"].dt.tz_convert(None).to_numpy()
        _plot_points(ax, per, t)
        _plot_tolerance(ax, per, t)
        d = drifts.get((scanner, phantom, module, material))
        if d is not None and d.alarm and d.first_alarm_time is not None:
            _plot_alarm(ax, d)
            flag = "STEP" if d.shape == DriftShape.STEP else "DRIFT"
            ax.set_title(_panel_title(material, module, flag), color=_ALARM, fontsize=9)
        else:
            ax.set_title(_panel_title(material, module), fontsize=9)
        ax.set_ylabel("HU")
        _date_axis(ax, t)
        ax.grid(alpha=0.3)
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles.keys()),
            loc="outside right upper",
            fontsize=8,
            frameon=False,
        )
    _alarm_footnote(fig, [d for d in drifts.values() if d.alarm], ncols)
    return fig


def _drifts_by_key(
    df: pd.DataFrame, drift_params: dict[str, Any]
) -> dict[tuple[str, str, str, str], DriftResult]:
    """The drift result of each (scanner, phantom, module, material) of the frame."""
    from noctis_lab.hu._drift import drift_from_trend

    return {
        (d.scanner, d.phantom, d.module, d.material): d
        for d in drift_from_trend(df, **drift_params)
    }


def _new_figure(
    n: int, ncols: int, panel_size: tuple[float, float], heading: str
) -> tuple[Figure, Any, int]:
    """A figure with ``n`` panels on a grid (spare axes hidden), its axes and its columns."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 1.0), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(textwrap.fill(heading, width=max(40, 30 * ncols)), fontsize=11)
    return fig, axes, ncols


def _per_record(grp: pd.DataFrame) -> pd.DataFrame:
    """One row per record: ROIs of the same material averaged, the worst ROI status."""
    return (
        grp.groupby("record_id", sort=False)
        .agg(
            time=("time", "first"),
            mean=("mean", "mean"),
            sem=("sem", "mean"),
            nominal=("nominal", "first"),
            low=("low", "first"),
            high=("high", "first"),
            status=("status", _worst),
        )
        .sort_values("time", kind="stable")
    )


def _plot_points(ax: Any, per: pd.DataFrame, t: Any) -> None:
    """The means joined by a line, markers in their status colour, and the nominal."""
    ax.plot(t, per["mean"], color="#455a64", lw=1, zorder=2)
    for status, sub in per.groupby("status"):
        ax.errorbar(
            sub["time"].dt.tz_convert(None).to_numpy(),
            sub["mean"],
            yerr=sub["sem"].fillna(0.0),
            fmt="o",
            ms=4,
            elinewidth=0.6,
            color=STATUS_COLOURS[status],
            label=Status.parse(status).label,
            zorder=3,
        )
    nominal = per["nominal"].dropna()
    if not nominal.empty:
        ax.axhline(float(nominal.iloc[-1]), ls="--", lw=1, color="#1565c0", label="nominal")


def _plot_tolerance(ax: Any, per: pd.DataFrame, t: Any) -> None:
    """The tolerance band as it was at each record, and y limits that show it."""
    import numpy as np

    low = per["low"].to_numpy(dtype=float)
    high = per["high"].to_numpy(dtype=float)
    if not (np.isfinite(low).any() or np.isfinite(high).any()):
        return
    lo = np.where(np.isfinite(low), low, np.nanmin(per["mean"]) - 1e3)
    hi = np.where(np.isfinite(high), high, np.nanmax(per["mean"]) + 1e3)
    both = np.isfinite(low) | np.isfinite(high)
    if len(t) == 1:  # fill_between needs two points: a band across the axis
        ax.axhspan(lo[0], hi[0], color="#a5d6a7", alpha=0.35, label="tolerance", zorder=1)
    ax.fill_between(
        t, lo, hi, where=both, step="post", color="#a5d6a7", alpha=0.35, label="tolerance", zorder=1
    )
    finite = np.concatenate([low[np.isfinite(low)], high[np.isfinite(high)]])
    span = np.concatenate([finite, per["mean"].to_numpy(dtype=float)])
    pad = 0.1 * max(float(np.ptp(span)), 1.0)
    ax.set_ylim(float(np.min(span)) - pad, float(np.max(span)) + pad)


def _plot_alarm(ax: Any, d: DriftResult) -> None:
    """The first alarm (a line and a triangle), the trend line or the step levels."""
    import numpy as np

    if d.first_alarm_time is None:
        return
    ta = np.datetime64(d.first_alarm_time.replace(tzinfo=None))
    ax.axvline(ta, color=_ALARM, lw=1.2, label="drift alarm")
    idx = d.alarm_index if d.alarm_index is not None else -1
    ax.plot([ta], [d.values[idx]], marker="v", ms=10, color=_ALARM, zorder=4, ls="none")
    _trend_line(ax, d)
    _step_levels(ax, d)


def _alarm_footnote(fig: Figure, alarms: list[DriftResult], ncols: int) -> None:
    """The alarming materials, the size of their change and the tests that alarm."""
    if not alarms:
        return
    words = {DriftTest.CUSUM: "CUSUM", DriftTest.EWMA: "EWMA"}
    text = "drift alarm: " + "; ".join(
        f"{d.material} {'step ' if d.shape == DriftShape.STEP else ''}{d.drift_hu:+.1f} HU "
        f"({' + '.join(words.get(b, b) for b in d.alarm_by)})"
        for d in alarms
    )
    fig.supxlabel(textwrap.fill(text, width=int(30 * ncols)), fontsize=8, color=_ALARM)


def _panel_title(material: str, module: str, flag: str = "") -> str:
    text = f"{material} ({module})" + (f" - {flag}" if flag else "")
    return textwrap.fill(text, width=34)


def _date_axis(ax: Any, t: Any) -> None:
    """Readable dates; a single record (or records on one day) gets a month-wide axis."""
    import matplotlib.dates as mdates
    import numpy as np

    if len(t) and (np.max(t) - np.min(t)) < np.timedelta64(2, "D"):
        mid = np.min(t)
        ax.set_xlim(mid - np.timedelta64(15, "D"), mid + np.timedelta64(15, "D"))
    locator = mdates.AutoDateLocator(minticks=2, maxticks=5)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(axis="x", labelsize=8)


def _step_levels(ax: Any, d: DriftResult) -> None:
    """The two levels of a step (before and after the change), when the records step."""
    import numpy as np

    step = d.step
    if step is None or d.shape != DriftShape.STEP:
        return
    cut = step.first_index + step.change_index
    for lo, hi, level in (
        (step.first_index, cut, step.before_mean),
        (cut, step.first_index + step.n, step.after_mean),
    ):
        times = [np.datetime64(x.replace(tzinfo=None)) for x in d.times[lo:hi]]
        ax.plot([times[0], times[-1]], [level, level], ls="--", lw=1.4, color=_ALARM, zorder=4)
    ax.plot([], [], ls="--", lw=1.4, color=_ALARM, label="step levels (alarm)")


def _trend_line(ax: Any, d: DriftResult) -> None:
    """The trend test's fitted line over its window, when the trend test alarms."""
    import numpy as np

    fit = d.trend
    if fit is None or DriftTest.TREND not in d.alarm_by or d.shape == DriftShape.STEP:
        return
    times = d.times[fit.first_index :]
    t0 = d.times[0]
    days = np.array([(x - t0).total_seconds() / 86400.0 for x in times])
    ax.plot(
        np.array([np.datetime64(x.replace(tzinfo=None)) for x in times]),
        fit.intercept + fit.slope_per_day * days,
        ls="--",
        lw=1.4,
        color=_ALARM,
        label="trend (alarm)",
        zorder=4,
    )


def _worst(statuses: Any) -> str:
    """The worst ROI status of a record (``not_checked`` when none was judged)."""
    return worst_status(statuses, default=Status.NOT_CHECKED).value
