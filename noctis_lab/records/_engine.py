"""Opening a record database: SQLite settings, write transactions, retries.

Shared by every store on the record layer (the calibration history, the AI store, the
QA bot's record, the Rooms moderation log):

* SQLite connections use WAL (readers never block the writer), a 30 s busy
  timeout, foreign keys on, ``synchronous=NORMAL`` (durable across application
  crashes; the last transactions may be lost on power failure, the WAL
  trade-off), and explicit ``BEGIN IMMEDIATE`` for writes
  (:func:`write_transaction`) so two writers queue on the lock instead of failing
  on a lock upgrade.
* Every engine refuses Core ``UPDATE``/``DELETE`` on tables marked append-only
  (:func:`~noctis_lab.records.guard_engine`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from noctis_lab._errors import HistoryError
from noctis_lab.records._guards import guard_engine

__all__ = ["open_engine", "retrying", "write_transaction"]

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 30_000


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy's "begin" hook emit BEGIN itself (pysqlite's legacy mode would not).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        mode = cur.execute("PRAGMA journal_mode").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("noctis_write", False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def open_engine(url: str | None = None, *, what: str = "the calibration history") -> Engine:
    """An engine for ``url`` with the SQLite settings above.

    Parameters
    ----------
    url : str, optional
        Database URL; default: :func:`noctis_lab.hu._history_db.default_url`.
    what : str
        The store's name for error messages.

    Raises
    ------
    HistoryError
        When the URL cannot be parsed, its driver is missing, or the SQLite folder
        cannot be created.
    """
    if url is None:
        from noctis_lab import _paths

        url = _paths.db_url()
    raw = url
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise HistoryError(f"{what}: URL {raw!r} is not a database URL: {exc}") from exc
    kwargs: dict[str, Any] = {}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise HistoryError(
                f"{what}: URL {raw!r} is an in-memory SQLite database; "
                "give a file (records must outlive the process)"
            )
        folder = Path(database).expanduser().resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the folder {folder} for {what}: {exc}") from exc
        kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise HistoryError(f"cannot open {what} at {parsed.render_as_string()}: {exc}") from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    guard_engine(engine)
    return engine


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    msg = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "database is locked" in msg or "database is busy" in msg or "busy" in msg


def retrying(fn: Callable[[], T], *, what: str, attempts: int = 12) -> T:
    """Run ``fn``; on SQLite's "database is locked", back off (with jitter) and retry."""
    delay = 0.02
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if not _is_busy(exc) or attempt == attempts - 1:
                raise HistoryError(f"cannot {what}: {exc.orig or exc}") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on success."""
    with engine.connect() as conn:
        conn = conn.execution_options(noctis_write=True)
        with conn.begin():
            yield conn
