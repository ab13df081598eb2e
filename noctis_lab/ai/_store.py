"""Append-only, hash-chained store of AI analyses, clinician feedback and report versions.

Tables (prefixed ``ai_``): ``ai_analyses``, ``ai_feedback``, ``ai_report_versions``, in the
same database as the calibration history, on the record layer (:mod:`noctis_lab.records`):
each row carries the SHA-256 of its content and of the row before (``row_hash``,
``prev_hash``), so ``noctis-lab verify`` names any row rewritten, deleted or reordered
behind the API's back. Tables are made on first use (an older copy without the chain is
chained, every row kept); triggers refuse ``UPDATE`` and ``DELETE`` (and, on SQLite, an
``INSERT`` reusing an id). Writes are one ``BEGIN IMMEDIATE`` transaction each on SQLite
(WAL, busy timeout: concurrent writers queue) and hold the table's chain lock on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError

from noctis_lab import records
from noctis_lab._errors import HistoryError
from noctis_lab.ai._config import db_url as _resolve_db_url
from noctis_lab.records._engine import open_engine, retrying, write_transaction

__all__ = [
    "TABLES",
    "ai_analyses",
    "ai_feedback",
    "ai_report_versions",
    "append_row",
    "get_engine",
    "metadata",
    "utcnow",
]

metadata = MetaData()


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


ai_analyses = Table(
    "ai_analyses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("model_name", String(200), nullable=False, index=True),
    Column("model_version", String(50), nullable=False),
    Column("study_uid", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),  # success | failed
    Column("processing_time_s", Float, nullable=False),
    Column("confidence", Float),
    Column("findings", Text, nullable=False, default="{}"),  # JSON
    Column("error", Text),
    *records.chain_columns(),
)

ai_feedback = Table(
    "ai_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("analysis_id", Integer, ForeignKey("ai_analyses.id")),
    Column("model_name", String(200), nullable=False, index=True),
    Column("model_version", String(50), nullable=False),
    Column("verdict", String(20), nullable=False),  # agree | false_positive | false_negative
    Column("rating", Integer),  # 1..5
    Column("comment", Text, nullable=False, default=""),
    Column("user", String(200), nullable=False, default=""),
    *records.chain_columns(),
)

ai_report_versions = Table(
    "ai_report_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("report_id", String(64), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("analysis_id", Integer, ForeignKey("ai_analyses.id")),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(50), nullable=False),
    Column("state", String(20), nullable=False),  # pending | approved | modified | rejected
    Column("findings", Text, nullable=False),
    Column("impression", Text, nullable=False),
    Column("recommendations", Text, nullable=False),
    Column("needs_review", Boolean, nullable=False),
    Column("confidence", Float),
    Column("author", String(200), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    *records.chain_columns(),
    UniqueConstraint("report_id", "version", name="uq_ai_report_version"),
)

TABLES: tuple[Table, ...] = (ai_analyses, ai_feedback, ai_report_versions)
_HINT = "record a new analysis, feedback or report version instead"
for _table in TABLES:
    records.mark_append_only(_table, what="the AI record", hint=_HINT)


def _ensure_tables(engine: Engine) -> None:
    """Create the tables (or chain an older unchained copy), with their triggers."""
    for table in TABLES:  # in foreign-key order

        def ensure(table: Table = table) -> None:
            # IntegrityError: another process created it between check and create
            with contextlib.suppress(IntegrityError):
                records.ensure_chained_table(engine, table, hint=_HINT)

        retrying(ensure, what=f"create the {table.name} table")


@functools.lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    # WAL, busy timeout, BEGIN IMMEDIATE writes, Core guards
    engine = open_engine(url, what="the AI record")
    try:
        _ensure_tables(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def get_engine(url: str | None = None) -> Engine:
    """Engine for the analyses database (``url``, ``$NOCTIS_DB_URL`` or the default file).

    Tables, their hash chain and the append-only triggers are made on first use (an
    older unchained copy is chained, every row kept); on PostgreSQL that needs the
    tables' owner (``noctis-lab services up``), the application role changes nothing.

    Raises
    ------
    HistoryError
        The database cannot be opened or its tables cannot be made.
    """
    resolved = _resolve_db_url(url)
    try:
        return _engine_for(resolved)
    except HistoryError:
        raise
    except Exception as exc:
        hint = ""
        if "permission denied" in str(exc) or "must be owner" in str(exc):
            hint = " (the tables are made by their owner: run `noctis-lab services up`)"
        raise HistoryError(f"cannot open the AI database {_safe(resolved)}: {exc}{hint}") from exc


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def _as_utc(value: Any) -> Any:
    """Aware datetimes in UTC, naive ones taken as UTC (what the store keeps and hashes)."""
    if not isinstance(value, datetime):
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def append_row(table: Table, values: dict[str, Any], *, url: str | None = None) -> int:
    """Append one row to the hash chain of ``table`` and return its id.

    ``created_at`` is filled in when absent; datetimes are stored in UTC.

    Raises
    ------
    IntegrityError
        A unique constraint refused the row (e.g. a report version taken concurrently).
    HistoryError
        Any other failure to write.
    """
    row = {k: _as_utc(v) for k, v in values.items()}
    if row.get("created_at") is None:
        row["created_at"] = utcnow()
    engine = get_engine(url)

    def write() -> int:
        with write_transaction(engine) as conn:
            [new_id] = records.append(conn, table, [row])
            return new_id

    try:
        return retrying(write, what=f"append to {table.name}")
    except (IntegrityError, HistoryError):
        raise
    except Exception as exc:
        raise HistoryError(f"cannot write to {table.name}: {exc}") from exc


def dumps(obj: Any) -> str:
    """JSON text for a findings/metadata column."""
    return json.dumps(obj, default=str, sort_keys=True)
