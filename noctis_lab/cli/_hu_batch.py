"""``noctis-lab hu batch ROOT``: analyse and record every phantom series of an archive."""

from __future__ import annotations

import argparse
import json

from noctis_lab.cli._args import Subparsers

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from noctis_lab.batch import analyze_archive

    client = None
    if args.scheduler:
        from dask.distributed import Client

        client = Client(args.scheduler)  # type: ignore[no-untyped-call]
    try:
        report = analyze_archive(
            args.root,
            phantom=args.phantom,
            profile=args.profile,
            client=client,
            workers=args.workers,
            db_url=args.db,
            operator=args.operator,
            progress=not args.json,
        )
    finally:
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 1 if report.failed and args.strict else 0


def register(subparsers: Subparsers) -> None:
    """Add ``batch`` to the ``hu`` subcommands."""
    p = subparsers.add_parser(
        "batch",
        help="analyse and record every phantom series under a folder",
        description=(
            "Walk ROOT, analyse every folder holding a DICOM series, and record each result in "
            "the calibration history. Series already recorded are skipped, so an interrupted "
            "batch resumes; a failing series is reported and the batch goes on. Runs on a local "
            "process pool, or on a Dask cluster with --scheduler."
        ),
    )
    p.add_argument("root", help="archive folder")
    p.add_argument(
        "--phantom",
        default=None,
        help="phantom for every series (default: ROOT/manifest.json, else catphan604)",
    )
    p.add_argument("--profile", default="seed", help="tolerance profile (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="local pool size (default: CPUs)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://...")
    p.add_argument(
        "--db-url",
        dest="db",
        metavar="URL",
        help="history database URL (default: $NOCTIS_DB_URL, else the home's data/noctis.db)",
    )
    p.add_argument("--db", dest="db", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--operator", default="batch", help="operator recorded with each result")
    p.add_argument("--strict", action="store_true", help="exit 1 when any series failed")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_run)
