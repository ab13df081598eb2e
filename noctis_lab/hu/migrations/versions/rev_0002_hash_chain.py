"""Hash-chain every history table; accept the "review" status.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Each table gains ``row_hash`` and ``prev_hash`` (see :mod:`noctis_lab.records`).
Rows already stored are chained in id order by a backfill, so a database made
before this revision verifies clean from now on (what was changed before it
cannot be known). The append-only triggers are re-created from the record layer:
on SQLite they now also refuse an INSERT that reuses an id (``INSERT OR
REPLACE``). ``hu_calibrations.status`` accepts ``review`` (localisation doubtful).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from noctis_lab.hu._history_schema import STATUS_SQL, Base
from noctis_lab.records import GENESIS, append_only_ddl, drop_append_only_ddl, row_hash

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("hu_calibrations", "hu_roi_measurements", "hu_checks", "hu_reviews")
_HINT = "record a correction or a review instead"
_OLD_STATUS = "'pass', 'warning', 'fail'"


def _drop_old_triggers(dialect: str) -> None:
    for table in TABLES:
        for sql in drop_append_only_ddl(table, dialect):
            op.execute(sql)


def _add_columns(dialect: str) -> None:
    for table in TABLES:
        for col in ("row_hash", "prev_hash"):
            if dialect == "sqlite":  # ADD COLUMN NOT NULL needs a default on SQLite
                op.execute(f"ALTER TABLE {table} ADD COLUMN {col} VARCHAR(64) NOT NULL DEFAULT ''")
            else:
                op.add_column(table, sa.Column(col, sa.String(64), nullable=True))


def _backfill() -> None:
    """Chain the rows already stored, in id order (plain SQL: the ORM guards refuse UPDATE)."""
    conn = op.get_bind()
    for name in TABLES:
        table = Base.metadata.tables[name]
        prev = GENESIS
        updates = []
        for row in conn.execute(sa.select(table).order_by(table.c.id)).mappings():
            digest = row_hash(table, row, prev)
            updates.append({"h": digest, "p": prev, "i": int(row["id"])})
            prev = digest
        if updates:
            conn.execute(
                sa.text(f"UPDATE {name} SET row_hash = :h, prev_hash = :p WHERE id = :i"), updates
            )


def _status_check(dialect: str, statuses: str) -> None:
    name = "ck_hu_calibrations_status"
    if dialect == "sqlite":
        # re-created: foreign keys are off during migrations (see _history_db)
        with op.batch_alter_table("hu_calibrations", recreate="always") as batch:
            batch.drop_constraint(name, type_="check")
            batch.create_check_constraint(op.f(name), f"status IN ({statuses})")
    else:
        op.drop_constraint(name, "hu_calibrations", type_="check")
        op.create_check_constraint(op.f(name), "hu_calibrations", f"status IN ({statuses})")


def upgrade() -> None:
    """Add and backfill the chain columns, widen the status check, re-create the triggers."""
    dialect = op.get_bind().dialect.name
    _drop_old_triggers(dialect)
    _add_columns(dialect)
    _backfill()
    if dialect != "sqlite":
        for table in TABLES:
            for col in ("row_hash", "prev_hash"):
                op.alter_column(table, col, existing_type=sa.String(64), nullable=False)
    _status_check(dialect, STATUS_SQL)
    for table in TABLES:
        for sql in append_only_ddl(table, dialect, hint=_HINT):
            op.execute(sql)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hu_refuse_change()")


def downgrade() -> None:
    """Drop the chain columns and restore 0001's triggers (deliberate, manual act)."""
    dialect = op.get_bind().dialect.name
    _drop_old_triggers(dialect)
    _status_check(dialect, _OLD_STATUS)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("prev_hash")
            batch.drop_column("row_hash")
    for table in TABLES:
        for sql in append_only_ddl(table, dialect, hint=_HINT):
            if "_no_replace" not in sql:
                op.execute(sql)
