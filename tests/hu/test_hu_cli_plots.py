"""The ``noctis-lab hu`` command and the plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import matplotlib
import pytest

from noctis_lab.cli import main
from noctis_lab.hu import analyze
from noctis_lab.hu.synthetic import write

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory, make):
    folder = tmp_path_factory.mktemp("catphan") / "series"
    write(make(noise_sd_hu=3.0, offset_hu=6.0, seed=51), folder)
    return folder


def test_analyze_json(series_dir, capsys):
    assert main(["hu", "analyze", str(series_dir), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "fail" and d["phantom"] == "catphan604" and d["profile"] == "seed"
    assert d["scanner"]["manufacturer"]
    water = next(r for r in d["rois"] if r["name"] == "centre")
    assert water["nominal"] == 0 and water["status"] == "fail"
    assert water["mean"] == pytest.approx(6.0, abs=1.0)
    assert any(r.startswith("Offset") for r in d["recommendations"])


def test_analyze_text_record_and_exit_codes(series_dir, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    assert (
        main(
            [
                "hu",
                "analyze",
                str(series_dir),
                "--profile",
                "acr-2017",
                "--record",
                "--operator",
                "tester",
                "--db-url",
                db,
                "--plot",
                str(tmp_path / "o.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "STATUS:" in out and "recorded as history record" in out
    assert (tmp_path / "o.png").stat().st_size > 10_000
    from noctis_lab.hu.history import CalibrationHistory

    with CalibrationHistory(db) as h:
        assert len(h.records()) == 1
    # the wrong phantom forced: it ran (exit 0), but the verdict is "needs review"
    assert main(["hu", "analyze", str(series_dir), "--phantom", "water"]) == 0
    out = capsys.readouterr().out
    assert "STATUS: REVIEW" in out and "not uniform" in out and "--slice" in out
    # could not run: exit 2 with one clear line
    assert main(["hu", "analyze", str(series_dir), "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_lists(capsys):
    assert main(["hu", "phantoms", "--json"]) == 0
    names = {p["name"] for p in json.loads(capsys.readouterr().out)}
    assert {"catphan604", "acr464", "water", "cirs062m"} <= names
    assert main(["hu", "profiles"]) == 0
    out = capsys.readouterr().out
    assert "seed" in out and "acr-2017" in out and "needs --baseline" in out


def test_cli_subprocess_exit_status(series_dir):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    ok = subprocess.run(
        [sys.executable, "-m", "noctis_lab.cli", "hu", "analyze", str(series_dir), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "fail"
    bad = subprocess.run(
        [sys.executable, "-m", "noctis_lab.cli", "hu", "analyze", str(series_dir / "nothing-here")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and "nothing-here" in bad.stderr


def test_plots(catphan):
    res = analyze(catphan.volume)
    fig = res.plot_slice(catphan.volume)
    assert fig.axes and len(fig.axes[0].patches) == 11
    fig2 = res.plot_slice(catphan.volume, module="CTP486")
    assert len(fig2.axes[0].patches) == 5
    lin = res.plot_linearity()
    ax = lin.axes[0]
    assert ax.get_xlabel().startswith("nominal") and ax.collections
    with pytest.raises(KeyError, match="CTP528"):
        res.plot_slice(catphan.volume, module="CTP528")
