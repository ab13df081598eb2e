"""The drift statistics shared by the HU history and the AI model status.

Pure numpy (scipy for the Student-t quantiles); no database, no wording of a domain.

* :func:`cusum`: the tabular CUSUM of standardised values ``z`` (Page 1954;
  Montgomery, *Introduction to Statistical Quality Control*, ch. 9):
  ``S+ = max(0, S+ + z - k)``, ``S- = max(0, S- - z - k)``; a non-finite ``z``
  leaves both sums as they were. The HU history watches both sides; the AI status
  watches the worsening side of ``z = (baseline - x) / sigma`` (sign flipped when
  lower is better).
* :func:`ewma`: the exponentially weighted mean ``E = lam z + (1 - lam) E``.
* :func:`window_z`: the mean of the last ``window`` values against an uncertain
  baseline, in units of the standard error of that difference.
* :func:`trend_fit`: a least-squares line with the Student-t interval of its slope.
* :func:`step_fit`: the best single change point with a Bonferroni-widened interval
  of the shift, and whether two levels explain the records better than a line.
* :func:`fit_windows`: a fit applied to the trailing window ending at each record.

Every test's outcome is a :class:`DriftResult`: what was watched, the series, the
statistic and its limit, where the alarm began and the verdict in plain words.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Direction",
    "DriftResult",
    "DriftShape",
    "DriftTest",
    "StepFit",
    "TrendFit",
    "cusum",
    "ewma",
    "fit_windows",
    "step_fit",
    "trend_fit",
    "window_z",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = Sequence[float] | FloatArray


class DriftTest(StrEnum):
    """A drift test: the control charts, the AI's windowed mean, the trend and step tests."""

    CUSUM = "cusum"
    EWMA = "ewma"
    WINDOW = "window"
    TREND = "trend"
    STEP = "step"


class Direction(StrEnum):
    """Which way the level moved."""

    UP = "up"
    DOWN = "down"


class DriftShape(StrEnum):
    """What an alarm looks like: a sudden step between two levels, or a drift."""

    STEP = "step"
    DRIFT = "drift"


# -- control charts -------------------------------------------------------------------


def cusum(z: ArrayLike, k: float) -> tuple[FloatArray, FloatArray]:
    """Two-sided tabular CUSUM of standardised values.

    Parameters
    ----------
    z : array_like
        Standardised values, oldest first; a non-finite value leaves the sums unchanged.
    k : float
        Reference value (allowance), in the units of ``z``.

    Returns
    -------
    up, down : ndarray
        ``S+`` and ``S-`` after each value.
    """
    zs = np.asarray(z, dtype=float)
    up = np.zeros(zs.size)
    down = np.zeros(zs.size)
    sp = sm = 0.0
    for i, zi in enumerate(zs):
        if math.isfinite(zi):
            sp = max(0.0, sp + zi - k)
            sm = max(0.0, sm - zi - k)
        up[i], down[i] = sp, sm
    return up, down


def ewma(z: ArrayLike, lam: float) -> FloatArray:
    """Exponentially weighted moving average of standardised values, starting at 0.

    Parameters
    ----------
    z : array_like
        Standardised values, oldest first.
    lam : float
        Weight of the newest value (0 < lam <= 1).

    Returns
    -------
    ndarray
        ``E`` after each value; its steady-state SD is ``sqrt(lam / (2 - lam))``.
    """
    zs = np.asarray(z, dtype=float)
    out = np.zeros(zs.size)
    e = 0.0
    for i, zi in enumerate(zs):
        e = lam * zi + (1 - lam) * e
        out[i] = e
    return out


def window_z(
    values: Sequence[float],
    sigmas: Sequence[float],
    *,
    baseline: float,
    baseline_sigma: float,
    window: int,
    sign: float = 1.0,
) -> list[float]:
    """Windowed z of the recent mean against an uncertain baseline, after each value.

    With the last ``m = min(t, window)`` finite values ``x`` (standard errors ``s``)
    after value ``t``: ``z_t = sign (baseline - mean(x)) / sqrt(baseline_sigma² +
    mean(s²) / m)``; 0 while no value is finite. Values with a non-finite or
    non-positive standard error are skipped.

    Parameters
    ----------
    values, sigmas : sequence of float
        The monitored values and their standard errors, oldest first.
    baseline, baseline_sigma : float
        The baseline value and its standard error (> 0).
    window : int
        Values in the recent mean.
    sign : float
        ``1`` when a fall is the worsening, ``-1`` when a rise is.

    Returns
    -------
    list of float
        ``z`` after each value.
    """
    xs: list[float] = []
    ss: list[float] = []
    out: list[float] = []
    for x, s in zip(values, sigmas, strict=True):
        if math.isfinite(x) and math.isfinite(s) and s > 0:
            xs.append(float(x))
            ss.append(float(s))
        recent_x, recent_s = xs[-window:], ss[-window:]
        if recent_x:
            m = len(recent_x)
            se = math.sqrt(baseline_sigma**2 + sum(v * v for v in recent_s) / m / m)
            out.append(sign * (baseline - sum(recent_x) / m) / se)
        else:
            out.append(0.0)
    return out


# -- trend and step tests -------------------------------------------------------------


@dataclass(frozen=True)
class TrendFit:
    """A least-squares line through the last records and its slope's confidence interval.

    Attributes
    ----------
    n : int
        Records in the fit.
    first_index : int
        Index (in the series) of the first record of the fit.
    slope_per_day, ci_low_per_day, ci_high_per_day : float
        The slope and its two-sided confidence interval, units per day.
    span_days : float
        Days between the first and the last record of the fit.
    intercept : float
        Level at day 0 of the series.
    confidence : float
        The interval's confidence (``1 - alpha``).
    alarm : bool
        The interval excludes zero and its bound nearest zero moves the level by at
        least the minimum change over ``span_days``.
    """

    n: int
    first_index: int
    slope_per_day: float
    ci_low_per_day: float
    ci_high_per_day: float
    span_days: float
    intercept: float
    confidence: float
    alarm: bool

    @property
    def change_hu(self) -> float:
        """Fitted change over the fit's span (HU for the HU history)."""
        return self.slope_per_day * self.span_days

    def per_30d(self) -> tuple[float, float, float]:
        """``(slope, ci_low, ci_high)`` per 30 days."""
        return (30 * self.slope_per_day, 30 * self.ci_low_per_day, 30 * self.ci_high_per_day)


def _nearest_zero(lo: float, hi: float) -> float:
    """Distance from zero of an interval's bound nearest it (0 when it holds zero)."""
    return 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))


def trend_fit(
    days: ArrayLike,
    values: ArrayLike,
    *,
    alpha: float = 0.05,
    min_change_hu: float = 2.0,
    min_sd: float = 0.0,
) -> TrendFit | None:
    """Least-squares slope of ``values`` against ``days`` with its Student-t interval.

    Parameters
    ----------
    days, values : array_like
        Record times (days) and values.
    alpha : float
        The interval is two-sided at ``1 - alpha``.
    min_change_hu : float
        Smallest change over the span, at the bound nearest zero, worth an alarm.
    min_sd : float
        Floor of the residual SD, so a perfectly straight series does not claim
        infinite confidence.

    Returns
    -------
    TrendFit or None
        ``None`` with fewer than 3 records or no spread in time.
    """
    from scipy import stats

    t = np.asarray(days, dtype=float)
    x = np.asarray(values, dtype=float)
    n = t.size
    if n < 3 or float(np.ptp(t)) <= 0:
        return None
    tm = float(t.mean())
    sxx = float(np.sum((t - tm) ** 2))
    slope = float(np.sum((t - tm) * (x - x.mean())) / sxx)
    intercept = float(x.mean() - slope * tm)
    resid = x - (intercept + slope * t)
    s = max(math.sqrt(float(np.sum(resid**2)) / (n - 2)), min_sd)
    half = float(stats.t.ppf(1 - alpha / 2, n - 2)) * s / math.sqrt(sxx)
    lo, hi = slope - half, slope + half
    span = float(np.ptp(t))
    return TrendFit(
        n=n,
        first_index=0,
        slope_per_day=slope,
        ci_low_per_day=lo,
        ci_high_per_day=hi,
        span_days=span,
        intercept=intercept,
        confidence=1 - alpha,
        alarm=_nearest_zero(lo, hi) * span >= min_change_hu,
    )


@dataclass(frozen=True)
class StepFit:
    """The best single step in the last records: two levels and the change between them.

    Attributes
    ----------
    n : int
        Records in the fit (the same window as the trend test).
    first_index : int
        Index (in the series) of the first record of the fit.
    change_index : int
        Index (in the fit) of the first record after the step.
    before_mean, after_mean : float
        The level before and after the step.
    shift_hu, ci_low_hu, ci_high_hu : float
        ``after_mean - before_mean`` and its confidence interval (Bonferroni over the
        candidate change points, Student t with ``n - 2`` degrees of freedom).
    confidence : float
        The interval's confidence.
    alarm : bool
        The interval excludes zero and its bound nearest zero is at least the minimum
        change.
    rss_step, rss_line : float
        Residual sums of squares of the two-level model and of a straight line.
    shape : DriftShape or None
        When alarming: ``step`` when two levels explain the records better than a
        line (BIC, the change point counted as a parameter) and the records after the
        change do not trend on their own; else ``drift``.
    """

    n: int
    first_index: int
    change_index: int
    before_mean: float
    after_mean: float
    shift_hu: float
    ci_low_hu: float
    ci_high_hu: float
    confidence: float
    alarm: bool
    rss_step: float
    rss_line: float
    shape: DriftShape | None


def _rss(x: FloatArray) -> float:
    return float(np.sum((x - x.mean()) ** 2)) if x.size else 0.0


def _shape(
    t: FloatArray, x: FloatArray, j: int, rss_step: float, rss_line: float, **trend_kw: Any
) -> DriftShape:
    """``step`` or ``drift``: which of two levels or a line the records follow."""
    n = x.size
    bic_step = n * math.log(rss_step / n) + 3 * math.log(n)
    bic_line = n * math.log(rss_line / n) + 2 * math.log(n)
    after = trend_fit(t[j:], x[j:], **trend_kw) if n - j >= 3 else None
    moving = after is not None and after.alarm
    return DriftShape.STEP if bic_step < bic_line and not moving else DriftShape.DRIFT


def step_fit(
    days: ArrayLike,
    values: ArrayLike,
    *,
    alpha: float = 0.05,
    min_change_hu: float = 2.0,
    min_before: int = 3,
    min_sd: float = 0.5,
) -> StepFit | None:
    """The best single change point of ``values`` and whether the change is real.

    Every split leaving at least ``min_before`` records before it (and one after) is
    tried; the one with the smallest residual sum of squares wins. Its shift (after
    minus before) gets a Student-t interval widened for the number of splits tried
    (Bonferroni), so noise alone rarely looks like a step.

    Parameters
    ----------
    days, values : array_like
        Record times (days) and values.
    alpha : float
        The interval is two-sided at ``1 - alpha`` (before the Bonferroni widening).
    min_change_hu : float
        Smallest shift, at the bound nearest zero, worth an alarm.
    min_before : int
        Records before the earliest change point tried.
    min_sd : float
        Floor of the residual SD.

    Returns
    -------
    StepFit or None
        ``None`` with fewer than ``min_before + 1`` records or no spread in time.
    """
    from scipy import stats

    t = np.asarray(days, dtype=float)
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < max(min_before + 1, 3) or float(np.ptp(t)) <= 0:
        return None
    j, rss = min(
        ((k, _rss(x[:k]) + _rss(x[k:])) for k in range(min_before, n)), key=lambda kv: kv[1]
    )
    s = max(math.sqrt(rss / (n - 2)), min_sd)
    before, after = float(x[:j].mean()), float(x[j:].mean())
    shift = after - before
    tests = n - min_before
    half = float(stats.t.ppf(1 - alpha / (2 * tests), n - 2)) * s * math.sqrt(1 / j + 1 / (n - j))
    lo, hi = shift - half, shift + half
    slope, intercept = np.polyfit(t, x, 1)
    rss_line = float(np.sum((x - (slope * t + intercept)) ** 2))
    floor = n * min_sd**2 * 1e-2  # no log of zero for noise-free records
    alarm = _nearest_zero(lo, hi) >= min_change_hu
    shape = (
        _shape(
            t,
            x,
            j,
            max(rss, floor),
            max(rss_line, floor),
            alpha=alpha,
            min_change_hu=min_change_hu,
            min_sd=min_sd,
        )
        if alarm
        else None
    )
    return StepFit(
        n=n,
        first_index=0,
        change_index=j,
        before_mean=before,
        after_mean=after,
        shift_hu=shift,
        ci_low_hu=lo,
        ci_high_hu=hi,
        confidence=1 - alpha,
        alarm=alarm,
        rss_step=rss,
        rss_line=rss_line,
        shape=shape,
    )


_Fit = TypeVar("_Fit", TrendFit, StepFit)


def fit_windows(
    fit: Callable[..., _Fit | None],
    days: FloatArray,
    values: FloatArray,
    *,
    window: int,
    ends: Sequence[int],
    **fit_kw: Any,
) -> list[_Fit | None]:
    """``fit`` on the trailing window of (up to) ``window`` records ending at each of ``ends``.

    Parameters
    ----------
    fit : callable
        :func:`trend_fit` or :func:`step_fit`.
    days, values : ndarray
        The whole series.
    window : int
        Records per window.
    ends : sequence of int
        Index of the last record of each window.
    **fit_kw
        Passed to ``fit``.

    Returns
    -------
    list
        Each window's fit, its ``first_index`` set to the window's start in the series
        (``None`` where ``fit`` gives none).
    """
    out: list[_Fit | None] = []
    for i in ends:
        lo = max(0, i + 1 - window)
        res = fit(days[lo : i + 1], values[lo : i + 1], **fit_kw)
        out.append(None if res is None else dataclasses.replace(res, first_index=lo))
    return out


# -- the result -----------------------------------------------------------------------


def _opt_iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class DriftResult:
    """Whether one watched quantity drifted from its baseline: HU history and AI status.

    Attributes
    ----------
    quantity : str
        What was watched: a material (HU history, also :attr:`material`) or a metric
        (AI status, also :attr:`metric`).
    method : DriftTest
        The test behind :attr:`statistic` (``cusum``, ``ewma`` or ``window``).
    values : tuple of float
        The watched series, oldest first (AI: the runs after the baseline).
    statistic : tuple of float
        The test statistic after each value (CUSUM: ``S+`` when drifting up, else
        ``-S-``; EWMA and window: the standardised mean); 0 during a baseline.
    threshold : float
        The decision limit of :attr:`statistic` (also :attr:`h`).
    alarm_index : int or None
        Index in :attr:`values` where the alarm began (by any test), or ``None``.
    baseline_mean, baseline_sd : float
        The baseline and its noise or standard error (``nan`` without enough records;
        also :attr:`baseline` and :attr:`sigma`).
    message : str
        The verdict in plain words (also :meth:`explanation`).
    direction : Direction or None
        Which way the level moved, when alarmed.
    baseline_n : int
        Leading values of :attr:`values` that form the baseline (0 when the baseline
        is outside the series, as for the AI status).
    higher_is_better : bool
        For a metric: a fall is the worsening (AI status).
    first_run : int
        1-based run number of ``values[0]`` in its history (AI status).
    scanner, phantom, module : str
        Where a HU series was measured.
    times : tuple of datetime
        The record times of a HU series; ``record_ids`` its history records.
    rate_hu_per_30d, drift_hu, drift_days : float or None
        Fitted rate (per 30 days) since the drift began, the change from the baseline,
        and the days since the drift began (HU history, when alarmed).
    low, high : float or None
        The tolerance (absolute HU) the records were judged by.
    projected_exit : datetime or None
        When the fitted line leaves the tolerance, if it is heading out.
    trend : TrendFit or None
        The trend test on the latest window (``None`` with too few records).
    trend_first_alarm_record : int or None
        The record at which the trend test's current alarm began.
    alarm_by : tuple of DriftTest
        Which tests alarm.
    step : StepFit or None
        The step test on the trend test's window.
    """

    quantity: str
    method: DriftTest
    values: tuple[float, ...]
    statistic: tuple[float, ...]
    threshold: float
    alarm_index: int | None
    baseline_mean: float
    baseline_sd: float
    message: str
    direction: Direction | None = None
    baseline_n: int = 0
    higher_is_better: bool = True
    first_run: int = 1
    scanner: str = ""
    phantom: str = ""
    module: str = ""
    times: tuple[datetime, ...] = ()
    record_ids: tuple[int, ...] = ()
    rate_hu_per_30d: float | None = None
    drift_hu: float | None = None
    drift_days: float | None = None
    low: float | None = None
    high: float | None = None
    projected_exit: datetime | None = None
    trend: TrendFit | None = None
    trend_first_alarm_record: int | None = None
    alarm_by: tuple[DriftTest, ...] = ()
    step: StepFit | None = None

    # -- derived --------------------------------------------------------------------
    @property
    def alarm(self) -> bool:
        """True when a test alarms."""
        return self.alarm_index is not None

    @property
    def first_alarm_time(self) -> datetime | None:
        """Time of the value at which the alarm began (series with times)."""
        i = self.alarm_index
        return None if i is None or not self.times else self.times[i]

    @property
    def first_alarm_record(self) -> int | None:
        """History record at which the alarm began (series with record ids)."""
        i = self.alarm_index
        return None if i is None or not self.record_ids else self.record_ids[i]

    def alarm_run(self) -> int | None:
        """1-based run number of the alarm (see :attr:`first_run`), or ``None``."""
        return None if self.alarm_index is None else self.first_run + self.alarm_index

    @property
    def shape(self) -> DriftShape | None:
        """``step`` (a sudden change between two levels), ``drift``, or ``None`` (no alarm)."""
        if not self.alarm:
            return None
        if self.step is not None and self.step.alarm and self.step.shape == DriftShape.STEP:
            return DriftShape.STEP
        return DriftShape.DRIFT

    @property
    def n_records(self) -> int:
        """Number of values in the series."""
        return len(self.values)

    # -- the names each caller knows ------------------------------------------------
    @property
    def material(self) -> str:
        """:attr:`quantity` of a HU series."""
        return self.quantity

    @property
    def metric(self) -> str:
        """:attr:`quantity` of an AI metric."""
        return self.quantity

    @property
    def baseline(self) -> float:
        """:attr:`baseline_mean`."""
        return self.baseline_mean

    @property
    def sigma(self) -> float:
        """:attr:`baseline_sd`."""
        return self.baseline_sd

    @property
    def h(self) -> float:
        """:attr:`threshold`."""
        return self.threshold

    def explanation(self) -> str:
        """:attr:`message`: the verdict in plain words."""
        return self.message

    # -- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: enums as their values, times as ISO text, NaN as ``None``.

        Returns
        -------
        dict
            The fields, the derived values (``alarm``, ``alarm_run``, ``first_alarm_time``,
            ``first_alarm_record``, ``shape``, ``n_records``) and the names each caller
            knows (``material``/``metric``, ``baseline``, ``sigma``, ``h``,
            ``explanation``).
        """
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(
            method=self.method.value,
            direction=None if self.direction is None else self.direction.value,
            values=list(self.values),
            statistic=list(self.statistic),
            times=[t.isoformat() for t in self.times],
            record_ids=list(self.record_ids),
            baseline_mean=_finite_or_none(self.baseline_mean),
            baseline_sd=_finite_or_none(self.baseline_sd),
            projected_exit=_opt_iso(self.projected_exit),
            alarm_by=[b.value for b in self.alarm_by],
            trend=None if self.trend is None else self._trend_dict(self.trend),
            step=None if self.step is None else self._step_dict(self.step),
            alarm=self.alarm,
            alarm_run=self.alarm_run(),
            first_alarm_time=_opt_iso(self.first_alarm_time),
            first_alarm_record=self.first_alarm_record,
            shape=None if self.shape is None else self.shape.value,
            n_records=self.n_records,
            material=self.quantity,
            metric=self.quantity,
            baseline=self.baseline_mean,
            sigma=self.baseline_sd,
            h=self.threshold,
            explanation=self.message,
        )
        return d

    @staticmethod
    def _trend_dict(trend: TrendFit) -> dict[str, Any]:
        slope, lo, hi = trend.per_30d()
        return {
            "n": trend.n,
            "slope_hu_per_30d": slope,
            "ci_hu_per_30d": [lo, hi],
            "confidence": trend.confidence,
            "change_hu": trend.change_hu,
            "alarm": trend.alarm,
        }

    def _step_dict(self, step: StepFit) -> dict[str, Any]:
        i = step.first_index + step.change_index
        return {
            "n": step.n,
            "change_record": self.record_ids[i] if self.record_ids else i,
            "before_hu": step.before_mean,
            "after_hu": step.after_mean,
            "shift_hu": step.shift_hu,
            "ci_hu": [step.ci_low_hu, step.ci_high_hu],
            "confidence": step.confidence,
            "alarm": step.alarm,
            "shape": None if step.shape is None else step.shape.value,
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per value: time, record_id, value, statistic, in_baseline, alarm.

        Returns
        -------
        pandas.DataFrame
            ``time`` and ``record_id`` are empty for a series without them.
        """
        import pandas as pd

        n = len(self.values)
        alarm_from = n if self.alarm_index is None else self.alarm_index
        ids: list[int | None] = list(self.record_ids) or [None] * n
        return pd.DataFrame(
            {
                "time": pd.to_datetime(list(self.times) or [pd.NaT] * n, utc=True),
                "record_id": ids,
                "value": list(self.values),
                "statistic": list(self.statistic),
                "in_baseline": [i < self.baseline_n for i in range(n)],
                "alarm": [i >= alarm_from for i in range(n)],
            }
        )
