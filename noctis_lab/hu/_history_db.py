"""Opening the calibration history database: URL, engine, migrations, retries.

* The URL is the caller's, else ``NOCTIS_DB_URL``, else a SQLite file
  ``data/noctis.db`` under ``NOCTIS_HOME`` (or the current directory).
* SQLite connections use WAL (readers never block the writer), a 30 s busy
  timeout, foreign keys on, ``synchronous=NORMAL`` (durable across application
  crashes; the last transactions may be lost on power failure, the WAL
  trade-off), and explicit ``BEGIN IMMEDIATE`` for writes so two writers queue
  on the lock instead of failing on a lock upgrade.
* The schema is brought to the newest Alembic revision on open, inside one
  transaction that holds the database's write lock (SQLite) or an advisory lock
  (PostgreSQL), so processes opening the same new database at once migrate it
  exactly once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from noctis_lab._errors import HistoryError
from noctis_lab.hu._history_schema import VERSION_TABLE, install_guards

__all__ = [
    "default_url",
    "head_revision",
    "open_engine",
    "retrying",
    "upgrade",
    "write_transaction",
]

T = TypeVar("T")

#: PostgreSQL advisory lock key that serialises migrations ("NOCTIS" in hex-ish).
_PG_MIGRATION_LOCK = 0x4E0C7150
_BUSY_TIMEOUT_MS = 30_000


def default_url() -> str:
    """``NOCTIS_DB_URL`` or ``sqlite:///<NOCTIS_HOME or cwd>/data/noctis.db``."""
    from noctis_lab import _paths

    return _paths.db_url()


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


def open_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (see :func:`default_url`), with the SQLite settings above.

    Raises
    ------
    HistoryError
        When the URL cannot be parsed, its driver is missing, or the SQLite folder
        cannot be created.
    """
    raw = url if url is not None else default_url()
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise HistoryError(f"calibration history URL {raw!r} is not a database URL: {exc}") from exc
    kwargs: dict[str, Any] = {}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise HistoryError(
                f"calibration history URL {raw!r} is an in-memory SQLite database; "
                "give a file (the history must outlive the process)"
            )
        folder = Path(database).expanduser().resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(
                f"cannot create the folder {folder} for the calibration history: {exc}"
            ) from exc
        kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise HistoryError(
            f"cannot open the calibration history at {parsed.render_as_string()}: {exc}"
        ) from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    install_guards(engine)
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


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction for migrations; on SQLite with foreign keys off while it runs.

    Re-creating a table that other tables reference (how SQLite alters a constraint)
    is only possible with foreign keys off, which SQLite allows outside a transaction
    only; the keys are checked before the commit (``PRAGMA foreign_key_check``).
    """
    with engine.connect() as conn:
        raw = conn.connection.driver_connection if engine.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn = conn.execution_options(noctis_write=True)
            with conn.begin():
                yield conn
                if raw is not None:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise HistoryError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    folder = resources.files("noctis_lab.hu") / "migrations"
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this version of Noctis Lab."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise HistoryError("the calibration history migrations are missing from the package")
    return head


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def upgrade(engine: Engine) -> str:
    """Bring the history's schema to the newest revision; returns that revision.

    Cheap when the database is already current (one query). Otherwise migrates in
    one transaction holding the write lock, so concurrent openers queue and the
    later ones find the work done.
    """
    from alembic import command

    head = head_revision()

    def check() -> str | None:
        with engine.connect() as conn:
            return _current_revision(conn)

    current = retrying(check, what=f"read the schema version of {_safe(engine)}")
    if current == head:
        return head

    def migrate() -> str:
        with _migration_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            if _current_revision(conn) != head:
                command.upgrade(_alembic_config(conn), "head")
        return head

    try:
        return retrying(migrate, what=f"migrate the calibration history at {_safe(engine)}")
    except DBAPIError as exc:
        reason = str(exc.orig or exc)
        hint = ""
        if "permission denied" in reason or "must be owner" in reason:
            hint = (
                f" (the schema is at {current or 'nothing'}, this version needs {head}; "
                "this role may only read and append: run `noctis-lab services up`, which "
                "migrates as the database owner)"
            )
        raise HistoryError(
            f"cannot migrate the calibration history at {_safe(engine)}: "
            f"{reason.splitlines()[0] if reason else reason}{hint}"
        ) from exc


def _safe(engine: Engine) -> str:
    """The engine's URL without its password."""
    return engine.url.render_as_string(hide_password=True)
