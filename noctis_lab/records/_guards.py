"""Append-only guards: database triggers (SQLite, PostgreSQL) and SQLAlchemy hooks.

* :func:`append_only_ddl` gives the statements that make a table append-only in
  the database itself (run them in a migration, as the table's owner): ``UPDATE``
  and ``DELETE`` abort; on SQLite an ``INSERT`` that reuses an existing id (what
  ``INSERT OR REPLACE`` does) aborts too, on PostgreSQL ``TRUNCATE`` does.
* :func:`mark_append_only` tags a :class:`~sqlalchemy.schema.Table`;
  :func:`guard_engine` then refuses any Core/ORM ``UPDATE`` or ``DELETE``
  statement aimed at a tagged table, and :func:`refuse_orm_changes` refuses an
  ORM flush that would update or delete a mapped row.

Triggers can be dropped (SQLite) or disabled by the table's owner (PostgreSQL):
they stop mistakes, the hash chain (:mod:`noctis_lab.records._chain`) makes the
rest visible.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper
from sqlalchemy.sql import Delete, Update

from noctis_lab._errors import HistoryError

__all__ = [
    "PG_REFUSE_FUNCTION",
    "append_only_ddl",
    "drop_append_only_ddl",
    "guard_engine",
    "mark_append_only",
    "refuse_orm_changes",
]

#: The PostgreSQL trigger function shared by every append-only table.
PG_REFUSE_FUNCTION = "noctis_refuse_change"
_DEFAULT_HINT = "append a new record instead"


def _pg_function(message: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {PG_REFUSE_FUNCTION}() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: {message}'; "
        "END $$"
    )


def append_only_ddl(table: str, dialect: str, *, hint: str = _DEFAULT_HINT) -> list[str]:
    """SQL that makes ``table`` append-only in the database (idempotent).

    Parameters
    ----------
    table : str
        Table name (with an integer ``id`` primary key).
    dialect : str
        ``"sqlite"`` or ``"postgresql"``; other dialects get no statements.
    hint : str
        What to do instead, appended to the error message (no quotes).

    Returns
    -------
    list of str
        Statements to execute in order.
    """
    msg = f"{table} is append-only: {hint}"
    if dialect == "sqlite":
        stmts = [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{msg}'); END"
            for verb in ("UPDATE", "DELETE")
        ]
        stmts.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN NEW.id <= (SELECT max(id) FROM {table}) "
            f"BEGIN SELECT RAISE(ABORT, '{msg} (an INSERT may not reuse an id)'); END"
        )
        return stmts
    if dialect == "postgresql":
        return [
            _pg_function(hint),
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {PG_REFUSE_FUNCTION}()",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_REFUSE_FUNCTION}()",
        ]
    return []


def drop_append_only_ddl(table: str, dialect: str) -> list[str]:
    """SQL that removes the triggers of :func:`append_only_ddl` (for migrations only)."""
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for verb in ("update", "delete", "replace")
        ]
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        ]
    return []


def mark_append_only(table: Table, *, what: str, hint: str = _DEFAULT_HINT) -> Table:
    """Tag ``table`` so :func:`guard_engine` refuses statements that change it.

    Parameters
    ----------
    table : Table
        The table to tag (its ``info`` gains ``append_only`` and ``append_only_hint``).
    what : str
        How the store is named in error messages, e.g. ``"the calibration history"``.
    hint : str
        What to do instead.

    Returns
    -------
    Table
        ``table`` itself.
    """
    table.info["append_only"] = what
    table.info["append_only_hint"] = hint
    return table


def _refuse_statement(
    conn: Any, clauseelement: Any, multiparams: Any, params: Any, execution_options: Any
) -> None:
    if not isinstance(clauseelement, Update | Delete):
        return
    table = clauseelement.table
    info = getattr(table, "info", {})
    what = info.get("append_only")
    if what:
        verb = "UPDATE" if isinstance(clauseelement, Update) else "DELETE"
        raise HistoryError(
            f"{what} is append-only: refusing {verb} on table {getattr(table, 'name', '?')!r}; "
            f"{info.get('append_only_hint', _DEFAULT_HINT)}"
        )


def guard_engine(engine: Engine) -> Engine:
    """Refuse Core and ORM-bulk ``UPDATE``/``DELETE`` on tables marked append-only.

    Idempotent: installing it twice on one engine adds one listener.
    """
    if not event.contains(engine, "before_execute", _refuse_statement):
        event.listen(engine, "before_execute", _refuse_statement)
    return engine


def _refuse_flush(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    table = mapper.persist_selectable
    info = getattr(table, "info", {})
    what = info.get("append_only", f"table {getattr(table, 'name', '?')!r}")
    raise HistoryError(
        f"{what} is append-only: refusing to change or delete "
        f"{mapper.class_.__name__} id={getattr(target, 'id', None)} in table "
        f"{getattr(table, 'name', '?')!r}; {info.get('append_only_hint', _DEFAULT_HINT)}"
    )


def refuse_orm_changes(cls: type) -> type:
    """Make ORM flushes that would update or delete a ``cls`` row raise.

    Usable as a class decorator; idempotent.
    """
    for name in ("before_update", "before_delete"):
        if not event.contains(cls, name, _refuse_flush):
            event.listen(cls, name, _refuse_flush)
    return cls
