"""``alerts_posted``: the append-only, hash-chained record of what the bot announced."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from noctis_lab import records

__all__ = ["AlertStore", "Taken", "alerts_table", "utcnow"]

_metadata = MetaData()

#: The append-only record of what the bot announced (or noted), one row per key.
alerts_table = Table(
    "alerts_posted",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("key", String(512), nullable=False),
    Column("subject", String(255), nullable=False, index=True),
    Column("value", String(64), nullable=False, default=""),
    Column("posted", Boolean, nullable=False),
    Column("room", String(512), nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    *records.chain_columns(),  # hash-chained: `noctis-lab verify` names a rewritten row
    UniqueConstraint("kind", "key", name="uq_alerts_posted_kind_key"),
)
_HINT = "what was announced stays announced"
records.mark_append_only(alerts_table, what="the QA bot's record", hint=_HINT)


class Taken(Exception):
    """Another run announced (some of) these keys first."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class AlertStore:
    """``alerts_posted`` in the history database (created on first use)."""

    def __init__(self, url: str) -> None:
        from noctis_lab.hu._history_db import open_engine, retrying

        self.engine: Engine = open_engine(url)

        def create() -> None:
            # created, or an older copy chained (backfill); append-only triggers
            records.ensure_chained_table(self.engine, alerts_table, hint=_HINT)

        try:
            retrying(create, what="create the alerts_posted table")
        except IntegrityError:  # another process created it between check and create
            pass
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def announced(self, kind: str, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        t = alerts_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.key).where(t.c.kind == kind, t.c.key.in_(keys)))
            return {str(k) for k in rows.scalars()}

    def last(self, kind: str, subject: str) -> tuple[int, str | None]:
        """Rows stored for ``subject`` and the value of the newest."""
        t = alerts_table
        with self.engine.connect() as conn:
            n = conn.execute(
                select(func.count()).where(t.c.kind == kind, t.c.subject == subject)
            ).scalar()
            v = conn.execute(
                select(t.c.value)
                .where(t.c.kind == kind, t.c.subject == subject)
                .order_by(t.c.id.desc())
                .limit(1)
            ).scalar()
        return int(n or 0), None if v is None else str(v)

    def claim(self, rows: list[dict[str, Any]], post: Callable[[], str | None]) -> str | None:
        """Insert ``rows`` and run ``post`` in one transaction; :class:`Taken` if beaten."""
        from noctis_lab.hu._history_db import retrying, write_transaction

        t = alerts_table
        kind = rows[0]["kind"]
        keys = [r["key"] for r in rows]

        def attempt() -> str | None:
            with write_transaction(self.engine) as conn:
                hit = conn.execute(
                    select(t.c.key).where(t.c.kind == kind, t.c.key.in_(keys)).limit(1)
                ).first()
                if hit is not None:
                    raise Taken(str(hit[0]))
                now = utcnow()
                records.append(conn, t, [{**r, "created_at": now} for r in rows])
                return post()

        try:
            return retrying(attempt, what="record an alert in alerts_posted")
        except IntegrityError as exc:
            raise Taken(str(exc.orig)) from None
