"""Opening the calibration history database: URL, engine, migrations, retries.

* The URL is the caller's, else ``NOCTIS_DB_URL``, else a SQLite file
  ``data/noctis.db`` under ``NOCTIS_HOME`` (or the current directory).
* The engine, write transactions and retries are the record layer's
  (:mod:`noctis_lab.records._engine`, re-exported here): SQLite in WAL mode with
  a busy timeout and ``BEGIN IMMEDIATE`` writes.
* The schema is brought to the newest Alembic revision on open, inside one
  transaction that holds the database's write lock (SQLite) or an advisory lock
  (PostgreSQL), so processes opening the same new database at once migrate it
  exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from noctis_lab._errors import HistoryError
from noctis_lab.hu._history_schema import VERSION_TABLE
from noctis_lab.records._engine import open_engine, retrying, write_transaction

__all__ = [
    "default_url",
    "head_revision",
    "open_engine",
    "retrying",
    "upgrade",
    "write_transaction",
]

#: PostgreSQL advisory lock key that serialises migrations ("NOCTIS" in hex-ish).
_PG_MIGRATION_LOCK = 0x4E0C7150


def default_url() -> str:
    """``NOCTIS_DB_URL`` or ``sqlite:///<NOCTIS_HOME or cwd>/data/noctis.db``."""
    from noctis_lab import _paths

    return _paths.db_url()


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
