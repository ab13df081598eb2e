"""Report runs with papermill on a real store: HTML, PDF, summary JSON, errors, chat post."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest

from noctis_lab._errors import ReportError
from noctis_lab.reports import ReportOutput, notebooks_dir, run_report

DAY = date(2026, 11, 25)


def _cli(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NOCTIS_HOME=str(env_home), MLFLOW_DISABLE_TELEMETRY="true")
    return subprocess.run(
        [sys.executable, "-m", "noctis_lab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _latest_statuses() -> dict[str, str]:
    from noctis_lab.hu.history import CalibrationHistory

    df = CalibrationHistory().scanners(drift=False)
    return dict(zip(df["scanner"], df["latest_status"], strict=True))


@pytest.mark.slow
def test_hu_report_all_scanners(store_home: Path, tmp_path: Path) -> None:
    from noctis_lab.hu._result import worst_status

    out = run_report("hu", tmp_path / "reports", day=DAY)
    assert out.ok, out.error
    latest = _latest_statuses()
    assert out.verdict == worst_status(latest.values())
    assert set(out.scanners) == set(latest)
    folder = tmp_path / "reports" / "hu" / "2026-11-25"
    assert Path(out.out_dir) == folder
    text = (folder / "hu-report.html").read_text()
    assert text.count('src="data:image/png;base64,') >= 3 * len(latest)  # slice, linearity, trend
    for key, status in latest.items():
        assert key in text
        assert f">{status}<" in text
    assert "verdict: <span" in text and out.verdict.upper() in text
    assert "Recommendations" in text and "Tolerance" in text and "Source" in text
    assert "report = hu_report(" not in text  # no code
    assert '<script src="http' not in text  # self-contained
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["verdict"] == out.verdict
    assert summary["counts"]["calibrations"] == 6
    assert sum(summary["counts"][k] for k in ("pass", "warning", "fail")) == 6
    assert ReportOutput.read(folder / "summary.json") == out
    if out.pdf is not None:
        assert Path(out.pdf).read_bytes()[:5] == b"%PDF-"
    else:
        assert any("PDF" in n for n in out.notes)


@pytest.mark.slow
def test_hu_report_one_scanner_rerun_replaces_and_posts(store_home: Path, tmp_path: Path) -> None:
    latest = _latest_statuses()
    key = sorted(latest)[0]
    serial = key.rsplit("/", 1)[1]
    room_root = tmp_path / "lab"
    room_root.mkdir()
    (room_root / "qa.chat").write_text("{}")
    first = run_report("hu", room_root / "reports", scanner=serial, day=DAY, pdf=False)
    assert first.ok, first.error
    assert first.scanners == (key,) and first.verdict == latest[key]
    marker = Path(first.out_dir) / "stale.txt"
    marker.write_text("from the first run")
    second = run_report(
        "hu",
        room_root / "reports",
        scanner=serial,
        since="2026-10-01",
        until="2026-11-30",
        day=DAY,
        pdf=False,
        post_to="qa.chat",
        chat_root=room_root,
    )
    assert second.ok, second.error
    assert second.out_dir == first.out_dir and not marker.exists()  # the day's run replaced
    assert second.counts["calibrations"] == 2  # October and November only
    assert not [p for p in (room_root / "reports" / "hu").iterdir() if p.name.startswith(".")]
    assert second.posted_to == "qa.chat", second.notes
    chat = json.loads((room_root / "qa.chat").read_text())
    body = chat["messages"][-1]["body"].replace("\\", "")  # the bot escapes markdown
    assert "HU report" in body and latest[key] in body and "hu-report.html" in body


@pytest.mark.slow
def test_ai_report(store_home: Path, store: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    from noctis_lab.ai import model_status

    model = str(store[1]["ai"]["model"])  # type: ignore[index]
    status = model_status(model)
    out = run_report("ai", tmp_path, day=DAY, pdf=False)
    assert out.ok, out.error
    assert out.verdict == status.status and out.models == (model,)
    assert out.counts["degradation_alarms"] == sum(d.alarm for d in status.drift)
    text = Path(out.html or "").read_text()
    assert model in text and "95 % CI" in text and "Feedback" in text
    assert 'src="data:image/png;base64,' in text
    for name in status.metrics:
        assert name in text


@pytest.mark.slow
def test_report_missing_scanner_fails_clearly(store_home: Path, tmp_path: Path) -> None:
    r = _cli(
        "report", "hu", "--scanner", "nope", "--out", str(tmp_path), "--quiet", env_home=store_home
    )
    assert r.returncode == 1
    assert "no scanner 'nope'" in r.stderr and "known:" in r.stderr
    [folder] = list((tmp_path / "hu").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "error" and "no scanner 'nope'" in summary["error"]
    assert summary["html"] is None
    assert "could not be made" in (folder / "error.txt").read_text()


@pytest.mark.slow
def test_reports_on_empty_store_fail(noctis_home: Path, tmp_path: Path) -> None:
    r = _cli("report", "hu", "--out", str(tmp_path), "--no-pdf", "--quiet", env_home=noctis_home)
    assert r.returncode == 1 and "No calibrations are recorded yet" in r.stderr
    assert not (noctis_home / "data" / "noctis.db").exists()  # not created by a report
    out = run_report("ai", tmp_path, pdf=False)
    assert not out.ok and out.error is not None and "No AI models are registered" in out.error


def test_bad_arguments_are_refused(noctis_home: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="unknown report 'x'"):
        run_report("x", tmp_path)
    with pytest.raises(ReportError, match="is not a date"):
        run_report("hu", tmp_path, since="last week")
    with pytest.raises(ReportError, match="the period is empty"):
        run_report("hu", tmp_path, since="2026-02-01", until="2026-01-01")


@pytest.mark.parametrize("path", sorted((notebooks_dir()).glob("*/*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_thin(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert not cell.outputs and cell.execution_count is None, "stored with outputs"
        assert "def " not in cell.source and "class " not in cell.source
    if path.parent.name == "reports":
        assert "parameters" in code[0].metadata.get("tags", [])
        assert "facts_path" in code[0].source
