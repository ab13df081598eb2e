"""Append-only SQLite (SQLAlchemy) store of AI analyses, clinician feedback and report versions.

Tables (prefixed ``ai_``): ``ai_analyses``, ``ai_feedback``, ``ai_report_versions``. They are
created with ``metadata.create_all`` on first use. On SQLite the connection uses WAL and a
busy timeout so several writers can append at once, and triggers refuse UPDATE and DELETE:
history is never rewritten.
"""

from __future__ import annotations

import functools
import json
import time
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
    create_engine,
    event,
    insert,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from noctis_lab._errors import HistoryError
from noctis_lab.ai._config import db_url as _resolve_db_url

__all__ = [
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
    UniqueConstraint("report_id", "version", name="uq_ai_report_version"),
)

_TABLES = ("ai_analyses", "ai_feedback", "ai_report_versions")


@functools.lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        connect_args={"timeout": 30} if is_sqlite else {},
        pool_pre_ping=not is_sqlite,
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    for attempt in range(5):
        try:
            metadata.create_all(engine)
            if is_sqlite:
                with engine.begin() as conn:
                    for table in _TABLES:
                        for op in ("UPDATE", "DELETE"):
                            conn.exec_driver_sql(
                                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} "
                                f"BEFORE {op} ON {table} BEGIN "
                                f"SELECT RAISE(ABORT, '{table} is append-only'); END"
                            )
            break
        except OperationalError:  # another process creating the same tables
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return engine


def get_engine(url: str | None = None) -> Engine:
    """Engine for the analyses database (``url``, ``$NOCTIS_DB_URL`` or the default file).

    Tables and append-only triggers are created on first use.
    """
    resolved = _resolve_db_url(url)
    try:
        return _engine_for(resolved)
    except Exception as exc:
        raise HistoryError(f"cannot open the AI database {resolved}: {exc}") from exc


def append_row(table: Table, values: dict[str, Any], *, url: str | None = None) -> int:
    """Insert one row and return its id (``created_at`` filled in when absent)."""
    row = dict(values)
    row.setdefault("created_at", utcnow())
    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            res = conn.execute(insert(table).values(**row))
            pk = res.inserted_primary_key
            return int(pk[0]) if pk is not None else -1
    except IntegrityError:
        raise
    except Exception as exc:
        raise HistoryError(f"cannot write to {table.name}: {exc}") from exc


def dumps(obj: Any) -> str:
    """JSON text for a findings/metadata column."""
    return json.dumps(obj, default=str, sort_keys=True)
