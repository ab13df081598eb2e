"""Drift detection: a planted slow drift is flagged inside tolerance; noise stays quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from _history_factory import make_result

from noctis_lab.hu._drift import detect_drift
from noctis_lab.hu.history import CalibrationHistory

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(days=i) for i in range(80)]


def _series(seed: int, n_base: int = 10, n_after: int = 50, slope: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 1000.0 + rng.normal(0.0, 1.0, n_base + n_after)
    x[n_base:] += slope * np.arange(1, n_after + 1)
    return x


@pytest.mark.parametrize("method", ["cusum", "ewma"])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_slow_drift_alarms_while_still_inside_tolerance(method: str, seed: int) -> None:
    x = _series(seed, slope=0.3)  # 0.3 HU per record on noise SD 1 HU, tolerance ±10 HU
    d = detect_drift(
        TIMES[: x.size],
        x,
        scanner="GE/Revolution/123",
        material="Teflon",
        nominal=1000.0,
        low=990.0,
        high=1010.0,
        method=method,  # type: ignore[arg-type]
    )
    assert d.alarm and d.direction == "up" and d.first_alarm_record is not None
    i = d.record_ids.index(d.first_alarm_record)
    assert i >= 10  # never during the baseline
    assert abs(x[i] - 1000.0) < 10.0, "the alarm must come before the value leaves tolerance"
    # the drift reached tolerance only later: the alarm was early
    assert i < int(np.argmax(np.abs(x - 1000.0) > 10.0))
    assert d.rate_hu_per_30d is not None and 6.0 < d.rate_hu_per_30d < 12.0  # true: 9 HU/30 d
    assert d.first_alarm_time == TIMES[i]
    assert "Teflon on GE/Revolution/123 has drifted +" in d.message
    assert "per month" in d.message and "1000 ± 10 HU" in d.message


def test_alarm_message_projects_the_exit_date() -> None:
    x = _series(5, n_after=25, slope=0.3)
    d = detect_drift(TIMES[: x.size], x, material="Teflon", nominal=1000, low=990, high=1010)
    assert d.alarm and d.projected_exit is not None
    assert d.projected_exit > TIMES[x.size - 1]
    assert f"around {d.projected_exit.date().isoformat()}" in d.message
    frame = d.to_dataframe()
    assert len(frame) == x.size and frame["alarm"].sum() == x.size - d.record_ids.index(
        d.first_alarm_record
    )
    assert d.to_dict()["first_alarm_time"] == d.first_alarm_time.isoformat()  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["cusum", "ewma"])
def test_pure_noise_stays_quiet(method: str) -> None:
    quiet = [
        not detect_drift(TIMES[:60], _series(seed), method=method).alarm  # type: ignore[arg-type]
        for seed in range(20)
    ]
    # about 3-4 % false alarms per 50 records are expected (see _drift's docstring)
    assert sum(quiet) >= 18, f"{20 - sum(quiet)} false alarms in 20 noise-only series"


def test_downward_drift_and_marked_baseline() -> None:
    x = _series(21, n_base=4, n_after=40, slope=-0.4)
    marked = [True] * 4 + [False] * 40
    d = detect_drift(TIMES[:44], x, baseline=marked, low=990.0, high=1010.0)
    assert d.alarm and d.direction == "down" and d.baseline_n == 4
    assert d.rate_hu_per_30d is not None and d.rate_hu_per_30d < 0


def test_not_enough_records_and_bad_parameters() -> None:
    d = detect_drift(TIMES[:6], [1000.0] * 6, material="Air")
    assert not d.alarm and "not enough records" in d.message
    with pytest.raises(ValueError, match="drift method must be 'cusum' or 'ewma'"):
        detect_drift(TIMES[:20], [0.0] * 20, method="shewhart")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline_n must be at least 3"):
        detect_drift(TIMES[:20], [0.0] * 20, baseline_n=2)
    with pytest.raises(ValueError, match="3 times but 2 values"):
        detect_drift(TIMES[:3], [0.0, 1.0])


def test_quiet_scanner_does_not_alarm_on_a_tiny_step() -> None:
    # SD 0.05 HU: a 0.4 HU step is many SDs but below min_shift_hu (1 HU)
    rng = np.random.default_rng(2)
    x = 0.0 + rng.normal(0, 0.05, 40)
    x[10:] += 0.4
    assert not detect_drift(TIMES[:40], x).alarm
    assert detect_drift(TIMES[:40], x, min_shift_hu=0.2, min_sd=0.05).alarm


def test_history_drift_per_material(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    with CalibrationHistory(f"sqlite:///{tmp_path / 'h.db'}") as h:
        ids = []
        for i in range(40):
            off = {"Teflon": 0.3 * max(0, i - 9)}
            ids.append(h.record(make_result(TIMES[i], offsets=off, noise_sd=1.0, rng=rng), "me"))
        drifts = {d.material: d for d in h.drift("GE/Revolution/123")}
        assert drifts["Teflon"].alarm and drifts["Teflon"].direction == "up"
        assert drifts["Teflon"].low == 990.0 and drifts["Teflon"].high == 1010.0
        assert [m for m, d in drifts.items() if d.alarm] == ["Teflon"]
        row = h.scanners(now=TIMES[40]).iloc[0]
        assert bool(row["drift_alarm"]) and "Teflon on GE/Revolution/123" in row["drift"]
        # rejecting the drifting records by review removes them from drift detection
        for rid in ids[12:]:
            h.review(rid, "lead", "rejected", "phantom was mispositioned")
        assert not {d.material: d for d in h.drift("GE/Revolution/123")}["Teflon"].alarm
