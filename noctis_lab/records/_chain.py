"""Hash chain of an append-only table: canonical row content, SHA-256, appending.

Every chained table has an integer primary key ``id`` and two text columns,
``row_hash`` and ``prev_hash`` (:func:`chain_columns`). A row's hash is the
SHA-256 of a canonical JSON text of the table name, the row's id, the previous
row's hash and every other column's value (normalised by its declared type, so
what is read back from SQLite or PostgreSQL hashes exactly like what was
written). The first row links to :data:`GENESIS`.

Columns whose value is NULL are left out of the canonical text: adding a nullable
column in a later migration keeps every older hash valid.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection

from noctis_lab._errors import HistoryError

__all__ = [
    "CHAIN_COLUMNS",
    "GENESIS",
    "append",
    "canonical_text",
    "chain_columns",
    "chain_lock",
    "is_chained",
    "row_hash",
]

#: The names of the two chain columns.
CHAIN_COLUMNS: tuple[str, str] = ("row_hash", "prev_hash")
#: What the first row of a chain links to.
GENESIS = "0" * 64
#: Version of the canonical form (part of every hash).
_FORM = 1


def chain_columns() -> list[Column[str]]:
    """New ``row_hash`` and ``prev_hash`` columns to add to a table definition.

    Returns
    -------
    list of Column
        Two ``String(64)`` columns, not nullable.
    """
    return [Column(name, String(64), nullable=False) for name in CHAIN_COLUMNS]


def is_chained(table: Table) -> bool:
    """Whether ``table`` has an ``id`` primary key and both chain columns."""
    cols = table.c
    return "id" in cols and all(name in cols for name in CHAIN_COLUMNS)


def _plain(col_type: Any, value: Any) -> Any:
    """``value`` as a JSON-ready value, normalised by the column's type."""
    if isinstance(col_type, Boolean):
        return bool(value)
    if isinstance(col_type, Integer):
        return int(value)
    if isinstance(col_type, Float | Numeric):
        f = float(value)
        return f if math.isfinite(f) else repr(f)
    if isinstance(col_type, DateTime):
        if not isinstance(value, datetime):
            return str(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if isinstance(col_type, Date) and isinstance(value, date):
        return value.isoformat()
    return str(value)


def canonical_text(table: Table, row: Mapping[Any, Any], prev_hash: str) -> str:
    """The canonical JSON text that :func:`row_hash` hashes.

    Parameters
    ----------
    table : Table
        The chained table (its column types normalise the values).
    row : mapping
        Column values, ``id`` included; the chain columns are ignored.
    prev_hash : str
        The hash of the row before (``GENESIS`` for the first).

    Returns
    -------
    str
        Sorted-key, compact, ASCII JSON.
    """
    content = {
        col.name: _plain(col.type, row[col.name])
        for col in table.columns
        if col.name not in CHAIN_COLUMNS and col.name != "id" and row.get(col.name) is not None
    }
    doc = {"form": _FORM, "table": table.name, "id": int(row["id"]), "prev": prev_hash}
    doc["row"] = content
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def row_hash(table: Table, row: Mapping[Any, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of the row's canonical text (see :func:`canonical_text`)."""
    return hashlib.sha256(canonical_text(table, row, prev_hash).encode("ascii")).hexdigest()


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def chain_lock(conn: Connection, table: Table) -> None:
    """Serialise appends to ``table`` until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock per table. SQLite: nothing to do,
    the write transaction (``BEGIN IMMEDIATE``) already holds the database's lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(table.name)})


def _complete(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """Every content column's value: Python-side defaults applied, NULL for the rest.

    The hash must cover what the database stores, so defaults are resolved here,
    not by the INSERT.
    """
    full = dict(row)
    for col in table.columns:
        if col.name in full or col.name == "id" or col.name in CHAIN_COLUMNS:
            continue
        default = col.default
        if default is None:
            full[col.name] = None
        elif getattr(default, "is_scalar", False):
            full[col.name] = getattr(default, "arg", None)
        elif getattr(default, "is_callable", False):
            full[col.name] = default.arg(None)  # type: ignore[attr-defined]
        else:
            raise HistoryError(
                f"appending to {table.name!r}: give {col.name!r} a value "
                "(its default is computed by the database, outside the hash)"
            )
    return full


def append(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Append ``rows`` to the chained ``table`` inside the caller's write transaction.

    Each row gets the next id and its place in the chain (``row_hash``,
    ``prev_hash``). Call it inside one write transaction per logical record so the
    rows and their chain commit together.

    Parameters
    ----------
    conn : Connection
        A connection inside a write transaction (e.g. ``write_transaction(engine)``).
    table : Table
        A table with the chain columns (see :func:`chain_columns`).
    rows : sequence of mapping
        Column values without ``id``, ``row_hash`` or ``prev_hash``.

    Returns
    -------
    list of int
        The ids given to the rows, in order.

    Raises
    ------
    HistoryError
        The table is not chained, or a row sets ``id`` or a chain column.
    """
    if not is_chained(table):
        raise HistoryError(f"table {table.name!r} has no hash chain (id, row_hash, prev_hash)")
    if not rows:
        return []
    for row in rows:
        bad = sorted({"id", *CHAIN_COLUMNS} & set(row))
        if bad:
            raise HistoryError(f"appending to {table.name!r}: the record layer sets {bad} itself")
    chain_lock(conn, table)
    last = conn.execute(
        select(table.c.id, table.c.row_hash).order_by(table.c.id.desc()).limit(1)
    ).first()
    next_id = 1 if last is None else int(last[0]) + 1
    prev = GENESIS if last is None or not last[1] else str(last[1])
    out: list[dict[str, Any]] = []
    for row in rows:
        full = {**_complete(table, row), "id": next_id}
        digest = row_hash(table, full, prev)
        out.append({**full, "row_hash": digest, "prev_hash": prev})
        prev = digest
        next_id += 1
    conn.execute(insert(table), out)
    return [int(r["id"]) for r in out]
