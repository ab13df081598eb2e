"""The dashboards' record-chain badge: are the stored records still as they were written.

The check is :func:`noctis_lab.records.verify` over every hash-chained record table of
the home's database (the one ``noctis-lab verify`` runs): a rewritten, deleted,
reordered or slipped-in record turns the badge red and names it. Nothing is written:
a database that does not exist yet is "no records yet", not a new file.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from noctis_lab.quality import PALETTE, Status

__all__ = ["ChainState", "RecordsBadge", "records_badge", "records_badge_html"]


class ChainState(StrEnum):
    """What the badge says about the record chains."""

    INTACT = "intact"
    """Every chained table verified: no finding."""
    TAMPERED = "tampered"
    """At least one record was rewritten, deleted, reordered or slipped in."""
    EMPTY = "empty"
    """No database yet: nothing recorded."""
    UNCHECKED = "unchecked"
    """The database could not be read (the reason is in ``detail``)."""


@dataclass(frozen=True)
class RecordsBadge:
    """The result behind the badge.

    Attributes
    ----------
    state : ChainState
        Intact, tampered, empty or unchecked.
    records : int
        Records verified (every chained table).
    tables : int
        Chained tables verified.
    findings : tuple of str
        One line per piece of evidence of tampering (names the table and record).
    detail : str
        Why the check could not run (``UNCHECKED``), else empty.
    """

    state: ChainState
    records: int = 0
    tables: int = 0
    findings: tuple[str, ...] = ()
    detail: str = ""

    @property
    def text(self) -> str:
        """The badge's one line."""
        if self.state is ChainState.INTACT:
            return f"records verified: {self.records} records, chain intact"
        if self.state is ChainState.TAMPERED:
            more = f" (+{len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
            return f"records TAMPERED: {self.findings[0]}{more}"
        if self.state is ChainState.EMPTY:
            return "records: none yet"
        return f"records not verified: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``state`` as its string value)."""
        return {
            "state": str(self.state),
            "records": self.records,
            "tables": self.tables,
            "findings": list(self.findings),
            "detail": self.detail,
            "text": self.text,
        }


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database).expanduser()


def records_badge(url: str | None = None) -> RecordsBadge:
    """Verify the record chains of the database at ``url`` (default: the home's).

    Parameters
    ----------
    url : str, optional
        Database URL; default ``$NOCTIS_DB_URL``, else the home's SQLite file.

    Returns
    -------
    RecordsBadge
        Never raises for a bad or unreachable database: that is ``UNCHECKED`` with
        the reason, so a dashboard panel shows it.
    """
    from sqlalchemy import create_engine

    from noctis_lab import _paths, records
    from noctis_lab.records._stores import PENDING, chained_tables

    resolved = url or _paths.db_url()
    try:
        path = _sqlite_file(resolved)
        if path is not None and not path.is_file():
            return RecordsBadge(ChainState.EMPTY)
        engine = create_engine(resolved)
    except Exception as exc:  # a URL SQLAlchemy cannot parse, a missing driver
        return RecordsBadge(ChainState.UNCHECKED, detail=f"{type(exc).__name__}: {exc}")
    try:
        report = records.verify(engine, chained_tables(), known=PENDING)
    except Exception as exc:  # unreachable server, unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return RecordsBadge(ChainState.UNCHECKED, detail=f"{type(exc).__name__}: {first}")
    finally:
        engine.dispose()
    rows = sum(t.rows for t in report.tables)
    if not report.ok:
        return RecordsBadge(
            ChainState.TAMPERED,
            rows,
            len(report.tables),
            tuple(f.message for f in report.findings),
        )
    if not report.tables:
        return RecordsBadge(ChainState.EMPTY)
    return RecordsBadge(ChainState.INTACT, rows, len(report.tables))


#: Each chain state in the colours of a status of the one palette.
_STYLE = {
    state: (PALETTE[status].fg, PALETTE[status].bg, icon)
    for state, status, icon in (
        (ChainState.INTACT, Status.PASS, "✔"),
        (ChainState.TAMPERED, Status.FAIL, "✖"),
        (ChainState.EMPTY, Status.NOT_CHECKED, "∅"),
        (ChainState.UNCHECKED, Status.WARNING, "?"),
    )
}


def records_badge_html(badge: RecordsBadge) -> str:
    """The badge as HTML (escaped), with every finding in its tooltip."""
    fg, bg, icon = _STYLE[badge.state]
    tip = "\n".join(badge.findings) or "checked with noctis_lab.records.verify (noctis-lab verify)"
    return (
        f"<span class='noctis-records-badge noctis-records-{badge.state}' "
        f"title='{html.escape(tip, quote=True)}' style='color:{fg};background:{bg};"
        f"border:1px solid {fg};border-radius:10px;padding:2px 10px;font-weight:600;"
        f"margin-left:12px;white-space:normal'>{icon} {html.escape(badge.text)}</span>"
    )
