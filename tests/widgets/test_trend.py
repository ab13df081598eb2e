"""TrendView and the phantom/profile browsers, on a real history of demo analyses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from noctis_lab.widgets import (
    PhantomBrowser,
    TrendView,
    phantom_table,
    profile_table,
)


@pytest.fixture
def history(demo_root: Path, noctis_home: Path) -> Any:
    """Three dates of two demo scanners, analysed and recorded in a private history."""
    from noctis_lab.dicom import load_series
    from noctis_lab.hu import analyze
    from noctis_lab.hu.history import CalibrationHistory

    demo = demo_root / "data" / "demo"
    series = json.loads((demo / "manifest.json").read_text())["series"]
    h = CalibrationHistory()
    for slug in ("ct-onc-1", "ct-rt-4"):
        for entry in [e for e in series if e["scanner_slug"] == slug][-3:]:
            result = analyze(load_series(demo / entry["path"]), entry["phantom"], "seed")
            h.record(result, operator="test")
    yield h
    h.close()


def test_trend_view_shows_a_scanner_and_switches(history: Any) -> None:
    keys = list(history.scanners(drift=False)["scanner"])
    view = TrendView(history=history)
    assert [k for _, k in view.scanner_select.options] == keys  # (station label, key)
    assert all(label.startswith("CT") for label, _ in view.scanner_select.options)
    assert view.scanner == keys[0]
    assert view.figure is not None
    assert view.output.outputs, "the figure is drawn into the Output widget"
    assert view.trend["record_id"].nunique() == 3
    assert "Air" in view.material_select.options
    view.material_select.value = "Air"
    assert set(view.trend["material"]) == {"Air"}
    assert len(view.figure.axes) >= 1
    view.scanner_select.value = keys[1]
    assert view.material is None and set(view.trend["scanner"]) == {keys[1]}
    bundle = view._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle


def test_trend_view_marks_the_failing_scanner(history: Any) -> None:
    # ct-rt-4 is miscalibrated on its last two dates: its records fail
    key = next(k for k in history.scanners(drift=False)["scanner"] if "Canon" in k or "CANON" in k)
    view = TrendView(key, material="Air", history=history)
    assert "fail" in set(view.trend["record_status"])
    assert set(view.trend["material"]) == {"Air"}


def test_trend_view_errors_name_the_choices(history: Any) -> None:
    with pytest.raises(ValueError, match="scanners: "):
        TrendView("ACME/none/0", history=history)
    key = history.scanners(drift=False)["scanner"].iloc[0]
    with pytest.raises(ValueError, match="materials: "):
        TrendView(key, material="Unobtainium", history=history)


def test_trend_view_on_an_empty_history(noctis_home: Path) -> None:
    view = TrendView()
    assert view.scanner is None and view.figure is None
    assert "No calibrations" in view.message.value


def test_phantom_and_profile_tables() -> None:
    t = phantom_table("catphan604")
    air = t[(t["module"] == "CTP404") & (t["roi"] == "air_top")].iloc[0]
    assert (air["nominal_hu"], air["low_hu"], air["high_hu"]) == (-1000, -1046, -986)
    p = profile_table("seed")
    assert p["source"].str.len().min() > 5
    b = PhantomBrowser("acr464")
    assert b.module_select.value in b.module_select.options
    b.phantom_select.value = "catphan604"
    assert b.module_select.value == "CTP404"
    with pytest.raises(ValueError, match="unknown phantom"):
        PhantomBrowser("nope")
