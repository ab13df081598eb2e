"""Create a record table, or bring an older unchained copy onto its hash chain.

For stores without Alembic migrations (the QA bot's ``alerts_posted``, the AI
store): :func:`ensure_chained_table` creates the table when it is missing; when an
older version of it lacks the chain columns, it adds them and chains the stored
rows in id order (the backfill), then makes the table append-only. Idempotent and
safe for concurrent openers (one write transaction; on PostgreSQL under the
table's chain lock). On PostgreSQL the DDL needs the table's owner: run it from
``noctis-lab services up``; the application's role then finds everything in place
and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from noctis_lab.records._chain import CHAIN_COLUMNS, GENESIS, chain_lock, row_hash
from noctis_lab.records._guards import append_only_ddl, drop_append_only_ddl

__all__ = ["ensure_chained_table"]


def _add_chain(conn: Connection, table: Table) -> None:
    dialect = conn.dialect.name
    for sql in drop_append_only_ddl(table.name, dialect):
        conn.exec_driver_sql(sql)
    for col in CHAIN_COLUMNS:
        extra = " NOT NULL DEFAULT ''" if dialect == "sqlite" else ""
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {col} VARCHAR(64){extra}")
    prev, updates = GENESIS, []
    for row in conn.execute(select(table).order_by(table.c.id)).mappings():
        digest = row_hash(table, row, prev)
        updates.append({"h": digest, "p": prev, "i": int(row["id"])})
        prev = digest
    if updates:
        conn.execute(
            text(f"UPDATE {table.name} SET row_hash = :h, prev_hash = :p WHERE id = :i"), updates
        )
    if dialect != "sqlite":
        for col in CHAIN_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ALTER COLUMN {col} SET NOT NULL")


def _has_pg_guard(conn: Connection, name: str) -> bool:
    hit = conn.execute(
        text("SELECT 1 FROM pg_trigger WHERE tgname = :t AND NOT tgisinternal"),
        {"t": f"{name}_append_only"},
    ).first()
    return hit is not None


def ensure_chained_table(engine: Engine, table: Table, *, hint: str) -> bool:
    """Make sure ``table`` exists, is hash-chained and append-only in the database.

    Parameters
    ----------
    engine : Engine
        The store's engine.
    table : Table
        The table definition, with :func:`~noctis_lab.records.chain_columns`.
    hint : str
        What to do instead of a change, for the triggers' error message.

    Returns
    -------
    bool
        True when anything was created or changed.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(noctis_write=True)  # BEGIN IMMEDIATE on our SQLite
        with conn.begin():
            chain_lock(conn, table)
            insp = inspect(conn)
            changed = False
            if not insp.has_table(table.name):
                table.create(conn)
                changed = True
            elif not set(CHAIN_COLUMNS) <= {c["name"] for c in insp.get_columns(table.name)}:
                _add_chain(conn, table)
                changed = True
            dialect = conn.dialect.name
            if dialect == "sqlite" or (
                dialect == "postgresql" and (changed or not _has_pg_guard(conn, table.name))
            ):
                for sql in append_only_ddl(table.name, dialect, hint=hint):
                    conn.exec_driver_sql(sql)
            return changed
