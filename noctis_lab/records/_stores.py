"""The record tables ``noctis-lab verify`` knows, store by store.

A store that adopts the record layer adds its table definitions to
:func:`chained_tables`; tables listed in :data:`PENDING` are record tables that
are append-only by trigger but not hash-chained yet (``verify`` lists them as
unchained when it finds them). Every store of the package's database is chained
now: the calibration history, the QA bot's ``alerts_posted`` and the AI analyses,
feedback and report versions. The Rooms moderation log lives in its own SQLite
file (``<root>/.noctis/rooms.db``); ``noctis-lab verify --rooms`` checks it.
"""

from __future__ import annotations

from sqlalchemy import Table

__all__ = ["PENDING", "chained_tables"]

#: Record tables not chained yet (none left).
PENDING: tuple[str, ...] = ()


def chained_tables() -> list[Table]:
    """Definitions of every hash-chained record table of the package's database."""
    from noctis_lab.ai._store import TABLES as AI_TABLES
    from noctis_lab.alerts import alerts_table
    from noctis_lab.hu._history_schema import Base as HistoryBase

    return [*HistoryBase.metadata.sorted_tables, alerts_table, *AI_TABLES]
