"""A drifting scanner reads as drifting on the dashboard, from eight records (the demo's case)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hu_history"))

from _history_factory import make_result  # the history tests' CatPhan result factory

from noctis_lab.hu.history import CalibrationHistory
from noctis_lab.reports._dashboard_data import hu_drift_frame, hu_overview_frame

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def _history(tmp_path: Path, slope: float) -> CalibrationHistory:
    """Eight monthly records: every material climbs ``slope`` HU per record (noise 0.6)."""
    rng = np.random.default_rng(3)
    history = CalibrationHistory(f"sqlite:///{tmp_path / 'h.db'}")
    for i in range(8):
        off = {m: slope * i for m in ("Water-equivalent", "Air", "Teflon", "Acrylic")}
        result = make_result(T0 + timedelta(days=35 * i), offsets=off, noise_sd=0.6, rng=rng)
        history.record(result, "test")
    return history


def test_eight_records_of_a_climbing_scanner_read_as_drifting(tmp_path: Path) -> None:
    from noctis_lab.widgets import TrendView

    with _history(tmp_path, 0.9) as history:
        row = hu_overview_frame(history).iloc[0]
        assert row["Drift alarm"].startswith("⚠ drifting (trend)"), row["Drift alarm"]
        assert row["Scanner"].startswith("CT1 — ")  # the station first
        frame = hu_drift_frame(history.drift(str(row["Key"])))
        assert {"Teflon (CTP404)", "Acrylic (CTP404)"} <= set(frame["Material"])
        assert set(frame["Tests"]) == {"trend"}  # CUSUM still needs its baseline of ten
        view = TrendView(history=history)
        assert "is drifting" in view.message.value and "CT1 — " in view.message.value


def test_a_stable_scanner_reads_none(tmp_path: Path) -> None:
    from noctis_lab.widgets import TrendView

    with _history(tmp_path, 0.0) as history:
        row = hu_overview_frame(history).iloc[0]
        assert row["Drift alarm"] == "none"
        assert "no drift alarm" in TrendView(history=history).message.value


def test_a_scanner_that_stepped_reads_as_a_step(tmp_path: Path) -> None:
    """The demo's Canon case: stable, then +14 HU on the last two records."""
    from noctis_lab.widgets import TrendView

    rng = np.random.default_rng(5)
    with CalibrationHistory(f"sqlite:///{tmp_path / 'h.db'}") as history:
        for i in range(8):
            off = {m: 14.0 if i >= 6 else 0.0 for m in ("Water-equivalent", "Air", "Teflon")}
            result = make_result(T0 + timedelta(days=35 * i), offsets=off, noise_sd=0.6, rng=rng)
            history.record(result, "test")
        row = hu_overview_frame(history).iloc[0]
        assert row["Drift alarm"].startswith("⚠ step change ("), row["Drift alarm"]
        assert "drifting" not in row["Drift alarm"]
        frame = hu_drift_frame(history.drift(str(row["Key"])))
        assert set(frame["Kind"]) == {"step"} and "Water-equivalent (CTP486)" in set(
            frame["Material"]
        )
        view = TrendView(history=history)
        assert "changed suddenly (a step)" in view.message.value
