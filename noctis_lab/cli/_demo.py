"""``noctis-lab demo``: write the demo data set that dashboards, reports and notebooks use.

The demo is generated, never committed: synthetic phantom series with ground
truth for several scanners and dates (some drifting, one failing), their
analyses recorded in the calibration history, and three small AI models trained,
registered and evaluated in MLflow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from noctis_lab import _paths
from noctis_lab._errors import ReportError
from noctis_lab.cli._args import HomeDefault, Subparsers

__all__ = ["build_demo", "register"]

COMPLETE = ".complete"  # everything, the AI models included
HU_COMPLETE = ".hu-complete"  # the phantom series and their recorded analyses
AI_LOG = "ai-demo.log"
AI_PID = ".ai-demo.pid"
_BACKGROUND_NICENESS = 10  # the background training's nice value (0 = the lab's)


def build_demo(out: Path, *, force: bool = False, progress: bool = True, ai: bool = True) -> Path:
    """Write the demo set under ``out`` and return the path of its manifest.

    The HU part (series, analyses in the history) comes first and is stamped on its
    own (``.hu-complete``), so the AI part can follow later (``.complete``).

    Parameters
    ----------
    out : Path
        The folder for the series (``<home>/data/demo`` by default).
    force : bool
        Rewrite even when a complete demo is already there.
    progress : bool
        Show progress bars.
    ai : bool
        Also train, register and evaluate the demo AI models.
    """
    out = Path(out)
    if (out / COMPLETE).exists() and not force:
        (out / HU_COMPLETE).touch()  # demo sets written before the HU stamp existed
        return out / "manifest.json"
    t0 = time.perf_counter()
    if force or not (out / HU_COMPLETE).exists():
        _build_hu_part(out, progress=progress)
    if ai:
        from noctis_lab.ai import build_demo as build_ai_demo

        build_ai_demo(out, progress=progress)
        (out / COMPLETE).write_text(f"demo written in {time.perf_counter() - t0:.1f} s\n")
    return out / "manifest.json"


def _build_hu_part(out: Path, *, progress: bool) -> None:
    from noctis_lab.batch import analyze_archive
    from noctis_lab.hu._demo_set import write_demo_set

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    write_demo_set(out, progress=progress)
    # Phantoms come from the demo manifest; series already in the history are skipped,
    # so rewriting the demo never records a series twice.
    report = analyze_archive(out, operator="demo", progress=progress)
    if report.failed:
        raise ReportError(f"the demo analysis failed:\n{report}")
    (out / HU_COMPLETE).write_text(f"HU demo written in {time.perf_counter() - t0:.1f} s\n")


def _alive(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` when that process still runs."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_ai_in_background(out: Path) -> str:
    """Train the demo AI models in a detached process; the log shows its progress.

    Returns what to tell the user. Does nothing when the demo is complete or the
    training already runs.
    """
    out = Path(out)
    if (out / COMPLETE).exists():
        return f"demo data: {out} (complete)"
    if not (out / HU_COMPLETE).exists():
        raise ReportError(f"{out}: write the HU demo first (`noctis-lab demo --no-ai`)")
    log = out / AI_LOG
    pid = _alive(out / AI_PID)
    if pid is None:
        with open(log, "ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "noctis_lab.cli", "demo", "--out", str(out)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the terminal's Ctrl-C of the lab
            )
        # Below the lab's priority: the training (and what it starts) yields the CPU to
        # the server the user is waiting for; it still uses any idle core.
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            os.setpriority(os.PRIO_PROCESS, proc.pid, _BACKGROUND_NICENESS)
        (out / AI_PID).write_text(f"{proc.pid}\n")
        pid = proc.pid
    return (
        f"demo data: {out} (HU ready); the demo AI models train in the background "
        f"(pid {pid}, a few minutes; progress: tail -f {log})"
    )


def _wait_for_background(out: Path, *, quiet: bool, poll_s: float = 2.0) -> None:
    """Let a background AI training finish rather than start a second one beside it."""
    pid = _alive(out / AI_PID)
    if pid is None or pid == os.getpid():
        return
    if not quiet:
        print(f"waiting for the background AI training (pid {pid}; log {out / AI_LOG})")
    while _alive(out / AI_PID) == pid:
        time.sleep(poll_s)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        if args.ai_in_background:
            build_demo(out, force=args.force, progress=not args.quiet, ai=False)
            print(start_ai_in_background(out))
            return 0
        if not args.no_ai:
            _wait_for_background(out, quiet=args.quiet)
        path = build_demo(out, force=args.force, progress=not args.quiet, ai=not args.no_ai)
    except OSError as exc:
        where = exc.filename or out
        raise ReportError(f"cannot write the demo under {out}: {where}: {exc.strerror}") from exc
    print(f"demo data: {path.parent}")
    return 0


def register(subparsers: Subparsers) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="write the demo data set (phantom series, history, models)",
        description=__doc__,
    )
    p.add_argument(
        "--out", default=HomeDefault(_paths.demo_dir), help="folder (default: %(default)s)"
    )
    p.add_argument("--force", action="store_true", help="rewrite an existing demo set")
    ai = p.add_mutually_exclusive_group()
    ai.add_argument("--no-ai", action="store_true", help="only the HU part (no AI models)")
    ai.add_argument(
        "--ai-in-background",
        action="store_true",
        help="write the HU part, then train the AI models in a background process",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_run)
