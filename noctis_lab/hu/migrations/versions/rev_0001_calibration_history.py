"""Calibration history: calibrations, ROI measurements, checks, reviews; append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Triggers make every table append-only in the database itself: any UPDATE or
DELETE (and, on PostgreSQL, TRUNCATE) aborts with a message. Written for both
SQLite and PostgreSQL; other dialects rely on the ORM guards only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("hu_calibrations", "hu_roi_measurements", "hu_checks", "hu_reviews")


def _create_tables() -> None:
    op.create_table(
        "hu_calibrations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("supersedes", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("result_uid", sa.String(64), nullable=False),
        sa.Column("scanner_key", sa.String(255), nullable=False),
        sa.Column("manufacturer", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("station", sa.String(255), nullable=False),
        sa.Column("serial", sa.String(255), nullable=False),
        sa.Column("institution", sa.String(255), nullable=False),
        sa.Column("kvp", sa.Float(), nullable=True),
        sa.Column("convolution_kernel", sa.String(64), nullable=False),
        sa.Column("phantom", sa.String(64), nullable=False),
        sa.Column("phantom_title", sa.String(255), nullable=False),
        sa.Column("profile", sa.String(128), nullable=False),
        sa.Column("profile_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=True),
        sa.Column("analysed_at", sa.DateTime(), nullable=True),
        sa.Column("series_uid", sa.String(128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hu_calibrations"),
        sa.ForeignKeyConstraint(
            ["supersedes"],
            ["hu_calibrations.id"],
            name="fk_hu_calibrations_supersedes_hu_calibrations",
        ),
        sa.UniqueConstraint("supersedes", name="uq_hu_calibrations_supersedes"),
        sa.CheckConstraint("kind IN ('calibration', 'correction')", name="ck_hu_calibrations_kind"),
        sa.CheckConstraint(
            "(kind = 'correction' AND supersedes IS NOT NULL) OR "
            "(kind = 'calibration' AND supersedes IS NULL)",
            name="ck_hu_calibrations_correction_links",
        ),
        sa.CheckConstraint(
            "status IN ('pass', 'warning', 'fail')", name="ck_hu_calibrations_status"
        ),
    )
    for col in ("result_uid", "scanner_key", "phantom", "recorded_at", "acquired_at", "series_uid"):
        op.create_index(f"ix_hu_calibrations_{col}", "hu_calibrations", [col])

    op.create_table(
        "hu_roi_measurements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("calibration_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("module", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("material", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("nominal", sa.Float(), nullable=True),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("median", sa.Float(), nullable=True),
        sa.Column("sd", sa.Float(), nullable=True),
        sa.Column("sem", sa.Float(), nullable=True),
        sa.Column("n_pixels", sa.Integer(), nullable=False),
        sa.Column("deviation", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("check_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hu_roi_measurements"),
        sa.ForeignKeyConstraint(
            ["calibration_id"],
            ["hu_calibrations.id"],
            name="fk_hu_roi_measurements_calibration_id_hu_calibrations",
        ),
    )
    op.create_index(
        "ix_hu_roi_measurements_calibration_id", "hu_roi_measurements", ["calibration_id"]
    )
    op.create_index("ix_hu_roi_measurements_material", "hu_roi_measurements", ["material"])

    op.create_table(
        "hu_checks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("calibration_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("measured", sa.Float(), nullable=True),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("deviation", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tolerance", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hu_checks"),
        sa.ForeignKeyConstraint(
            ["calibration_id"],
            ["hu_calibrations.id"],
            name="fk_hu_checks_calibration_id_hu_calibrations",
        ),
    )
    op.create_index("ix_hu_checks_calibration_id", "hu_checks", ["calibration_id"])

    op.create_table(
        "hu_reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hu_reviews"),
        sa.ForeignKeyConstraint(
            ["reviews"], ["hu_calibrations.id"], name="fk_hu_reviews_reviews_hu_calibrations"
        ),
        sa.CheckConstraint(
            "decision IN ('approved', 'rejected', 'needs-repeat')",
            name="ck_hu_reviews_decision",
        ),
    )
    op.create_index("ix_hu_reviews_reviews", "hu_reviews", ["reviews"])


_MESSAGE = "is append-only: record a correction or a review instead"


def _create_guards(dialect: str) -> None:
    if dialect == "sqlite":
        for table in TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {_MESSAGE}'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION hu_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' {_MESSAGE}'; "
            "END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION hu_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION hu_refuse_change()"
            )


def upgrade() -> None:
    """Create the four tables and their append-only triggers."""
    _create_tables()
    _create_guards(op.get_bind().dialect.name)


def downgrade() -> None:
    """Drop the triggers and the tables (a deliberate, manual act; never run on open)."""
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    for table in reversed(TABLES):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hu_refuse_change()")
