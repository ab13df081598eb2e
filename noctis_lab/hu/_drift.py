"""Drift detection on a series of HU measurements against the scanner's baseline.

The method (pure numpy, no database):

1. **Baseline.** The records marked as commissioning/baseline, or else the first
   ``baseline_n`` records, give the baseline mean ``mu0``; the noise ``sigma`` is estimated over the
   baseline (see below), floored at ``min_sd``.
2. **Statistic.** On the standardised values ``z = (x - mu0) / sigma`` of the
   records after the baseline, a two-sided tabular CUSUM
   ``S+ = max(0, S+ + z - k)``, ``S- = max(0, S- - z - k)`` (Page 1954; Montgomery,
   *Introduction to Statistical Quality Control*, ch. 9) or an EWMA
   ``E = lam z + (1 - lam) E`` with limits ``L sqrt(lam / (2 - lam))``.
3. **Alarm.** The statistic crosses its decision limit ``h`` (CUSUM) or ``L``
   (EWMA) *and* the smoothed level has moved at least ``min_shift_hu`` from the
   baseline, so a very quiet scanner does not alarm on a clinically meaningless
   0.3 HU step.
4. **Rate.** A least-squares line through the values since the drift began (the
   last time the alarming CUSUM side was zero) gives the rate in HU per 30 days
   and, when a tolerance is known, the date the line leaves it.

Alongside, a **trend test** that works from a few records (no baseline needed):
a least-squares line through the last ``trend_window`` records (at least
``trend_min_n``) against time, with the two-sided ``1 - trend_alpha`` confidence
interval of its slope (Student t, ``n - 2`` degrees of freedom). It alarms when
that interval excludes zero *and* even its bound nearest zero, times the window's
span, moves the level by at least ``trend_min_hu``: "with 95 % confidence the
level moved at least 2 HU over these records". It is evaluated record by record
(each prefix), so its alarm has a first record like the CUSUM's. On pure noise
(SD 1 HU, 60 records, 300 seeds) it raised no false alarm; a drift of 0.9 HU per
record on 0.8 HU noise (the demo's GE scanner) is flagged by the 7th record in
86 % and by the 8th in 97 % of 200 series, where the CUSUM has not even finished
its baseline of 10.
The result's ``alarm`` is set when either test alarms; ``alarm_by`` says which.

A **step test** tells a sudden change (a service visit, a software update, a bad
air calibration) from a drift, which a trend line alone cannot: on the same window,
the best single change point (two levels, smallest residual sum of squares, at
least three records before it) and a Student-t interval of the shift widened for
the number of change points tried (Bonferroni). It alarms like the trend test (the
interval's bound nearest zero at least ``trend_min_hu``). The records are called a
**step** when two levels explain them better than a line (BIC, the change point
counted as a parameter) and the records after the change do not trend on their
own; the result's ``shape`` is then ``"step"`` and the message names the day it
happened; otherwise a drift stays a drift. On pure noise (SD 0.6-2 HU, 5-12
records, 1000 seeds each) it alarmed in at most 0.5 % of series; a 5 HU step with
three records after it on SD 1 HU noise was flagged in 80 % of 300 series and
called a step in 99.6 % of those; a drift of 0.5 HU per record set it off in 3 %.

The noise ``sigma`` is the larger of the moving-range and the ordinary SD of the
baseline, inflated by ``sqrt(1 + 1/n)`` for the uncertainty of the baseline mean:
a small baseline easily underestimates one of them, and an underestimated sigma
is the main source of false alarms.

The defaults (CUSUM ``k = 1``, ``h = 7``; EWMA ``lam = 0.2``, ``L = 4.5``;
``baseline_n = 10``) were chosen by simulation (normal noise, 300 seeds): on pure
noise about 3 % (CUSUM) / 4 % (EWMA) of series raise a false alarm within 60
records after the baseline; a drift of 0.3 SD per record is flagged after a
median of 10 (CUSUM) / 9 (EWMA) records, at most about 6.5 SD from the baseline.

The statistics (CUSUM, EWMA, the trend and step tests) and the result type are the
shared ones of :mod:`noctis_lab.quality`, which the AI model status uses too; this
module picks the baseline, runs them on a HU series and words the verdict in HU.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from noctis_lab.quality import (
    Direction,
    DriftResult,
    DriftShape,
    DriftTest,
    StepFit,
    TrendFit,
    cusum,
    ewma,
    fit_windows,
    step_fit,
    trend_fit,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from noctis_lab.quality._drift import FloatArray

__all__ = [
    "DriftResult",
    "StepFit",
    "TrendFit",
    "detect_drift",
    "drift_from_trend",
    "step_fit",
    "trend_fit",
]

Method = Literal["cusum", "ewma"]
_D2 = 1.128  # E|x_i - x_{i-1}| / sigma for normal data


@dataclass(frozen=True)
class _Series:
    """One HU series being judged and what its messages need."""

    label: str
    times: tuple[datetime, ...]
    days: FloatArray
    values: FloatArray
    ids: tuple[int, ...]
    nominal: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class _Baseline:
    """Where the watch starts, and the records giving the mean and the noise."""

    end: int
    mean_idx: Any
    sd_idx: Any


@dataclass(frozen=True)
class _Chart:
    """A control chart run over the records after the baseline."""

    mu0: float
    sigma: float
    stat: FloatArray
    up: FloatArray
    down: FloatArray
    level: FloatArray
    threshold: float


def _fmt_signed(x: float) -> str:
    return f"{x:+.1f}"


def _tolerance_text(low: float | None, high: float | None, nominal: float | None) -> str:
    if low is not None and high is not None:
        if nominal is not None and math.isclose(high - nominal, nominal - low, abs_tol=1e-6):
            return f"{nominal:g} ± {high - nominal:g} HU"
        return f"{low:g}..{high:g} HU"
    if low is not None:
        return f"≥ {low:g} HU"
    if high is not None:
        return f"≤ {high:g} HU"
    return ""


def _check_parameters(
    method: str,
    baseline_n: int,
    trend_min_n: int,
    trend_window: int,
    trend_alpha: float,
    positive: dict[str, float],
) -> None:
    """Refuse impossible drift parameters with the reason."""
    if method not in ("cusum", "ewma"):
        raise ValueError(f"drift method must be 'cusum' or 'ewma', got {method!r}")
    if baseline_n < 3:
        raise ValueError(f"baseline_n must be at least 3, got {baseline_n}")
    if trend_min_n < 3 or trend_window < trend_min_n:
        raise ValueError(
            f"trend_min_n must be at least 3 and trend_window at least trend_min_n, "
            f"got {trend_min_n} and {trend_window}"
        )
    if not 0 < trend_alpha < 1:
        raise ValueError(f"trend_alpha must be between 0 and 1, got {trend_alpha}")
    for name, v in positive.items():
        if not v > 0:
            raise ValueError(f"drift parameter {name} must be positive, got {v}")


def _make_series(
    times: Sequence[datetime],
    values: Sequence[float],
    record_ids: Sequence[int] | None,
    label: str,
    tolerance: tuple[float | None, float | None, float | None],
) -> _Series:
    x = np.asarray(values, dtype=float)
    if len(times) != x.size:
        raise ValueError(f"{len(times)} times but {x.size} values")
    t = tuple(times)
    nominal, low, high = tolerance
    return _Series(
        label=label,
        times=t,
        days=np.array([(ti - t[0]).total_seconds() / 86400.0 for ti in t]),
        values=x,
        ids=tuple(int(i) for i in (record_ids if record_ids is not None else range(x.size))),
        nominal=nominal,
        low=low,
        high=high,
    )


def _baseline_split(baseline: Sequence[bool] | None, baseline_n: int, n: int) -> _Baseline:
    """The marked records, else the first ``baseline_n``; the noise from at least those."""
    marked = np.asarray(baseline if baseline is not None else [False] * n, dtype=bool)
    if marked.size != n:
        raise ValueError(f"{marked.size} baseline flags but {n} values")
    if marked.any():
        end = int(np.flatnonzero(marked)[-1]) + 1
        return _Baseline(end, np.flatnonzero(marked), np.arange(max(end, min(baseline_n, n))))
    end = min(baseline_n, n)
    return _Baseline(end, np.arange(end), np.arange(end))


def _run_chart(
    x: FloatArray,
    base: _Baseline,
    *,
    method: Method,
    k: float,
    h: float,
    lam: float,
    limit: float,
    min_sd: float,
) -> _Chart:
    """The baseline's mean and noise, and the chosen chart over the records after it."""
    mu0 = float(np.mean(x[base.mean_idx]))
    sd_vals = x[base.sd_idx]
    sigma_mr = float(np.mean(np.abs(np.diff(sd_vals)))) / _D2
    sigma_sd = float(np.std(sd_vals, ddof=1))
    # The larger of the two (a small baseline easily underestimates one of them),
    # inflated for the uncertainty of the baseline mean itself.
    sigma = max(sigma_mr, sigma_sd) * math.sqrt(1.0 + 1.0 / base.mean_idx.size)
    sigma = max(sigma, min_sd)
    z = (x - mu0) / sigma
    n, end = x.size, base.end
    up, down, e = np.zeros(n), np.zeros(n), np.zeros(n)
    up[end:], down[end:] = cusum(z[end:], k)
    e[end:] = ewma(z[end:], lam)
    level = np.full(n, mu0)
    level[end:] = mu0 + e[end:] * sigma
    stat = np.where(up >= down, up, -down) if method == "cusum" else e / math.sqrt(lam / (2 - lam))
    stat[:end] = 0.0
    return _Chart(mu0, sigma, stat, up, down, level, h if method == "cusum" else limit)


def _first_alarm(
    chart: _Chart, end: int, min_shift_hu: float
) -> tuple[int, Direction] | tuple[None, None]:
    """The first record where the chart crosses its limit and the level moved enough."""
    for i in range(end, chart.stat.size):
        if abs(chart.stat[i]) > chart.threshold and abs(chart.level[i] - chart.mu0) >= min_shift_hu:
            return i, Direction.UP if chart.stat[i] > 0 else Direction.DOWN
    return None, None


def _drift_start(chart: _Chart, first: int, end: int, direction: Direction) -> int:
    """The last time the alarming CUSUM side was zero before the alarm."""
    side = chart.up if direction == Direction.UP else chart.down
    start = first
    while start > end and side[start - 1] > 0:
        start -= 1
    return max(end, start - 1)


def _chart_alarm(
    s: _Series, chart: _Chart, first: int, direction: Direction, end: int
) -> dict[str, Any]:
    """The fields of a control-chart alarm: rate since the drift began, exit, words."""
    start = _drift_start(chart, first, end, direction)
    ts, xs = s.days[start:], s.values[start:]
    rate_per_day: float | None = None
    fitted_last = float(s.values[-1])
    if ts.size >= 2 and float(np.ptp(ts)) > 0:
        slope, intercept = np.polyfit(ts, xs, 1)
        rate_per_day = float(slope)
        fitted_last = float(slope * s.days[-1] + intercept)
    drift_hu = fitted_last - chart.mu0
    drift_days = float(s.days[-1] - s.days[start])
    projected, where = _exit_text(
        direction, fitted_last, rate_per_day, s.times[-1], s.low, s.high, s.nominal
    )
    rate_30 = None if rate_per_day is None else rate_per_day * 30.0
    rate_txt = "" if rate_30 is None else f" (about {_fmt_signed(rate_30)} HU per month)"
    message = (
        f"{s.label} has drifted {_fmt_signed(drift_hu)} HU over {drift_days:.0f} days"
        f"{rate_txt}, from its baseline of {chart.mu0:.1f} HU; drift alarm since "
        f"{s.times[first].date().isoformat()} (record {s.ids[first]}){where}"
    )
    return {
        "alarm_index": first,
        "direction": direction,
        "rate_hu_per_30d": rate_30,
        "drift_hu": drift_hu,
        "drift_days": drift_days,
        "projected_exit": projected,
        "message": message,
    }


def _chart_fields(
    s: _Series, base: _Baseline, baseline_n: int, chart_kw: dict[str, Any], min_shift_hu: float
) -> dict[str, Any]:
    """The control chart's part of the result: not enough records, stable, or an alarm."""
    n, end = s.values.size, base.end
    if n <= end or base.sd_idx.size < 3:
        need = max(baseline_n, end) + 1
        return {
            "message": (
                f"{s.label}: not enough records to judge drift ({n} recorded; "
                f"a baseline of {max(end, baseline_n)} and at least one more are needed, "
                f"{need} in all)"
            )
        }
    chart = _run_chart(s.values, base, **chart_kw)
    common = {
        "baseline_mean": chart.mu0,
        "baseline_sd": chart.sigma,
        "statistic": tuple(float(v) for v in chart.stat),
        "threshold": chart.threshold,
    }
    first, direction = _first_alarm(chart, end, min_shift_hu)
    if first is None or direction is None:
        spread = float(np.max(np.abs(s.values[end:] - chart.mu0)))
        return {
            **common,
            "message": (
                f"{s.label} is stable: {n - end} records since the baseline of "
                f"{chart.mu0:.1f} HU (SD {chart.sigma:.1f}) stay within {spread:.1f} HU of "
                "it; no drift alarm"
            ),
        }
    return {**common, **_chart_alarm(s, chart, first, direction, end)}


def detect_drift(
    times: Sequence[datetime],
    values: Sequence[float],
    *,
    record_ids: Sequence[int] | None = None,
    scanner: str = "",
    material: str = "",
    phantom: str = "",
    module: str = "",
    nominal: float | None = None,
    low: float | None = None,
    high: float | None = None,
    baseline: Sequence[bool] | None = None,
    baseline_n: int = 10,
    method: Method = "cusum",
    k: float = 1.0,
    h: float = 7.0,
    lam: float = 0.2,
    limit: float = 4.5,
    min_sd: float = 0.5,
    min_shift_hu: float = 1.0,
    trend: bool = True,
    trend_window: int = 12,
    trend_min_n: int = 5,
    trend_alpha: float = 0.05,
    trend_min_hu: float = 2.0,
) -> DriftResult:
    """Watch one series of mean HU values for a drift away from its baseline.

    Parameters
    ----------
    times, values : sequence
        Record times (timezone-aware or naive UTC, increasing) and mean HU.
    record_ids : sequence of int, optional
        The history record of each value (default 0..n-1).
    scanner, material, phantom, module : str
        Labels for the message.
    nominal, low, high : float, optional
        Nominal HU and the tolerance (absolute HU) the records were judged by.
    baseline : sequence of bool, optional
        Records marked as commissioning/baseline. When any is marked, those form the
        baseline (and the watch starts after the last of them); otherwise the first
        ``baseline_n`` records do.
    baseline_n : int
        Baseline size when none is marked (at least 3).
    method : {"cusum", "ewma"}
        The detector.
    k, h : float
        CUSUM reference value and decision limit, in baseline SDs.
    lam, limit : float
        EWMA weight and limit width (in SDs of the EWMA).
    min_sd : float
        Floor on the baseline SD, HU.
    min_shift_hu : float
        Smallest level change (HU) worth an alarm.
    trend : bool
        Also run the trend test (a regression slope with its confidence interval).
    trend_window, trend_min_n : int
        The trend test fits the last ``trend_window`` records, from ``trend_min_n`` on.
    trend_alpha : float
        The slope's interval is two-sided at ``1 - trend_alpha``.
    trend_min_hu : float
        Smallest change (HU) over the window, at the interval's bound nearest zero,
        worth a trend alarm.

    Returns
    -------
    DriftResult
        The shared result type of :mod:`noctis_lab.quality`.
    """
    _check_parameters(
        method,
        baseline_n,
        trend_min_n,
        trend_window,
        trend_alpha,
        {"k": k, "h": h, "lam": lam, "limit": limit},
    )
    label = f"{material} on {scanner}" if scanner else material
    s = _make_series(times, values, record_ids, label, (nominal, low, high))
    n = s.values.size
    base = _baseline_split(baseline, baseline_n, n)
    chart_kw = {"method": method, "k": k, "h": h, "lam": lam, "limit": limit, "min_sd": min_sd}
    res = DriftResult(
        quantity=material,
        method=DriftTest(method),
        values=tuple(float(v) for v in s.values),
        statistic=tuple(0.0 for _ in range(n)),
        threshold=h if method == "cusum" else limit,
        alarm_index=None,
        baseline_mean=math.nan,
        baseline_sd=math.nan,
        message="",
        baseline_n=int(base.end),
        scanner=scanner,
        phantom=phantom,
        module=module,
        times=s.times,
        record_ids=s.ids,
        low=low,
        high=high,
    )
    res = dataclasses.replace(res, **_chart_fields(s, base, baseline_n, chart_kw, min_shift_hu))
    windowed = trend and n >= trend_min_n
    test_kw = {"alpha": trend_alpha, "min_change_hu": trend_min_hu}
    fit, trend_first = (
        _trend_scan(s.days, s.values, window=trend_window, min_n=trend_min_n, **test_kw)
        if windowed
        else (None, None)
    )
    step = (
        fit_windows(step_fit, s.days, s.values, window=trend_window, ends=[n - 1], **test_kw)[0]
        if windowed
        else None
    )
    return _with_step(_with_trend(res, fit, trend_first, s), step)


def _trend_scan(
    t_days: FloatArray,
    x: FloatArray,
    *,
    window: int,
    min_n: int,
    alpha: float,
    min_change_hu: float,
) -> tuple[TrendFit | None, int | None]:
    """The fit of the latest window, and where the current run of alarming windows began.

    Each record from the ``min_n``-th on is judged on the window of (up to) ``window``
    records ending at it; the second value is the index of the first record of the
    unbroken run of alarming windows that reaches the latest record (``None`` when
    the latest window does not alarm).
    """
    ends = range(min_n - 1, x.size)
    fits = fit_windows(
        trend_fit, t_days, x, window=window, ends=ends, alpha=alpha, min_change_hu=min_change_hu
    )
    run_start: int | None = None
    last: TrendFit | None = None
    for i, fit in zip(ends, fits, strict=True):
        if fit is None:
            run_start = None
            continue
        last = fit
        if not fit.alarm:
            run_start = None
        elif run_start is None:
            run_start = i
    return last, run_start


def _exit_text(
    direction: str,
    fitted_last: float,
    rate_per_day: float | None,
    last_time: datetime,
    low: float | None,
    high: float | None,
    nominal: float | None,
) -> tuple[datetime | None, str]:
    """When a fitted line leaves the tolerance, and the words saying so."""
    limit_hu = high if direction == "up" else low
    tol = _tolerance_text(low, high, nominal)
    outside = (high is not None and fitted_last > high) or (low is not None and fitted_last < low)
    if limit_hu is None or rate_per_day is None:
        return None, ("; no tolerance is stored for it" if tol == "" else "")
    heading_out = (direction == "up" and rate_per_day > 0) or (
        direction == "down" and rate_per_day < 0
    )
    if outside:
        return None, f"; it is already outside its tolerance of {tol}"
    if heading_out:
        days_left = float((limit_hu - fitted_last) / rate_per_day)
        if days_left <= 3650:
            projected = last_time + timedelta(days=days_left)
            return projected, (
                f"; at this rate it leaves its tolerance of {tol} around "
                f"{projected.date().isoformat()}"
            )
        return None, f"; at this rate it stays within its tolerance of {tol} for years"
    return None, ""


def _trend_words(fit: TrendFit) -> str:
    slope, lo, hi = fit.per_30d()
    return (
        f"{_fmt_signed(slope)} HU per month over the last {fit.n} records "
        f"({100 * fit.confidence:.0f} % CI {_fmt_signed(lo)} to {_fmt_signed(hi)})"
    )


def _with_trend(
    res: DriftResult, fit: TrendFit | None, first: int | None, s: _Series
) -> DriftResult:
    """Add the trend test to a control-chart result: its fit, its alarm and the words."""
    by = (res.method,) if res.alarm else ()
    if fit is None:
        return dataclasses.replace(res, alarm_by=by)
    if not fit.alarm or first is None:
        note = f"; trend test: {_trend_words(fit)}, no trend alarm"
        return dataclasses.replace(res, trend=fit, alarm_by=by, message=res.message + note)
    t, ids = res.times, res.record_ids
    if res.alarm:
        note = f"; the trend test agrees: {_trend_words(fit)}, since record {ids[first]}"
        return dataclasses.replace(
            res,
            trend=fit,
            trend_first_alarm_record=ids[first],
            alarm_by=(*by, DriftTest.TREND),
            message=res.message + note,
        )
    direction = Direction.UP if fit.slope_per_day > 0 else Direction.DOWN
    fitted_last = fit.intercept + fit.slope_per_day * float(s.days[-1])
    projected, where = _exit_text(
        direction, fitted_last, fit.slope_per_day, t[-1], res.low, res.high, s.nominal
    )
    message = (
        f"{s.label} has drifted {_fmt_signed(fit.change_hu)} HU over {fit.span_days:.0f} days "
        f"(trend test: {_trend_words(fit)}); drift alarm since "
        f"{t[first].date().isoformat()} (record {ids[first]}){where}"
    )
    return dataclasses.replace(
        res,
        alarm_index=first,
        direction=direction,
        rate_hu_per_30d=30.0 * fit.slope_per_day,
        drift_hu=fit.change_hu,
        drift_days=fit.span_days,
        projected_exit=projected,
        trend=fit,
        trend_first_alarm_record=ids[first],
        alarm_by=(DriftTest.TREND,),
        message=message,
    )


def _step_words(step: StepFit) -> str:
    return (
        f"step test: {100 * step.confidence:.0f} % CI {_fmt_signed(step.ci_low_hu)} to "
        f"{_fmt_signed(step.ci_high_hu)} HU"
    )


def _level_text(level: float, low: float | None, high: float | None, tol: str) -> str:
    if not tol:
        return ""
    outside = (low is not None and level < low) or (high is not None and level > high)
    return f"; it is now {'outside' if outside else 'within'} its tolerance of {tol}"


_TEST_NAMES = {DriftTest.CUSUM: "CUSUM", DriftTest.EWMA: "EWMA", DriftTest.TREND: "trend test"}


def _step_message(res: DriftResult, step: StepFit, i: int) -> str:
    """The words of a step alarm: when, from which level to which, and what to check."""
    t, ids = res.times, res.record_ids
    label = f"{res.material} on {res.scanner}" if res.scanner else res.material
    agree = " and ".join(_TEST_NAMES.get(b, b) for b in res.alarm_by)
    tol = _tolerance_text(res.low, res.high, None)
    kind = "stepped" if step.shape == DriftShape.STEP else "moved"
    return (
        f"{label} {kind} {_fmt_signed(step.shift_hu)} HU on {t[i].date().isoformat()} "
        f"(record {ids[i]}): from {step.before_mean:.1f} to {step.after_mean:.1f} HU "
        f"({_step_words(step)})"
        + (
            f"; a sudden change, not a drift: check what changed on the scanner between "
            f"{t[i - 1].date().isoformat()} and {t[i].date().isoformat()} (service, "
            "software, calibration)"
            if step.shape == DriftShape.STEP
            else ""
        )
        + _level_text(step.after_mean, res.low, res.high, tol)
        + (f"; the {agree} alarms as well" if agree else "")
    )


def _with_step(res: DriftResult, step: StepFit | None) -> DriftResult:
    """Add the step test: a sudden change between two levels is told apart from a drift."""
    if step is None or not step.alarm:
        return dataclasses.replace(res, step=step)
    if step.shape != DriftShape.STEP and res.alarm:
        return dataclasses.replace(res, step=step)  # a line fits better: the drift stands
    i = step.first_index + step.change_index
    return dataclasses.replace(
        res,
        alarm_index=i,
        direction=Direction.UP if step.shift_hu > 0 else Direction.DOWN,
        rate_hu_per_30d=None if step.shape == DriftShape.STEP else res.rate_hu_per_30d,
        drift_hu=step.shift_hu,
        drift_days=(res.times[-1] - res.times[i]).total_seconds() / 86400.0,
        projected_exit=None,
        step=step,
        alarm_by=(*res.alarm_by, DriftTest.STEP),
        message=_step_message(res, step, i),
    )


def _tolerance_of(per: pd.DataFrame) -> tuple[float | None, float | None]:
    """The tolerance of the newest record that has one."""
    tol = per[per["low"].notna() | per["high"].notna()]
    if tol.empty:
        return None, None
    last = tol.iloc[-1]
    low = None if math.isnan(last["low"]) else float(last["low"])
    high = None if math.isnan(last["high"]) else float(last["high"])
    return low, high


def drift_from_trend(trend: pd.DataFrame, **params: Any) -> list[DriftResult]:
    """:func:`detect_drift` for every (scanner, phantom, module, material) of a trend frame.

    ``trend`` is a frame from :meth:`CalibrationHistory.trend`. ROIs of the same
    material in one module (e.g. the two air inserts) are averaged per record;
    records whose latest review is ``rejected`` are left out; the tolerance is
    that of the newest record that has one. ``params`` go to :func:`detect_drift`.
    """
    if trend.empty:
        return []
    df = trend[trend["mean"].notna()]
    if "decision" in df.columns:
        df = df[df["decision"] != "rejected"]
    out: list[DriftResult] = []
    keys = ["scanner", "phantom", "module", "material"]
    for key, grp in df.groupby(keys, sort=True):
        scanner, phantom, module, material = (str(k) for k in key)
        per = (
            grp.groupby("record_id", sort=False)
            .agg(
                time=("time", "first"),
                value=("mean", "mean"),
                nominal=("nominal", "first"),
                low=("low", "first"),
                high=("high", "first"),
                baseline=("baseline", "first"),
            )
            .sort_values(["time"], kind="stable")
        )
        low, high = _tolerance_of(per)
        nominal_s = per["nominal"].dropna()
        out.append(
            detect_drift(
                [t.to_pydatetime() for t in per["time"]],
                per["value"].to_numpy(dtype=float),
                record_ids=[int(i) for i in per.index],
                scanner=scanner,
                material=material,
                phantom=phantom,
                module=module,
                nominal=None if nominal_s.empty else float(nominal_s.iloc[-1]),
                low=low,
                high=high,
                baseline=per["baseline"].astype(bool).tolist(),
                **params,
            )
        )
    return out
