"""Report runs with papermill on a real store: HTML, PDF, summary JSON, errors, chat post."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest
from _pdf import blank_pages, missing_from_pdf, orphaned_headings, pdf_pages, row_line

from noctis_lab._browser import CHROMIUM_ARGS
from noctis_lab._errors import ReportError
from noctis_lab.reports import ReportOutput, notebooks_dir, run_report

DAY = date(2026, 11, 25)


def _cli(
    *args: str, env_home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, NOCTIS_HOME=str(env_home), MLFLOW_DISABLE_TELEMETRY="true", **(env or {})
    )
    return subprocess.run(
        [sys.executable, "-m", "noctis_lab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def requests_off_machine(html: Path, chromium: Path) -> list[str]:
    """What a page asks for beyond the machine (blocked) when Chromium opens it."""
    from playwright.sync_api import sync_playwright

    asked: list[str] = []

    def route(r: object) -> None:
        url = r.request.url  # type: ignore[attr-defined]
        if url.startswith(("file:", "data:", "blob:")):
            r.continue_()  # type: ignore[attr-defined]
        else:
            asked.append(url)
            r.abort()  # type: ignore[attr-defined]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=list(CHROMIUM_ARGS))
        page = browser.new_page()
        page.route("**/*", route)
        page.goto(html.as_uri(), wait_until="networkidle")
        browser.close()
    return asked


def _latest_statuses() -> dict[str, str]:
    from noctis_lab.hu.history import CalibrationHistory

    df = CalibrationHistory().scanners(drift=False)
    return dict(zip(df["scanner"], df["latest_status"], strict=True))


@pytest.mark.slow
@pytest.mark.browser
def test_hu_report_all_scanners(
    store_home: Path, tmp_path: Path, chromium_path: Path, test_output: Path
) -> None:
    from noctis_lab.hu._result import worst_status
    from noctis_lab.hu.history import CalibrationHistory
    from noctis_lab.reports._dashboard_data import hu_checks_frame, hu_overview_frame
    from noctis_lab.reports._panels import status_text

    out = run_report("hu", tmp_path / "reports", day=DAY)
    assert out.ok, out.error
    latest = _latest_statuses()
    assert out.verdict == worst_status(latest.values())
    assert set(out.scanners) == set(latest)
    folder = tmp_path / "reports" / "hu" / "2026-11-25"
    assert Path(out.out_dir) == folder
    text = (folder / "hu-report.html").read_text()
    assert text.count('src="data:image/png;base64,') >= 3 * len(latest)  # slice, linearity, trend
    history = CalibrationHistory()
    names = dict(zip(*(hu_overview_frame(history)[c] for c in ("Key", "Scanner")), strict=True))
    for key, status in latest.items():
        assert names[key] in text  # station names, not "None"
        assert f">{status_text(status)}<" in text
    assert "None, None" not in text and "Scanners" in text
    assert "Recommendations" in text and "Tolerance" in text and "Source" in text
    assert "report = hu_report(" not in text  # no code
    assert '<script src="http' not in text  # self-contained
    assert requests_off_machine(folder / "hu-report.html", chromium_path) == []
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["verdict"] == out.verdict
    assert summary["counts"]["calibrations"] == 6
    assert sum(summary["counts"][k] for k in ("pass", "warning", "fail", "review")) == 6
    assert ReportOutput.read(folder / "summary.json") == out
    assert out.pdf is not None, out.notes
    pdf = Path(out.pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    shutil.copy(pdf, test_output / "hu-report.pdf")
    pages = pdf_pages(pdf)
    whole = "\n".join(pages)
    # the cover: scanners by station, period, profile with its source, sign-off fields
    cover = pages[0]
    for key in latest:
        assert names[key].split(" — ")[0] in cover
    for field in (
        "Period",
        "Tolerance profile",
        "seed v1.0",
        "Sources",
        "Reviewed by",
        "Decision",
        "Signature",
        "Date",
    ):
        assert field in cover, field
    # page numbers, no developer hints, no database path
    assert all(f"page {i} of {len(pages)}" in p for i, p in enumerate(pages, start=1))
    for hint in ("Run it with", "noctis-lab report", "sqlite:", "noctis.db", "None, None"):
        assert hint not in whole, hint
    # every column of every check row of every scanner is on the page (nothing cut)
    for key in latest:
        rec = history.latest(key)
        frame = hu_checks_frame(rec)
        assert len(frame) >= 4
        for _, row in frame.iterrows():
            cells = [row[c] for c in frame.columns]
            cells[list(frame.columns).index("Status")] = status_text(row["Status"])
            cells[-1] = str(row["Source"]).partition(": ")[0]
            assert row_line(pages, cells) is not None, f"row cut or missing: {cells}"
    assert not orphaned_headings(pages), orphaned_headings(pages)
    assert not blank_pages(pages), f"blank pages {blank_pages(pages)} of {len(pages)}"
    # the HTML and the PDF carry the same content
    assert not missing_from_pdf(text, pages_raw := pdf_pages(pdf, layout=False)), missing_from_pdf(
        text, pages_raw
    )


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
@pytest.mark.browser
def test_ai_report(
    store_home: Path,
    store: tuple[Path, dict[str, object]],
    tmp_path: Path,
    chromium_path: Path,
    test_output: Path,
) -> None:
    from noctis_lab.ai import model_status
    from noctis_lab.reports._dashboard_data import ai_overview_frame

    model = str(store[1]["ai"]["model"])  # type: ignore[index]
    status = model_status(model)
    out = run_report("ai", tmp_path, day=DAY)
    assert out.ok, out.error
    assert out.verdict == status.status and out.models == (model,)
    assert out.counts["degradation_alarms"] == sum(d.alarm for d in status.drift)
    text = Path(out.html or "").read_text()
    assert model in text and "95 % CI" in text and "Feedback" in text
    assert 'src="data:image/png;base64,' in text
    for name in status.metrics:
        assert name in text
    assert out.pdf is not None, out.notes
    shutil.copy(out.pdf, test_output / "ai-report.pdf")
    pages = pdf_pages(Path(out.pdf))
    whole = "\n".join(pages)
    assert "Reviewed by" in pages[0] and "Signature" in pages[0] and model in pages[0]
    assert all(f"page {i} of {len(pages)}" in p for i, p in enumerate(pages, start=1))
    assert "Run it with" not in whole and "sqlite:" not in whole
    overview = ai_overview_frame([status])
    for _, row in overview.iterrows():
        cells = [str(v) for v in row]
        assert row_line(pages, cells) is not None, f"models row cut: {cells}"
    assert not orphaned_headings(pages), orphaned_headings(pages)
    assert not blank_pages(pages), f"blank pages {blank_pages(pages)} of {len(pages)}"


def test_report_missing_scanner_is_refused_before_running(store_home: Path, tmp_path: Path) -> None:
    r = _cli(
        "report", "hu", "--scanner", "nope", "--out", str(tmp_path), "--quiet", env_home=store_home
    )
    assert r.returncode == 2, r.stderr
    assert "no scanner 'nope'" in r.stderr and "known:" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "hu").exists()  # refused before any folder or kernel


def test_reports_on_empty_store_are_refused(noctis_home: Path, tmp_path: Path) -> None:
    r = _cli("report", "hu", "--out", str(tmp_path), "--no-pdf", "--quiet", env_home=noctis_home)
    assert r.returncode == 2 and "No calibrations are recorded yet" in r.stderr
    assert not (noctis_home / "data" / "noctis.db").exists()  # not created by a report
    with pytest.raises(ReportError, match="No AI models are registered"):
        run_report("ai", tmp_path, pdf=False)
    assert not (noctis_home / "mlflow" / "mlflow.db").exists()


@pytest.mark.slow
def test_a_report_failing_while_made_exits_1_with_its_error_file(
    store_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs pass the checks, the notebook then fails: exit 1, summary and error.txt kept."""
    nbs = tmp_path / "notebooks"
    shutil.copytree(notebooks_dir(), nbs)
    broken = nbs / "reports" / "hu_qa_report.ipynb"
    nb = nbformat.read(broken, as_version=4)
    nb.cells[1].source += "\nraise RuntimeError('the disk went away')"
    nbformat.write(nb, broken)
    r = _cli(
        "report",
        "hu",
        "--out",
        str(tmp_path / "out"),
        "--no-pdf",
        "--quiet",
        env_home=store_home,
        env={"NOCTIS_NOTEBOOKS": str(nbs)},
    )
    assert r.returncode == 1, r.stderr
    assert "RuntimeError: the disk went away" in r.stderr
    [folder] = list((tmp_path / "out" / "hu").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "error" and "the disk went away" in summary["error"]
    assert summary["html"] is None
    assert "could not be made" in (folder / "error.txt").read_text()


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
