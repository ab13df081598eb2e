"""The one status vocabulary, palette and drift statistics (noctis_lab.quality)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from noctis_lab._errors import NoctisError
from noctis_lab.quality import (
    PALETTE,
    Direction,
    DriftResult,
    DriftTest,
    Status,
    UnknownStatusError,
    badge_css,
    cusum,
    ewma,
    fit_windows,
    trend_fit,
    window_z,
    worst_status,
)


def test_status_is_a_str_enum_that_serialises_as_its_value() -> None:
    assert Status.PASS == "pass" and f"{Status.REVIEW}" == "review"
    assert json.dumps({"status": Status.REVIEW}) == '{"status": "review"}'
    assert Status.REVIEW.label == "needs review" and Status.NOT_CHECKED.label == "not checked"
    assert Status.parse("needs review") is Status.REVIEW
    assert Status.parse(" Pass ") is Status.PASS
    with pytest.raises(UnknownStatusError, match="'great'") as err:
        Status.parse("great")
    assert isinstance(err.value, NoctisError) and isinstance(err.value, ValueError)


def test_worst_status_follows_the_documented_order() -> None:
    order = ["not_checked", "excellent", "good", "pass", "warning", "fail", "review"]
    for i, better in enumerate(order):
        for worse in order[i + 1 :]:
            assert worst_status(better, worse, default="not_checked") == worse
            assert worst_status(worse, better, default="not_checked") == worse
    assert worst_status("fail", "error") == "fail"  # a tie keeps the first seen
    assert worst_status("error", "fail") == "error"
    assert worst_status() is Status.PASS
    assert worst_status(["not_checked"]) is Status.PASS  # no verdict adds none
    assert worst_status(["pass"], default="not_checked") is Status.PASS
    assert worst_status(default="excellent") is Status.EXCELLENT
    assert worst_status("good", None, (s for s in ["warning", None])) is Status.WARNING
    with pytest.raises(UnknownStatusError):
        worst_status("pass", "great")


def _luminance(colour: str) -> float:
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_every_status_has_a_readable_badge_and_its_own_colour_where_it_matters() -> None:
    assert set(PALETTE) == set(Status)
    for status, sw in PALETTE.items():
        hi, lo = sorted((_luminance(sw.fg), _luminance(sw.bg)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, status
    hu = {PALETTE[Status(s)].colour for s in ("pass", "warning", "fail", "review", "not_checked")}
    ai = {PALETTE[Status(s)].colour for s in ("excellent", "good", "warning", "error")}
    assert len(hu) == 5 and len(ai) == 4
    assert "transparent" not in badge_css("excellent") and "transparent" not in badge_css("good")
    assert "transparent" in badge_css("not a status")


def _cusum_by_hand(z: list[float], k: float) -> tuple[list[float], list[float]]:
    sp = sm = 0.0
    up, down = [], []
    for v in z:
        if math.isfinite(v):
            sp, sm = max(0.0, sp + v - k), max(0.0, sm - v - k)
        up.append(sp)
        down.append(sm)
    return up, down


def test_cusum_ewma_and_window_statistics() -> None:
    z = [0.2, 1.5, math.nan, 2.0, -3.0, 0.5, 4.0]
    up, down = cusum(z, 0.5)
    ref_up, ref_down = _cusum_by_hand(z, 0.5)
    assert up.tolist() == ref_up and down.tolist() == ref_down
    e = ewma([1.0, 1.0, 1.0], 0.5)
    assert e.tolist() == [0.5, 0.75, 0.875]
    zs = window_z([0.9, 0.8], [0.01, 0.01], baseline=0.9, baseline_sigma=0.01, window=5)
    assert zs[0] == pytest.approx(0.0)
    assert zs[1] == pytest.approx(0.05 / math.sqrt(1e-4 + 2e-4 / 4))


def test_windowed_fits_start_where_their_window_does() -> None:
    days = np.arange(10.0)
    x = 1000.0 + 0.8 * days
    fits = fit_windows(trend_fit, days, x, window=4, ends=[1, 5, 9])
    assert fits[0] is None  # two records: no line
    assert [f.first_index for f in fits[1:] if f is not None] == [2, 6]
    assert all(f is not None and f.slope_per_day == pytest.approx(0.8) for f in fits[1:])


def test_one_drift_result_serves_both_callers() -> None:
    res = DriftResult(
        quantity="auroc",
        method=DriftTest.WINDOW,
        values=(0.9, 0.7),
        statistic=(0.1, 3.0),
        threshold=2.5,
        alarm_index=1,
        baseline_mean=0.9,
        baseline_sd=math.nan,
        message="auroc has fallen",
        direction=Direction.DOWN,
        first_run=2,
    )
    assert res.alarm and res.alarm_run() == 3 and res.metric == res.material == "auroc"
    assert res.first_alarm_time is None and res.first_alarm_record is None
    d = json.loads(json.dumps(res.to_dict()))
    assert d["method"] == "window" and d["direction"] == "down" and d["baseline_sd"] is None
    assert d["alarm"] is True and d["explanation"] == "auroc has fallen" and d["h"] == 2.5
    assert res.to_dataframe()["alarm"].tolist() == [False, True]


def test_healthy_ai_models_get_a_coloured_badge() -> None:
    import re

    from noctis_lab.ai import ModelStatus
    from noctis_lab.reports._dashboard_data import ai_overview_frame
    from noctis_lab.reports._panels import status_html, styled_table

    statuses = [
        ModelStatus(name, "1", status, {"file": status}, ())
        for name, status in (("a", "excellent"), ("b", "good"), ("c", "error"))
    ]
    assert all(type(s.status) is Status for s in statuses)
    assert statuses[0].to_dict()["status"] == "excellent"
    table = styled_table(ai_overview_frame(statuses))
    for row, status in enumerate(("excellent", "good", "error")):
        cell = re.search(rf"#T_\w+_row{row}_col3 \{{([^}}]*)\}}", table)
        assert cell is not None and f"background-color: {PALETTE[Status(status)].bg}" in cell.group(
            1
        ), (status, cell)
    assert PALETTE[Status.EXCELLENT].fg in status_html(statuses[0].status)
