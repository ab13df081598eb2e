"""``noctis-lab verify``: check that no record was rewritten, deleted or reordered.

Exit status follows the command-line contract: 0 when the verification ran
(whatever it found), 2 with one line when it could not run (no database, bad
URL, unreadable anchor). The verdict is in the output (``status: ok`` or
``status: TAMPERED`` with one line per finding naming the table and record) and
in ``--json`` (``"status": "ok" | "tampered"``, ``"findings": [...]``).

For a scheduler (cron, systemd timer, CI), add ``--exit-code``: the status is
then 1 when tampering was found (0 clean, 2 could not run), like ``git diff
--exit-code``, so ``OnFailure=``/``MAILTO`` fire on it. Add ``--anchor FILE``
(kept where the database's users cannot write) so a deleted tail or a chain
recomputed from scratch is caught too: each clean run records the chain heads
there and the next run checks them.

The Rooms moderation log lives beside the chat files, in ``<root>/.noctis/rooms.db``
of the Jupyter server: check it with ``--rooms ROOT`` (the server's root folder, or
the ``rooms.db`` file itself) instead of ``--db-url``.
"""

from __future__ import annotations

import argparse
from typing import Any

from noctis_lab.cli._args import Subparsers

__all__ = ["register"]


def _print_report(report: Any) -> None:
    print(f"Verified {report.url}")
    for t in report.tables:
        state = "ok" if t.ok else f"{len(t.findings)} finding(s)"
        head = "" if t.head_id is None else f"  head #{t.head_id} {str(t.head_hash)[:12]}"
        print(f"  {t.table:<22} {t.rows:>7} records  {state}{head}")
    for name in report.unchained:
        print(f"  {name:<22} not hash-chained (append-only by trigger only)")
    for f in report.findings:
        print(f"TAMPERED: {f.message}")
    if report.anchor:
        print(f"anchor: {report.anchor}" + (" (advanced)" if report.ok else " (kept)"))
    print("status: ok" if report.ok else f"status: TAMPERED ({len(report.findings)} finding(s))")


def _rooms_url(root: str) -> str:
    """The SQLite URL of the moderation log of a server root (or of a ``rooms.db``)."""
    from pathlib import Path

    from noctis_lab._errors import HistoryError

    path = Path(root).expanduser()
    db = path if path.is_file() else path / ".noctis" / "rooms.db"
    if not db.is_file():
        raise HistoryError(f"no rooms database at {db} (no room was ever opened there)")
    return f"sqlite:///{db.resolve()}"


def _tables(engine: Any) -> list[Any]:
    """The package's record tables, plus the moderation log when the database has one."""
    from sqlalchemy import inspect

    from noctis_lab._errors import HistoryError
    from noctis_lab.records._stores import chained_tables

    tables = chained_tables()
    if inspect(engine).has_table("modlog"):
        try:
            from noctis_rooms._store import modlog_table
        except ImportError as exc:
            raise HistoryError(
                f"this database has a moderation log but noctis_rooms is not installed: {exc}"
            ) from exc
        tables.append(modlog_table)
    return tables


def _handler(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from noctis_lab._errors import HistoryError
    from noctis_lab.hu._history_db import default_url, open_engine
    from noctis_lab.records import verify
    from noctis_lab.records._stores import PENDING

    if args.rooms and args.db:
        raise HistoryError("give --rooms or --db-url, not both")
    url = _rooms_url(args.rooms) if args.rooms else (args.db or default_url())
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise HistoryError(f"{url!r} is not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").expanduser()
        if not path.is_file():
            raise HistoryError(f"no database at {path} (nothing recorded there yet)")
    engine = open_engine(url)
    try:
        report = verify(engine, _tables(engine), anchor=args.anchor, known=PENDING)
    except SQLAlchemyError as exc:
        raise HistoryError(f"cannot verify {parsed.render_as_string()}: {exc}") from exc
    finally:
        engine.dispose()
    if args.json:
        print(report.to_json())
    else:
        _print_report(report)
    return 1 if args.exit_code and not report.ok else 0


def register(subparsers: Subparsers) -> None:
    """Add the ``verify`` subcommand.

    Parameters
    ----------
    subparsers : Subparsers
        The ``noctis-lab`` subcommands, to which it adds its own.
    """
    p = subparsers.add_parser(
        "verify",
        help="check that no record was rewritten, deleted or moved",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--db-url",
        dest="db",
        metavar="URL",
        help="database URL (default: NOCTIS_DB_URL or the home's data/noctis.db)",
    )
    p.add_argument("--db", dest="db", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument(
        "--rooms",
        metavar="ROOT",
        help="check the Rooms moderation log of a Jupyter server root (ROOT/.noctis/rooms.db)",
    )
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument(
        "--anchor",
        metavar="FILE",
        help="chain heads of the last clean run: checked, then advanced when clean",
    )
    p.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when tampering is found (for schedulers); default: 0 whenever it ran",
    )
    p.set_defaults(handler=_handler)
