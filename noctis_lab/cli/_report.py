"""``noctis-lab report hu|ai``: run a papermill report to HTML (and PDF) with a summary JSON."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from noctis_lab import _paths
from noctis_lab.cli._args import HomeDefault, Subparsers

__all__ = ["register"]


def _day(text: str) -> date:
    """``--date``: a calendar day, ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


@contextmanager
def _stores(args: argparse.Namespace) -> Iterator[None]:
    """The stores named on the command line, for this process and the report's kernel."""
    chosen = {
        "NOCTIS_DB_URL": getattr(args, "db_url", None),
        "MLFLOW_TRACKING_URI": getattr(args, "tracking_uri", None),
    }
    old = {name: os.environ.get(name) for name in chosen}
    try:
        for name, value in chosen.items():
            if value is not None:
                os.environ[name] = value
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(args: argparse.Namespace) -> int:
    with _stores(args):
        return _report(args)


def _report(args: argparse.Namespace) -> int:
    from noctis_lab.reports._runner import run_report

    day = args.date
    extra = (
        {"scanner": args.scanner, "calibration": args.calibration}
        if args.kind == "hu"
        else {"model": args.model}
    )
    out = run_report(
        args.kind,
        os.fspath(args.out),
        since=args.since,
        until=args.until,
        day=day,
        pdf=not args.no_pdf,
        post_to=args.post_to,
        chat_root=args.chat_root,
        progress=not args.quiet,
        **extra,
    )
    if args.json:
        print(out.to_json())
    if not out.ok:
        print(f"noctis-lab report {args.kind}: error: {out.error}", file=sys.stderr)
        print(f"details: {out.out_dir}/error.txt", file=sys.stderr)
        return 1
    if not args.json:
        for note in out.notes:
            print(f"note: {note}", file=sys.stderr)
        print(out.one_line(), file=sys.stderr)
        print(out.html)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="first day of the period (YYYY-MM-DD)")
    p.add_argument("--until", help="last day of the period (YYYY-MM-DD)")
    p.add_argument(
        "--out",
        default=HomeDefault(lambda: _paths.home() / "reports"),
        help="base folder; files go to OUT/<kind>/<YYYY-MM-DD>/ (default: %(default)s)",
    )
    p.add_argument("--date", type=_day, help="date naming the output folder (default: today)")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF")
    p.add_argument(
        "--post-to", metavar="ROOM.chat", help="post a one-line summary to this chat room"
    )
    p.add_argument("--chat-root", help="Jupyter root of the room (default: the project home)")
    p.add_argument("--json", action="store_true", help="print the summary JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: Subparsers) -> None:
    """Add ``report hu`` and ``report ai``."""
    p = subparsers.add_parser(
        "report",
        help="run a papermill report to HTML",
        description=(
            "Run a parameterised report notebook with papermill; write the executed notebook, "
            "a self-contained HTML without code, a PDF where Chromium is installed, and "
            "summary.json. Exit 2, with one line, when the inputs cannot make a report "
            "(dates, scanner, calibration, model, stores, output folder); exit 1 when the "
            "report failed while it was being made (the reason is in error.txt)."
        ),
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    hu = kinds.add_parser("hu", help="HU QA report (one calibration, or scanners over a period)")
    hu.add_argument("--scanner", help="one scanner: key, serial or station name")
    hu.add_argument("--calibration", help="one calibration: record id or result id")
    hu.add_argument(
        "--db-url", help="calibration history (default: $NOCTIS_DB_URL, else the home's SQLite)"
    )
    _common(hu)
    hu.set_defaults(handler=_run)
    ai = kinds.add_parser("ai", help="AI performance report (per model)")
    ai.add_argument("--model", help="one model (default: every model)")
    ai.add_argument(
        "--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else the home's)"
    )
    _common(ai)
    ai.set_defaults(handler=_run)
