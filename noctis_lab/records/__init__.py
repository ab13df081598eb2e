"""One append-only, hash-chained record layer for every store of Noctis Lab.

Records are evidence: a stored row is never changed or removed, and any change
made behind the application's back is detected afterwards. A store adopts the
layer in four steps (the calibration history, :mod:`noctis_lab.hu.history`, is
the worked example):

1. **Declare** the table with an integer ``id`` primary key and the two chain
   columns, and tag it::

       from noctis_lab import records

       events = Table("my_events", metadata,
                      Column("id", Integer, primary_key=True),
                      Column("what", Text, nullable=False),
                      *records.chain_columns())
       records.mark_append_only(events, what="the event log")

2. **Create** it in an Alembic migration, then make it append-only in the
   database, as the table's owner::

       for sql in records.append_only_ddl("my_events", conn.dialect.name):
           op.execute(sql)

   or, for a store without migrations, in one call on first use (creates the
   table, or adds and backfills the chain columns of an older copy, then the
   triggers)::

       records.ensure_chained_table(engine, events, hint="post a new event instead")

   SQLite: ``UPDATE``/``DELETE`` and an ``INSERT`` reusing an id (``INSERT OR
   REPLACE``) abort. PostgreSQL: ``UPDATE``/``DELETE``/``TRUNCATE`` abort, and the
   application connects as a role with only ``SELECT``/``INSERT`` that cannot
   alter or disable the triggers (``noctis-lab services up`` sets it up).

3. **Write** through :func:`append` inside one write transaction, on an engine
   guarded by :func:`guard_engine` (Core ``UPDATE``/``DELETE`` on tagged tables
   raise; :func:`refuse_orm_changes` does the same for ORM classes).
   :mod:`noctis_lab.records._engine` opens such an engine (SQLite in WAL mode,
   ``BEGIN IMMEDIATE`` writes) and retries a busy database::

       from noctis_lab.records._engine import open_engine, retrying, write_transaction

       engine = open_engine(url, what="the event log")
       with write_transaction(engine) as conn:   # BEGIN IMMEDIATE on SQLite
           [new_id] = records.append(conn, events, [{"what": "posted"}])

   :func:`append` gives each row the next id, the SHA-256 of its canonical
   content (``row_hash``) and the previous row's hash (``prev_hash``).

4. **Verify**: add the table to :func:`noctis_lab.records._stores.chained_tables` so
   ``noctis-lab verify`` checks it (the Rooms moderation log, in its own
   ``rooms.db``, is checked with ``noctis-lab verify --rooms ROOT``), or call
   :func:`verify` (the dashboard badge's source)::

       report = records.verify(engine, [events], anchor="~/qa/anchor.json")
       report.ok, report.status, [f.message for f in report.findings]

   A rewritten row (content vs hash), a row without hash, a deleted or reordered
   row (broken link) is named by table and record id; with an ``anchor`` file, a
   deleted tail or a chain recomputed from scratch is found too.
"""

from __future__ import annotations

from noctis_lab.records._adopt import ensure_chained_table
from noctis_lab.records._chain import GENESIS, append, chain_columns, is_chained, row_hash
from noctis_lab.records._guards import (
    append_only_ddl,
    drop_append_only_ddl,
    guard_engine,
    mark_append_only,
    refuse_orm_changes,
)
from noctis_lab.records._verify import Finding, FindingKind, TableVerdict, VerifyReport, verify

__all__ = [
    "GENESIS",
    "Finding",
    "FindingKind",
    "TableVerdict",
    "VerifyReport",
    "append",
    "append_only_ddl",
    "chain_columns",
    "drop_append_only_ddl",
    "ensure_chained_table",
    "guard_engine",
    "is_chained",
    "mark_append_only",
    "refuse_orm_changes",
    "row_hash",
    "verify",
]
