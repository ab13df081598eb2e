"""Verify hash-chained tables: every rewrite, deletion or reordering is named.

:func:`verify_table` walks one table in id order and recomputes each row's hash;
:func:`verify` does it for every chained table of a database and, with an
``anchor`` file, also checks that the chain heads seen by the previous clean run
are still there with the same hashes (which catches a deleted tail or a chain
recomputed from scratch, the two rewrites a chain alone cannot show).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Table, inspect, select
from sqlalchemy.engine import Connection, Engine

from noctis_lab._errors import HistoryError
from noctis_lab.records._chain import CHAIN_COLUMNS, GENESIS, is_chained, row_hash

__all__ = ["Finding", "FindingKind", "TableVerdict", "VerifyReport", "verify", "verify_table"]


class FindingKind(StrEnum):
    """What a finding says happened to the records."""

    REWRITTEN = "rewritten"
    """A row's content no longer matches its hash."""
    UNHASHED = "unhashed"
    """A row carries no hash: written behind the record layer's back."""
    DELETED = "deleted"
    """Rows are missing between two rows of the chain."""
    RELINKED = "relinked"
    """A row does not link to the row before it (rows reordered, replaced or inserted)."""
    ANCHOR = "anchor"
    """A chain head recorded by an earlier clean run is gone or changed."""


@dataclass(frozen=True)
class Finding:
    """One piece of evidence of tampering, naming the table and the record."""

    table: str
    record_id: int | None
    kind: FindingKind
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``kind`` as its string value)."""
        return {
            "table": self.table,
            "record_id": self.record_id,
            "kind": str(self.kind),
            "message": self.message,
        }


@dataclass(frozen=True)
class TableVerdict:
    """The verification of one chained table."""

    table: str
    rows: int
    head_id: int | None
    head_hash: str | None
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "table": self.table,
            "ok": self.ok,
            "rows": self.rows,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class VerifyReport:
    """The verification of a database: one verdict per chained table.

    ``status`` is ``"ok"`` or ``"tampered"``; ``unchained`` lists known record
    tables present in the database that carry no hash chain yet.
    """

    url: str
    tables: tuple[TableVerdict, ...]
    unchained: tuple[str, ...] = ()
    anchor: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every table."""
        return tuple(f for t in self.tables for f in t.findings)

    @property
    def ok(self) -> bool:
        """No table has a finding."""
        return not self.findings

    @property
    def status(self) -> str:
        """``"ok"`` or ``"tampered"``."""
        return "ok" if self.ok else "tampered"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "status": self.status,
            "ok": self.ok,
            "db": self.url,
            "checked_at": self.checked_at.isoformat(),
            "anchor": self.anchor,
            "tables": [t.to_dict() for t in self.tables],
            "unchained": list(self.unchained),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent)


def _link_finding(table: str, rid: int, prev_id: int) -> Finding:
    if rid > prev_id + 1:
        gone = f"record {prev_id + 1}" if rid == prev_id + 2 else f"records {prev_id + 1}-{rid - 1}"
        return Finding(
            table,
            rid,
            FindingKind.DELETED,
            f"{table} record {rid} does not link to record {prev_id or '(start)'}: {gone} deleted",
        )
    return Finding(
        table,
        rid,
        FindingKind.RELINKED,
        f"{table} record {rid} does not link to the record before it "
        f"({prev_id or 'start of the chain'}): records reordered, replaced or inserted",
    )


def verify_table(conn: Connection, table: Table) -> TableVerdict:
    """Recompute the chain of ``table`` and report every break.

    Parameters
    ----------
    conn : Connection
        An open connection to the database.
    table : Table
        A chained table definition (see :func:`~noctis_lab.records.chain_columns`).

    Returns
    -------
    TableVerdict
        Row count, the chain head and the findings (empty when intact).
    """
    name = table.name
    findings: list[Finding] = []
    prev_hash, prev_id, rows = GENESIS, 0, 0
    result = conn.execution_options(yield_per=2000).execute(select(table).order_by(table.c.id))
    for row in result.mappings():
        rows += 1
        rid, stored, link = int(row["id"]), row["row_hash"], row["prev_hash"]
        if not stored:
            findings.append(
                Finding(
                    name,
                    rid,
                    FindingKind.UNHASHED,
                    f"{name} record {rid} has no hash: it was written behind the record "
                    "layer's back",
                )
            )
        elif row_hash(table, row, str(link or "")) != stored:
            findings.append(
                Finding(
                    name,
                    rid,
                    FindingKind.REWRITTEN,
                    f"{name} record {rid} was rewritten: its content does not match its hash",
                )
            )
        if stored and (link or "") != prev_hash:
            findings.append(_link_finding(name, rid, prev_id))
        prev_hash, prev_id = str(stored or ""), rid
    return TableVerdict(
        name,
        rows,
        prev_id or None,
        prev_hash if rows else None,
        tuple(findings),
    )


def _check_anchor(
    conn: Connection, tables: Mapping[str, Table], anchor: Mapping[str, Any]
) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for name, head in dict(anchor.get("tables", {})).items():
        table = tables.get(name)
        if table is None or head.get("id") is None:
            continue
        hid = int(head["id"])
        stored = conn.execute(select(table.c.row_hash).where(table.c.id == hid)).scalar()
        if stored is None:
            msg = f"{name} record {hid}, the chain head at the last clean verification, is gone"
        elif stored != head.get("hash"):
            msg = (
                f"{name} record {hid} changed since the last clean verification: "
                "the chain was recomputed"
            )
        else:
            continue
        out.setdefault(name, []).append(Finding(name, hid, FindingKind.ANCHOR, msg))
    return out


def _read_anchor(path: Path, url: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HistoryError(f"cannot read the verification anchor {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("db") != url:
        raise HistoryError(
            f"the verification anchor {path} belongs to {data.get('db')!r}, not {url!r}; "
            "give each database its own anchor file"
        )
    return data


def _write_anchor(path: Path, report: VerifyReport) -> None:
    data = {
        "db": report.url,
        "checked_at": report.checked_at.isoformat(),
        "tables": {t.table: {"id": t.head_id, "hash": t.head_hash} for t in report.tables},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".anchor-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _chained_in_db(insp: Any, name: str) -> bool:
    cols = {c["name"] for c in insp.get_columns(name)}
    return {"id", *CHAIN_COLUMNS} <= cols


def verify(
    engine: Engine,
    tables: Iterable[Table],
    *,
    anchor: str | Path | None = None,
    known: Iterable[str] = (),
) -> VerifyReport:
    """Verify every chained table of ``tables`` that exists in the database.

    Parameters
    ----------
    engine : Engine
        The database.
    tables : iterable of Table
        Table definitions; unchained ones and ones absent from the database are skipped.
    anchor : str or Path, optional
        A JSON file with the chain heads of the last clean run. Its heads must still
        be there with the same hashes; after a clean run it is advanced (mode 0600).
        A run with findings leaves it alone, so the alarm repeats until resolved.
    known : iterable of str
        Names of other record tables; the ones present but unchained are listed in
        :attr:`VerifyReport.unchained`.

    Returns
    -------
    VerifyReport
        The verdict; ``report.ok`` is False when anything was tampered with.

    Raises
    ------
    HistoryError
        The anchor file cannot be read or belongs to another database.
    """
    url = engine.url.render_as_string(hide_password=True)
    path = None if anchor is None else Path(anchor).expanduser()
    previous = {} if path is None else _read_anchor(path, url)
    tables = list(tables)
    with engine.connect() as conn:
        insp = inspect(conn)
        present = set(insp.get_table_names())
        chained = {
            t.name: t
            for t in tables
            if is_chained(t) and t.name in present and _chained_in_db(insp, t.name)
        }
        verdicts = [verify_table(conn, chained[name]) for name in sorted(chained)]
        extra = _check_anchor(conn, chained, previous) if previous else {}
    verdicts = [
        TableVerdict(
            v.table, v.rows, v.head_id, v.head_hash, (*v.findings, *extra.get(v.table, []))
        )
        for v in verdicts
    ]
    names = set(known) | {t.name for t in tables}
    unchained = tuple(sorted(n for n in names & present if n not in chained))
    report = VerifyReport(url, tuple(verdicts), unchained, None if path is None else str(path))
    if path is not None and report.ok:
        _write_anchor(path, report)
    return report
