"""Tables of the calibration history, and the guards that keep them append-only.

The schema itself is created and evolved by the Alembic migrations in
``noctis_lab/hu/migrations`` (never by ``create_all``); the ORM classes here
describe the same tables for queries and for Alembic's autogenerate, which is
scoped to :data:`HISTORY_TABLES` so other areas' tables in the same database
(the AI helper's ``ai_*`` tables) are left alone.

Every table is a record table of :mod:`noctis_lab.records`: hash-chained
(``row_hash``, ``prev_hash``; rows are written with :func:`noctis_lab.records.append`)
and append-only three times over:

* in Python, by SQLAlchemy event hooks (:func:`install_guards`) that raise
  :class:`~noctis_lab.HistoryError` on any ORM flush that would update or delete
  a row and on any Core/ORM ``UPDATE`` or ``DELETE`` statement aimed at these
  tables;
* in the database, by triggers created in the migrations (SQLite and PostgreSQL),
  so even a plain ``sqlite3``/``psql`` session cannot change or remove a record;
* after the fact, by ``noctis-lab verify``, which recomputes the chains and names
  any record rewritten, deleted or reordered behind the triggers' back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from noctis_lab.records import guard_engine, mark_append_only, refuse_orm_changes

__all__ = [
    "HISTORY_TABLES",
    "VERSION_TABLE",
    "Base",
    "CalibrationRow",
    "CheckRow",
    "ReviewRow",
    "RoiRow",
    "include_name",
    "include_object",
    "install_guards",
]

#: Alembic's version table for the history (its own, so other areas may keep theirs).
VERSION_TABLE = "hu_alembic_version"

#: The record statuses the table accepts ("review": localisation doubtful, needs review).
STATUSES: tuple[str, ...] = ("pass", "warning", "fail", "review")
STATUS_SQL = ", ".join(f"'{s}'" for s in STATUSES)

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with its own metadata (only the history's tables)."""

    metadata = MetaData(naming_convention=_NAMING)


class _Chained:
    """The hash-chain columns every history table carries (see :mod:`noctis_lab.records`)."""

    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class CalibrationRow(_Chained, Base):
    """One recorded calibration (``kind='calibration'``) or a correction of one."""

    __tablename__ = "hu_calibrations"
    __table_args__ = (
        CheckConstraint("kind IN ('calibration', 'correction')", name="kind"),
        CheckConstraint(
            "(kind = 'correction' AND supersedes IS NOT NULL) OR "
            "(kind = 'calibration' AND supersedes IS NULL)",
            name="correction_links",
        ),
        CheckConstraint(f"status IN ({STATUS_SQL})", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    supersedes: Mapped[int | None] = mapped_column(
        ForeignKey("hu_calibrations.id"), nullable=True, unique=True
    )
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    result_uid: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    scanner_key: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    manufacturer: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    model: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    station: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    serial: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    institution: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    kvp: Mapped[float | None] = mapped_column(Float, nullable=True)
    convolution_kernel: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    phantom: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    phantom_title: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    profile: Mapped[str] = mapped_column(String(128), nullable=False)
    profile_version: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    operator: Mapped[str] = mapped_column(String(255), nullable=False)
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    baseline: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    acquired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    analysed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    series_uid: Mapped[str] = mapped_column(String(128), nullable=False, default="", index=True)
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    result_json: Mapped[str] = mapped_column(Text, nullable=False)


class RoiRow(_Chained, Base):
    """One ROI measurement of a recorded calibration."""

    __tablename__ = "hu_roi_measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calibration_id: Mapped[int] = mapped_column(
        ForeignKey("hu_calibrations.id"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    module: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    material: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    nominal: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    median: Mapped[float | None] = mapped_column(Float, nullable=True)
    sd: Mapped[float | None] = mapped_column(Float, nullable=True)
    sem: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_pixels: Mapped[int] = mapped_column(Integer, nullable=False)
    deviation: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The accepted interval of the HU check that judged this ROI (absolute HU), if any.
    low: Mapped[float | None] = mapped_column(Float, nullable=True)
    high: Mapped[float | None] = mapped_column(Float, nullable=True)
    check_id: Mapped[str] = mapped_column(String(128), nullable=False, default="")


class CheckRow(_Chained, Base):
    """One check (criterion applied to a measurement) of a recorded calibration."""

    __tablename__ = "hu_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    calibration_id: Mapped[int] = mapped_column(
        ForeignKey("hu_calibrations.id"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    check_id: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(255), nullable=False)
    measured: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected: Mapped[float | None] = mapped_column(Float, nullable=True)
    low: Mapped[float | None] = mapped_column(Float, nullable=True)
    high: Mapped[float | None] = mapped_column(Float, nullable=True)
    deviation: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    tolerance: Mapped[str] = mapped_column(Text, nullable=False, default="")
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")


class ReviewRow(_Chained, Base):
    """A review of a recorded calibration: who judged it, when, and the decision."""

    __tablename__ = "hu_reviews"
    __table_args__ = (
        CheckConstraint("decision IN ('approved', 'rejected', 'needs-repeat')", name="decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reviews: Mapped[int] = mapped_column(
        ForeignKey("hu_calibrations.id"), nullable=False, index=True
    )
    reviewer: Mapped[str] = mapped_column(String(255), nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="")
    reviewed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


#: The tables this module owns (and the only ones Alembic may touch).
HISTORY_TABLES: frozenset[str] = frozenset(Base.metadata.tables)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic filter: reflect only the history's tables (others are not ours)."""
    if type_ == "table":
        return name in HISTORY_TABLES
    return True


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic filter: compare only the history's tables and what belongs to them."""
    if type_ == "table":
        return name in HISTORY_TABLES
    table = getattr(obj, "table", None)
    if table is not None:
        return getattr(table, "name", None) in HISTORY_TABLES
    return True


#: How the guards name this store, and what to do instead of a change.
_WHAT = "the calibration history"
_HINT = "record a correction or a review instead"

for _cls in (CalibrationRow, RoiRow, CheckRow, ReviewRow):
    mark_append_only(Base.metadata.tables[_cls.__tablename__], what=_WHAT, hint=_HINT)
    refuse_orm_changes(_cls)


def install_guards(engine: Engine) -> None:
    """Refuse Core and ORM-bulk ``UPDATE``/``DELETE`` statements on the history tables."""
    guard_engine(engine)
