"""``noctis-lab schedule``: print (or install) cron lines or systemd timers for the reports."""

from __future__ import annotations

import argparse
import os
import sys

from noctis_lab import _paths
from noctis_lab.cli._args import HomeDefault, Subparsers

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from noctis_lab.reports._schedule import (
        cron_lines,
        install_cron,
        install_systemd,
        make_schedules,
        systemd_units,
    )

    kinds = ["hu", "ai"] if args.kind == "all" else [args.kind]
    schedules = make_schedules(
        kinds,
        os.fspath(args.out),
        at=args.at,
        day=args.day,
        home=args.home,
        post_to=args.post_to,
        pdf=not args.no_pdf,
    )
    if args.format == "cron":
        lines = cron_lines(schedules)
        print("\n".join(lines))
        if args.install:
            install_cron(lines)
            print(f"installed {len(lines)} crontab entries", file=sys.stderr)
        return 0
    units = systemd_units(schedules)
    for fname, text in units.items():
        print(f"# {fname}\n{text}")
    if args.install:
        written = install_systemd(units, args.unit_dir, enable=not args.no_enable)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``schedule``."""
    p = subparsers.add_parser(
        "schedule",
        help="print or install report schedules",
        description=(
            "Print crontab lines or systemd user timers that run `noctis-lab report` "
            "on a schedule; --install merges them into the crontab (replacing earlier "
            "noctis-lab entries) or writes and enables the timers."
        ),
    )
    p.add_argument("kind", nargs="?", default="all", choices=["hu", "ai", "all"])
    p.add_argument("--format", choices=["cron", "systemd"], default="cron")
    p.add_argument("--at", default="06:30", help="local time HH:MM (default: %(default)s)")
    p.add_argument("--day", help="weekday (mon ... sun) for weekly runs; default daily")
    p.add_argument(
        "--out",
        default=HomeDefault(lambda: _paths.home() / "reports"),
        help="base folder (default: %(default)s)",
    )
    p.add_argument("--home", help="NOCTIS_HOME of the runs (default: the current home)")
    p.add_argument("--post-to", metavar="ROOM.chat", help="chat room for the summary")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF")
    p.add_argument("--install", action="store_true", help="install, not just print")
    p.add_argument("--unit-dir", help="systemd: unit folder (default ~/.config/systemd/user)")
    p.add_argument("--no-enable", action="store_true", help="systemd: write units only")
    p.set_defaults(handler=_run)
