"""The trend plot and the ``hu history`` / ``hu trend`` command handlers."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from _history_factory import make_result

from noctis_lab import HistoryError, NoctisError
from noctis_lab.cli._hu_history import register as register_history_commands
from noctis_lab.hu.history import CalibrationHistory, plot_trend

KEY = "GE/Revolution/123"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def drifting_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('hist') / 'h.db'}"
    rng = np.random.default_rng(7)
    with CalibrationHistory(url) as h:
        for i in range(36):
            off = {"Teflon": 0.3 * max(0, i - 9)}
            h.record(make_result(T0 + timedelta(days=i), offsets=off, noise_sd=1.0, rng=rng), "me")
    return url


def test_plot_trend_panels_band_and_alarm(drifting_db: str, tmp_path: Path) -> None:
    with CalibrationHistory(drifting_db) as h:
        fig = h.plot_trend(KEY, material="Teflon")
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert len(axes) == 1
        ax = axes[0]
        labels = {line.get_label() for line in ax.get_lines()}
        assert {"nominal", "drift alarm"} <= labels
        assert "DRIFT" in ax.get_title()
        assert ax.collections, "the tolerance band is drawn"
        lo, hi = ax.get_ylim()
        assert lo < 990.0 and hi > 1010.0  # band fully visible
        out = tmp_path / "trend.png"
        fig.savefig(out, dpi=60)
        assert out.stat().st_size > 5000
        # the DataFrame form: all materials, one panel each
        df = h.trend(KEY)
    fig2 = plot_trend(df, drift=False)
    assert (
        len([a for a in fig2.axes if a.get_visible()]) == df.groupby(["module", "material"]).ngroups
    )
    with pytest.raises(HistoryError, match="nothing to plot"):
        plot_trend(df.iloc[0:0])


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="noctis-lab hu")
    sub = parser.add_subparsers(dest="hu_command")
    register_history_commands(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_cli_history_json_and_table(drifting_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["history", "--db", drifting_db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["scanners"]
    assert row["scanner"] == KEY and row["n_records"] == 36 and row["drift_alarm"] is True
    assert _run(["history", "--db", drifting_db, "--scanner", KEY, "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("catphan604") == 3
    assert _run(["history", "--db", drifting_db]) == 0
    assert "DRIFT: Teflon on GE/Revolution/123" in capsys.readouterr().out


def test_cli_trend_json_and_plot(
    drifting_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "t.png"
    argv = [
        "trend",
        KEY,
        "--db",
        drifting_db,
        "--material",
        "Teflon",
        "--json",
        "--plot",
        str(plot),
    ]
    assert _run(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["trend"]) == 36 and data["drift"][0]["alarm"] is True
    assert data["drift"][0]["rate_hu_per_30d"] > 0 and plot.stat().st_size > 5000
    assert _run(["trend", KEY, "--db", drifting_db, "--material", "Air"]) == 0
    assert "Air on GE/Revolution/123 is stable" in capsys.readouterr().out


def test_cli_errors_name_the_thing(drifting_db: str) -> None:
    # the scanner may be named by key or station name; an unknown one is named back
    for argv in (["trend", "Nope/X/1"], ["history", "--scanner", "Nope/X/1"]):
        with pytest.raises(NoctisError, match=r"scanner 'Nope/X/1'.*GE/Revolution/123"):
            _run([*argv, "--db", drifting_db])


def test_real_analysis_recorded_through_the_cli(tmp_path: Path) -> None:
    """End to end: analyse a synthetic series, record it, read it back via ``noctis-lab``."""
    from noctis_lab.cli import main
    from noctis_lab.hu._analyze import analyze
    from noctis_lab.hu.synthetic import generate

    series = generate(
        "catphan604",
        matrix=256,
        pixel_size_mm=1.0,
        slice_thickness_mm=5.0,
        noise_sd_hu=5.0,
        material_offsets_hu={"Teflon": 25.0},
        acquisition_datetime="2026-01-15T10:30:00",
    )
    result = analyze(series, profile="manufacturer")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with CalibrationHistory(url) as h:
        rid = h.record(result, operator="physicist")
        assert h.get(rid).result == result
        teflon = h.trend(result.scanner.key, material="Teflon").iloc[0]
        check = next(c for c in result.checks if c.target.startswith("CTP404/teflon"))
        assert (teflon["low"], teflon["high"]) == (check.low, check.high)
        assert teflon["mean"] == pytest.approx(1025.0, abs=3.0)
        assert str(teflon["time"]) == "2026-01-15 10:30:00+00:00"
    assert main(["hu", "history", "--db", url, "--scanner", result.scanner.key]) == 0
    assert main(["hu", "trend", "No/Such/Scanner", "--db", url]) == 2
