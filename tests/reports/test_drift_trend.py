"""The trend test beside CUSUM: a drift is seen from a few records; noise stays quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from noctis_lab.hu._drift import detect_drift, trend_fit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(days=35 * i) for i in range(80)]


def test_trend_fit_matches_an_independent_regression() -> None:
    rng = np.random.default_rng(4)
    days = np.array([0.0, 30.0, 61.0, 95.0, 120.0, 151.0, 180.0])
    x = 2.0 + 0.05 * days + rng.normal(0, 0.7, days.size)
    fit = trend_fit(days, x, alpha=0.05)
    assert fit is not None
    ref = stats.linregress(days, x)
    half = stats.t.ppf(0.975, days.size - 2) * ref.stderr
    assert fit.slope_per_day == pytest.approx(ref.slope)
    assert fit.ci_low_per_day == pytest.approx(ref.slope - half)
    assert fit.ci_high_per_day == pytest.approx(ref.slope + half)
    assert trend_fit([0.0, 1.0], [1.0, 2.0]) is None  # two points: no interval


def test_demo_like_drift_alarms_from_eight_records_where_cusum_cannot() -> None:
    # the case: water climbs about 0.9 HU per monthly record, 8 records
    rng = np.random.default_rng(202)
    x = -1.0 + 0.9 * np.arange(8) + rng.normal(0, 0.6, 8)
    d = detect_drift(TIMES[:8], x, material="Water", scanner="CT-RAD-2", low=-4, high=4)
    assert d.alarm and d.alarm_by == ("trend",) and d.direction == "up"
    assert np.isnan(d.baseline_mean)  # the CUSUM still needs its baseline of 10
    assert d.trend is not None and d.trend.ci_low_per_day > 0
    assert "Water on CT-RAD-2 has drifted +" in d.message and "95 % CI" in d.message
    assert d.first_alarm_record is not None and d.first_alarm_record <= 7
    assert d.to_dict()["trend"]["alarm"] is True
    # the same values without the drift: no alarm (the test can fail)
    flat = x - 0.9 * np.arange(8)
    quiet = detect_drift(TIMES[:8], flat, material="Water", low=-4, high=4)
    assert not quiet.alarm and quiet.alarm_by == () and "no trend alarm" in quiet.message


def test_long_drift_alarms_by_both_tests() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(0, 0.6, 18)
    x[10:] += 0.9 * np.arange(1, 9)
    d = detect_drift(TIMES[:18], x, material="Water", low=-4, high=4)
    assert d.alarm_by == ("cusum", "trend")
    assert "the trend test agrees" in d.message


@pytest.mark.parametrize("n", [8, 20, 60])
def test_trend_test_stays_quiet_on_noise(n: int) -> None:
    alarms = sum(
        "trend" in detect_drift(TIMES[:n], np.random.default_rng(s).normal(0, 1, n)).alarm_by
        for s in range(100)
    )
    assert alarms <= 2, f"{alarms} trend false alarms in 100 noise-only series of {n}"


def test_bad_trend_parameters() -> None:
    with pytest.raises(ValueError, match="trend_min_n must be at least 3"):
        detect_drift(TIMES[:8], [0.0] * 8, trend_min_n=2)
    with pytest.raises(ValueError, match="trend_alpha"):
        detect_drift(TIMES[:8], [0.0] * 8, trend_alpha=1.5)


def _canon_like(step: float, rng: np.random.Generator) -> np.ndarray:
    """The demo's Canon: six stable monthly records, then the last two shifted."""
    x = rng.normal(0, 0.6, 8)
    x[6:] += step
    return x


def test_a_step_reads_as_a_step_not_as_a_drift() -> None:
    x = _canon_like(14.0, np.random.default_rng(404))
    d = detect_drift(TIMES[:8], x, material="Water", scanner="CT-RT-4", low=-4, high=4)
    assert d.alarm and d.shape == "step" and "step" in d.alarm_by, d.message
    assert d.first_alarm_record == 6 and d.first_alarm_time == TIMES[6]
    assert d.step is not None and d.step.ci_low_hu > 10 and d.rate_hu_per_30d is None
    assert d.message.startswith("Water on CT-RT-4 stepped +1")
    assert "a sudden change, not a drift" in d.message and "now outside" in d.message
    assert d.to_dict()["step"]["change_record"] == 6 and d.to_dict()["shape"] == "step"
    # without the step the same records are quiet (the test can fail)
    quiet = detect_drift(TIMES[:8], _canon_like(0.0, np.random.default_rng(404)), low=-4, high=4)
    assert not quiet.alarm and quiet.shape is None


def test_a_drift_stays_a_drift() -> None:
    rng = np.random.default_rng(202)
    x = -1.0 + 0.9 * np.arange(8) + rng.normal(0, 0.6, 8)  # the GE-like climb
    d = detect_drift(TIMES[:8], x, material="Water", low=-4, high=4)
    assert d.alarm and d.shape == "drift" and d.alarm_by == ("trend",), d.message
    assert "has drifted" in d.message and "stepped" not in d.message
    y = rng.normal(0, 0.6, 18)  # flat ten, then a climb: CUSUM and trend, still a drift
    y[10:] += 0.9 * np.arange(1, 9)
    assert detect_drift(TIMES[:18], y, low=-4, high=4).shape == "drift"


@pytest.mark.parametrize("n", [8, 20])
def test_step_test_stays_quiet_on_noise(n: int) -> None:
    alarms = sum(
        "step" in detect_drift(TIMES[:n], np.random.default_rng(s).normal(0, 1, n)).alarm_by
        for s in range(100)
    )
    assert alarms <= 2, f"{alarms} step false alarms in 100 noise-only series of {n}"
