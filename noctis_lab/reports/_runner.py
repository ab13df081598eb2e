"""Run a report notebook with papermill and write its HTML, PDF and summary JSON.

A run writes into ``OUT/<kind>/<YYYY-MM-DD>[_<selection>]/``:

- ``<kind>-report.ipynb``: the executed notebook;
- ``<kind>-report.html``: one self-contained HTML file without code (images embedded);
- ``<kind>-report.pdf``: the same, printed by headless Chromium, when it is installed;
- ``summary.json``: the machine-readable verdict (:class:`ReportOutput`);
- ``error.txt``: only when the run failed, the reason and the traceback.

The files are first written to a temporary folder beside the target and moved into
place at the end, so a rerun on the same day replaces that day's outputs whole, and
a reader never sees a half-written report. The day's folder always holds the latest
run, failed or not (a failed run says why in ``error.txt`` and ``summary.json``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from noctis_lab import _paths
from noctis_lab._browser import CHROMIUM, CHROMIUM_ARGS
from noctis_lab._errors import ReportError
from noctis_lab.reports._output import SUMMARY_NAME, ReportKind, ReportOutput

__all__ = [
    "REPORT_KINDS",
    "chromium_path",
    "html_to_pdf",
    "notebook_to_html",
    "notebooks_dir",
    "report_notebook",
    "run_report",
]

#: The reports that exist, and their notebook (relative to ``notebooks/reports``).
REPORT_KINDS: dict[str, str] = {"hu": "hu_qa_report.ipynb", "ai": "ai_performance_report.ipynb"}
_TITLES = {"hu": "HU QA report", "ai": "AI performance report"}
_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_CHROMIUM = CHROMIUM
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Cell tag of what a notebook reader needs but a report reader does not.
NOTEBOOK_ONLY = "notebook-only"
_FOOTER = (
    '<div style="font-size:8px;width:100%;padding:0 12mm;color:#455a64;'
    'font-family:DejaVu Sans,Arial,sans-serif;display:flex;justify-content:space-between">'
    '<span class="title"></span><span>page <span class="pageNumber"></span> of '
    '<span class="totalPages"></span></span></div>'
)


def notebooks_dir() -> Path:
    """The folder holding ``dashboards/`` and ``reports/`` notebooks.

    ``$NOCTIS_NOTEBOOKS`` if set, else the repository's ``notebooks/`` (beside the
    package), else ``<home>/notebooks``.
    """
    env = os.environ.get("NOCTIS_NOTEBOOKS")
    if env:
        return Path(env).resolve()
    beside = Path(__file__).resolve().parents[2] / "notebooks"
    if beside.is_dir():
        return beside
    return _paths.home() / "notebooks"


def report_notebook(kind: str) -> Path:
    """The parameterised notebook of report ``kind`` (``hu`` or ``ai``)."""
    if kind not in REPORT_KINDS:
        raise ReportError(f"unknown report {kind!r}; choose one of {sorted(REPORT_KINDS)}")
    path = notebooks_dir() / "reports" / REPORT_KINDS[kind]
    if not path.is_file():
        raise ReportError(f"the {kind} report notebook is missing: {path}")
    return path


def chromium_path() -> Path | None:
    """Debian's Chromium (or ``$NOCTIS_CHROMIUM``) when installed, else ``None``."""
    env = os.environ.get("NOCTIS_CHROMIUM")
    path = Path(env) if env else _CHROMIUM
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-.")[:80] or "x"


def _iso_date(value: str | date | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return datetime.fromisoformat(str(value)).date().isoformat()
    except ValueError:
        raise ReportError(f"{name} {value!r} is not a date (expected YYYY-MM-DD)") from None


def notebook_to_html(notebook: Path, html: Path, *, title: str | None = None) -> Path:
    """Write ``notebook`` as one self-contained HTML file without code cells.

    Code and prompts are left out, warnings printed on stderr are dropped, cells
    tagged ``notebook-only`` (how to run the notebook) are left out, images are
    embedded as base64 and no script is fetched from the network.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if NOTEBOOK_ONLY not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab",
        template_file="noctis_report.html.j2",
        extra_template_paths=[str(_TEMPLATE_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html.write_text(body, encoding="utf-8")
    return html


def html_to_pdf(html: Path, pdf: Path, *, browser: Path | None = None) -> Path:
    """Print ``html`` to ``pdf`` with headless Chromium (Playwright, system browser).

    Raises
    ------
    ReportError
        When no Chromium is installed or printing fails.
    """
    exe = browser if browser is not None else chromium_path()
    if exe is None:
        raise ReportError(f"no Chromium at {_CHROMIUM} (set NOCTIS_CHROMIUM to print PDF)")
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=str(exe), args=args)
            try:
                page = b.new_page()
                page.goto(html.resolve().as_uri(), wait_until="load")
                page.emulate_media(media="print")
                page.pdf(
                    path=str(pdf),
                    format="A4",
                    print_background=True,
                    prefer_css_page_size=True,
                    display_header_footer=True,
                    header_template="<span></span>",
                    footer_template=_FOOTER,
                    margin={"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"},
                )
            finally:
                b.close()
    except Exception as exc:  # playwright raises its own Error types
        raise ReportError(f"printing {html.name} to PDF failed: {exc}") from exc
    return pdf


def _error_text(exc: BaseException) -> tuple[str, str]:
    """One clear line and the full (plain-text) traceback of a failed run."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        line = f"{exc.ename}: {exc.evalue}"
        trace = _ANSI.sub("", "\n".join(exc.traceback))
        return line, trace
    import traceback

    line = f"{type(exc).__name__}: {exc}"
    return line, "".join(traceback.format_exception(exc))


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final``, replacing an earlier run of the same day."""
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _post(room: str, output: ReportOutput, root: Path) -> str | None:
    """Post the one-line summary (with the report's path) to a chat room under ``root``.

    Returns a note when it could not (the report itself still counts as made).
    """
    try:
        import noctis_rooms
    except ImportError:
        return f"not posted to {room}: the chat extension (noctis_rooms) is not installed"
    target = Path(output.html or output.summary)
    try:
        link = str(target.resolve().relative_to(root.resolve()))
    except ValueError:
        link = str(target)
    text = f"{output.one_line()} | report: {link}"
    try:
        noctis_rooms.post_system_message(str(root), room, text)
    except Exception as exc:
        return f"not posted to {room}: {type(exc).__name__}: {exc}"
    return None


def _check_selection(
    kind: str,
    *,
    scanner: str | None,
    since: str | None,
    until: str | None,
    calibration: str | None,
    model: str | None,
) -> None:
    """Refuse what the report could not show before a kernel starts (a ``NoctisError``)."""
    if kind == "hu":
        if model is not None:
            raise ReportError("--model is for the AI report; the HU report takes --scanner")
        from noctis_lab.reports._hu_report import check_hu_report

        check_hu_report(scanner=scanner, since=since, until=until, calibration=calibration)
    else:
        if scanner is not None or calibration is not None:
            raise ReportError("--scanner and --calibration are for the HU report")
        from noctis_lab.reports._ai_report import check_ai_report

        check_ai_report(model=model)


def _check_post(post_to: str | None, chat_root: str | Path | None) -> None:
    """Refuse a chat room that could never be posted to before the report runs."""
    if chat_root is not None and not Path(chat_root).is_dir():
        raise ReportError(f"--chat-root {chat_root}: no such folder")
    if post_to is not None and not post_to.endswith(".chat"):
        raise ReportError(f"--post-to {post_to!r}: a chat room is a .chat file")


def _make_folder(base: Path, name: str, out_dir: str | Path) -> Path:
    """Create ``base/name`` (and ``base``), or say why the output folder cannot be written."""
    try:
        base.mkdir(parents=True, exist_ok=True)
        (base / name).mkdir()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out_dir) else ""
        raise ReportError(
            f"--out {out_dir}: cannot write the report there: {reason}{where}"
        ) from None
    return base / name


def run_report(
    kind: ReportKind | str,
    out_dir: str | Path,
    *,
    scanner: str | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
    calibration: str | None = None,
    model: str | None = None,
    day: date | None = None,
    pdf: bool = True,
    post_to: str | None = None,
    chat_root: str | Path | None = None,
    timeout_s: float = 600.0,
    progress: bool = False,
) -> ReportOutput:
    """Run the ``kind`` report notebook and write its outputs under ``out_dir``.

    Parameters
    ----------
    kind : {"hu", "ai"}
        The HU QA report or the AI performance report.
    out_dir : path
        The base folder; this run writes ``out_dir/<kind>/<YYYY-MM-DD>[_<selection>]``.
    scanner : str, optional
        HU: one scanner (its key ``manufacturer/model/serial``, serial or station name).
    since, until : str or date, optional
        The period (inclusive, ``YYYY-MM-DD``).
    calibration : str, optional
        HU: one calibration (record id or result id) instead of a period.
    model : str, optional
        AI: one model instead of all.
    day : date, optional
        The date naming the output folder (default: today, local time).
    pdf : bool
        Also print a PDF when Chromium is installed (skipped with a note otherwise).
    post_to : str, optional
        A ``.chat`` room to post the one-line summary to (needs the chat extension).
    chat_root : path, optional
        The Jupyter root that ``post_to`` is relative to (default: the project home).
    timeout_s : float
        Per-cell execution limit.
    progress : bool
        Show papermill's progress bar.

    Returns
    -------
    ReportOutput
        ``status == "error"`` with :attr:`~ReportOutput.error` when the report could
        not be made; the same is written to ``summary.json`` and ``error.txt``.
    """
    if kind not in REPORT_KINDS:
        raise ReportError(f"unknown report {kind!r}; choose one of {sorted(REPORT_KINDS)}")
    nb_in = report_notebook(kind)
    since_s, until_s = _period(since, until)
    _check_post(post_to, chat_root)
    _check_selection(
        kind, scanner=scanner, since=since_s, until=until_s, calibration=calibration, model=model
    )
    folder = (day or date.today()).isoformat()
    selection = calibration or scanner or model
    if selection:
        folder += f"_{_slug(selection)}"
    base = Path(out_dir).resolve() / kind
    final = base / folder
    tmp = _make_folder(base, f".tmp-{folder}-{uuid.uuid4().hex[:8]}", out_dir)
    params: dict[str, Any] = {"since": since_s, "until": until_s}
    if kind == "hu":
        params.update(scanner=scanner, calibration=calibration)
    else:
        params.update(model=model)
    import papermill  # after the input checks: its import alone takes seconds (not timed)

    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    stem = f"{kind}-report"
    error = _execute(
        papermill.execute_notebook, kind, nb_in, tmp, params, progress=progress, timeout_s=timeout_s
    )
    facts = _take_facts(tmp / "facts.json")
    printed, notes = _print_pdf(tmp / f"{stem}.html", pdf=pdf and error is None, asked=pdf)
    output = ReportOutput(
        kind=kind,  # type: ignore[arg-type]
        status="ok" if error is None else "error",
        verdict=facts.get("verdict") if error is None else None,
        out_dir=str(final),
        notebook=str(final / f"{stem}.ipynb") if (tmp / f"{stem}.ipynb").exists() else None,
        html=str(final / f"{stem}.html") if (tmp / f"{stem}.html").exists() else None,
        pdf=str(final / f"{stem}.pdf") if printed else None,
        summary=str(final / SUMMARY_NAME),
        parameters=params,
        scanners=tuple(facts.get("scanners") or ((scanner,) if scanner else ())),
        models=tuple(facts.get("models") or ((model,) if model else ())),
        period={
            "since": facts.get("since", since_s),
            "until": facts.get("until", until_s),
        },
        counts=dict(facts.get("counts") or {}),
        started_at=started,
        duration_s=round(time.perf_counter() - t0, 3),
        error=error,
        notes=tuple(notes) + tuple(facts.get("notes") or ()),
        posted_to=None,
    )
    (tmp / SUMMARY_NAME).write_text(output.to_json(), encoding="utf-8")
    _swap_into_place(tmp, final)
    if post_to:
        root = Path(chat_root) if chat_root is not None else _paths.home()
        note = _post(post_to, output, root)
        output = _with(output, posted_to=None if note else post_to, note=note)
        Path(output.summary).write_text(output.to_json(), encoding="utf-8")
    return output


def _period(since: str | date | None, until: str | date | None) -> tuple[str | None, str | None]:
    """The period as ISO dates; a ReportError when it is empty."""
    since_s = _iso_date(since, "--since")
    until_s = _iso_date(until, "--until")
    if since_s is not None and until_s is not None and since_s > until_s:
        raise ReportError(f"the period is empty: --since {since_s} is after --until {until_s}")
    return since_s, until_s


def _execute(
    execute_notebook: Callable[..., Any],
    kind: str,
    nb_in: Path,
    tmp: Path,
    params: dict[str, Any],
    *,
    progress: bool,
    timeout_s: float,
) -> str | None:
    """Run the report notebook into ``tmp`` and export it to HTML.

    Parameters
    ----------
    execute_notebook : callable
        papermill's ``execute_notebook``.
    kind : str
        The report.
    nb_in : Path
        Its notebook.
    tmp : Path
        The run's folder: the executed notebook, its HTML, its facts (``facts.json``)
        and, when it failed, ``error.txt``.
    params : dict
        The notebook's parameters (the facts' path is added).
    progress : bool
        Show papermill's progress bar.
    timeout_s : float
        Per-cell execution limit.

    Returns
    -------
    str or None
        Why the report could not be made; None when it was.
    """
    stem = f"{kind}-report"
    try:
        execute_notebook(
            str(nb_in),
            str(tmp / f"{stem}.ipynb"),
            parameters={**params, "facts_path": str(tmp / "facts.json")},
            kernel_name="python3",
            progress_bar=progress,
            request_save_on_cell_execute=False,
            cwd=str(_paths.home()),
            execution_timeout=timeout_s,
        )
        notebook_to_html(tmp / f"{stem}.ipynb", tmp / f"{stem}.html", title=_TITLES[kind])
        if not (tmp / "facts.json").is_file():
            raise ReportError(f"the {kind} report notebook did not write its facts")
    except Exception as exc:
        error, trace = _error_text(exc)
        (tmp / "error.txt").write_text(
            f"{_TITLES[kind]} could not be made.\n\n{error}\n\n{trace}\n", encoding="utf-8"
        )
        return error
    return None


def _take_facts(path: Path) -> dict[str, Any]:
    """The facts the notebook wrote (removed from the output folder), or none."""
    if not path.is_file():
        return {}
    facts: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    path.unlink()
    return facts


def _print_pdf(html: Path, *, pdf: bool, asked: bool) -> tuple[bool, list[str]]:
    """Print ``html`` beside it as PDF when ``pdf``; whether it was, and notes why not."""
    if not pdf:
        return False, [] if asked else ["PDF not requested"]
    try:
        html_to_pdf(html, html.with_suffix(".pdf"))
    except ReportError as exc:
        return False, [f"PDF skipped: {exc}"]
    except ImportError:
        return False, ["PDF skipped: Playwright for Python is not installed"]
    return True, []


def _with(output: ReportOutput, *, posted_to: str | None, note: str | None) -> ReportOutput:
    from dataclasses import replace

    notes = output.notes + ((note,) if note else ())
    return replace(output, posted_to=posted_to, notes=notes)
