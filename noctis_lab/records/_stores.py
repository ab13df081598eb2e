"""The record tables ``noctis-lab verify`` knows, store by store.

A store that adopts the record layer adds its table definitions to
:func:`chained_tables`; tables listed in :data:`PENDING` are record tables that
are append-only by trigger but not hash-chained yet (``verify`` lists them as
unchained when it finds them).
"""

from __future__ import annotations

from sqlalchemy import Table

__all__ = ["PENDING", "chained_tables"]

#: Record tables not chained yet (AI analyses, feedback and report versions).
PENDING: tuple[str, ...] = ("ai_analyses", "ai_feedback", "ai_report_versions")


def chained_tables() -> list[Table]:
    """Definitions of every hash-chained record table of the package."""
    from noctis_lab.alerts import alerts_table
    from noctis_lab.hu._history_schema import Base as HistoryBase

    return [*HistoryBase.metadata.sorted_tables, alerts_table]
