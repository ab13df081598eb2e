"""``noctis-lab demo``: write the demo data set that dashboards, reports and notebooks use.

The demo is generated, never committed: synthetic phantom series with ground
truth for several scanners and dates (some drifting, one failing), their
analyses recorded in the calibration history, and three small AI models trained,
registered and evaluated in MLflow.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from noctis_lab import _paths
from noctis_lab._errors import ReportError

__all__ = ["build_demo", "register"]

COMPLETE = ".complete"


def build_demo(out: Path, *, force: bool = False, progress: bool = True, ai: bool = True) -> Path:
    """Write the whole demo set under ``out`` and return the path of its manifest.

    Parameters
    ----------
    out : Path
        The folder for the series (``data/demo`` by default).
    force : bool
        Rewrite even when a complete demo is already there.
    progress : bool
        Show progress bars.
    ai : bool
        Also train, register and evaluate the demo AI models.
    """
    from noctis_lab.batch import analyze_archive
    from noctis_lab.hu.synthetic import demo_set

    out = Path(out)
    stamp = out / COMPLETE
    if stamp.exists() and not force:
        return out / "manifest.json"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    demo_set(out, progress=progress)
    # Phantoms come from the demo manifest; series already in the history are skipped,
    # so rewriting the demo never records a series twice.
    report = analyze_archive(out, operator="demo", progress=progress)
    if report.failed:
        raise ReportError(f"the demo analysis failed:\n{report}")
    if ai:
        from noctis_lab.ai import build_demo as build_ai_demo

        build_ai_demo(out, progress=progress)
    stamp.write_text(f"demo written in {time.perf_counter() - t0:.1f} s\n")
    return out / "manifest.json"


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        path = build_demo(out, force=args.force, progress=not args.quiet, ai=not args.no_ai)
    except OSError as exc:
        where = exc.filename or out
        raise ReportError(f"cannot write the demo under {out}: {where}: {exc.strerror}") from exc
    print(f"demo data: {path.parent}")
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser(name, help=help_text, description=__doc__)
    p.add_argument("--out", default=str(_paths.demo_dir()), help="folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="rewrite an existing demo set")
    p.add_argument("--no-ai", action="store_true", help="skip the AI models")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_run)
