"""Trend plots of the calibration history (matplotlib, no pyplot state: Agg-safe)."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

from noctis_lab._errors import HistoryError
from noctis_lab.hu._style import STATUS_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from noctis_lab.hu._drift import DriftResult

__all__ = ["plot_trend_frame"]

#: Status colours, with "review" (needs review) in its own colour until the shared
#: table has one.
_COLOURS = {"review": "#6a1b9a", **STATUS_COLOURS}
_WORDS = {"review": "needs review", "not_checked": "not checked"}


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
    import numpy as np
    from matplotlib.figure import Figure

    from noctis_lab.hu._drift import drift_from_trend

    if trend is None or trend.empty or trend["mean"].notna().sum() == 0:
        raise HistoryError("nothing to plot: the trend holds no measurement")
    df = trend[trend["mean"].notna()]
    keys = ["scanner", "phantom", "module", "material"]
    groups = list(df.groupby(keys, sort=True))
    drifts: dict[tuple[str, str, str, str], DriftResult] = {}
    if drift:
        for found in drift_from_trend(df, **drift_params):
            drifts[(found.scanner, found.phantom, found.module, found.material)] = found

    n = len(groups)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 1.0), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    scanners = sorted(set(df["scanner"]))
    heading = title if title is not None else f"HU trend: {', '.join(scanners)}"
    fig.suptitle(textwrap.fill(heading, width=max(40, 30 * ncols)), fontsize=11)
    handles: dict[str, Any] = {}

    for ax, (key, grp) in zip(axes.flat, groups, strict=False):
        scanner, phantom, module, material = (str(k) for k in key)
        per = (
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
        t = per["time"].dt.tz_convert(None).to_numpy()
        ax.plot(t, per["mean"], color="#455a64", lw=1, zorder=2)
        for status, sub in per.groupby("status"):
            ax.errorbar(
                sub["time"].dt.tz_convert(None).to_numpy(),
                sub["mean"],
                yerr=sub["sem"].fillna(0.0),
                fmt="o",
                ms=4,
                elinewidth=0.6,
                color=_COLOURS.get(str(status), STATUS_COLOURS["not_checked"]),
                label=_WORDS.get(str(status), str(status)),
                zorder=3,
            )
        nominal = per["nominal"].dropna()
        if not nominal.empty:
            ax.axhline(float(nominal.iloc[-1]), ls="--", lw=1, color="#1565c0", label="nominal")
        low = per["low"].to_numpy(dtype=float)
        high = per["high"].to_numpy(dtype=float)
        if np.isfinite(low).any() or np.isfinite(high).any():
            lo = np.where(np.isfinite(low), low, np.nanmin(per["mean"]) - 1e3)
            hi = np.where(np.isfinite(high), high, np.nanmax(per["mean"]) + 1e3)
            both = np.isfinite(low) | np.isfinite(high)
            if len(t) == 1:  # fill_between needs two points: a band across the axis
                ax.axhspan(lo[0], hi[0], color="#a5d6a7", alpha=0.35, label="tolerance", zorder=1)
            ax.fill_between(
                t,
                lo,
                hi,
                where=both,
                step="post",
                color="#a5d6a7",
                alpha=0.35,
                label="tolerance",
                zorder=1,
            )
            finite = np.concatenate([low[np.isfinite(low)], high[np.isfinite(high)]])
            span = np.concatenate([finite, per["mean"].to_numpy(dtype=float)])
            pad = 0.1 * max(float(np.ptp(span)), 1.0)
            ax.set_ylim(float(np.min(span)) - pad, float(np.max(span)) + pad)
        d = drifts.get((scanner, phantom, module, material))
        if d is not None and d.alarm and d.first_alarm_time is not None:
            ta = np.datetime64(d.first_alarm_time.replace(tzinfo=None))
            ax.axvline(ta, color="#c62828", lw=1.2, label="drift alarm")
            idx = (
                d.record_ids.index(d.first_alarm_record) if d.first_alarm_record is not None else -1
            )
            ax.plot([ta], [d.values[idx]], marker="v", ms=10, color="#c62828", zorder=4, ls="none")
            _trend_line(ax, d)
            _step_levels(ax, d)
            flag = "STEP" if d.shape == "step" else "DRIFT"
            ax.set_title(_panel_title(material, module, flag), color="#c62828", fontsize=9)
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
    alarms = [d for d in drifts.values() if d.alarm]
    if alarms:
        words = {"cusum": "CUSUM", "ewma": "EWMA", "trend": "trend", "step": "step"}
        text = "drift alarm: " + "; ".join(
            f"{d.material} {'step ' if d.shape == 'step' else ''}{d.drift_hu:+.1f} HU "
            f"({' + '.join(words.get(b, b) for b in d.alarm_by)})"
            for d in alarms
        )
        fig.supxlabel(textwrap.fill(text, width=int(30 * ncols)), fontsize=8, color="#c62828")
    return fig


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
    if step is None or d.shape != "step":
        return
    cut = step.first_index + step.change_index
    for lo, hi, level in (
        (step.first_index, cut, step.before_mean),
        (cut, step.first_index + step.n, step.after_mean),
    ):
        times = [np.datetime64(x.replace(tzinfo=None)) for x in d.times[lo:hi]]
        ax.plot([times[0], times[-1]], [level, level], ls="--", lw=1.4, color="#c62828", zorder=4)
    ax.plot([], [], ls="--", lw=1.4, color="#c62828", label="step levels (alarm)")


def _trend_line(ax: Any, d: DriftResult) -> None:
    """The trend test's fitted line over its window, when the trend test alarms."""
    import numpy as np

    fit = d.trend
    if fit is None or "trend" not in d.alarm_by or d.shape == "step":
        return
    times = d.times[fit.first_index :]
    t0 = d.times[0]
    days = np.array([(x - t0).total_seconds() / 86400.0 for x in times])
    ax.plot(
        np.array([np.datetime64(x.replace(tzinfo=None)) for x in times]),
        fit.intercept + fit.slope_per_day * days,
        ls="--",
        lw=1.4,
        color="#c62828",
        label="trend (alarm)",
        zorder=4,
    )


def _worst(statuses: Any) -> str:
    order = {"not_checked": 0, "pass": 1, "review": 2, "warning": 3, "fail": 4}
    worst = "not_checked"
    for s in statuses:
        if order.get(str(s), 0) > order[worst]:
            worst = str(s)
    return worst
