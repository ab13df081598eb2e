"""The AI store on the record layer: rewrite each AI table behind the API's back, `verify` names it.

A small real AI record (three analyses, three feedbacks, a report in three versions)
is written through the public API on SQLite and on PostgreSQL; each table is then
tampered with the way the issue describes (the triggers first refuse, then are
dropped or disabled: ``UPDATE``, ``INSERT OR REPLACE`` / ``ON CONFLICT DO UPDATE``,
``DELETE``) and ``noctis-lab verify`` must name exactly the tampered records. An
older store without the chain is upgraded with every row kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, UniqueConstraint, create_engine, insert, select
from sqlalchemy.exc import DBAPIError

from noctis_lab.ai import record_analysis, record_feedback, review_report, submit_report
from noctis_lab.ai._report import ReportText
from noctis_lab.ai._store import TABLES, get_engine
from noctis_lab.cli import main
from noctis_lab.hu._history_db import open_engine
from noctis_lab.records import FindingKind, VerifyReport, append_only_ddl, verify
from noctis_lab.records._chain import CHAIN_COLUMNS
from noctis_lab.records._stores import chained_tables


def _verify(url: str) -> VerifyReport:
    engine = open_engine(url)
    try:
        return verify(engine, chained_tables())
    finally:
        engine.dispose()


def _named(report: VerifyReport) -> set[tuple[str, int | None, FindingKind]]:
    return {(f.table, f.record_id, f.kind) for f in report.findings}


def _fill(url: str) -> None:
    """Analysis 2 failed; feedback 2 a false positive; report versions pending/modified/approved."""
    for i, status in enumerate(("success", "failed", "success")):
        record_analysis(
            "cls",
            "1",
            status=status,  # type: ignore[arg-type]
            processing_time_s=0.1 * (i + 1),
            confidence=0.9 if status == "success" else None,
            findings={"i": i},
            error="NaN in input" if status == "failed" else None,
            study_uid=f"1.2.{i}",
            db_url=url,
        )
    for i, verdict in enumerate(("agree", "false_positive", "agree")):
        record_feedback(
            "cls", "1", verdict, rating=4 - i, analysis_id=i + 1, user=f"dr-{i}", db_url=url
        )  # type: ignore[arg-type]
    text = ReportText("Ring artifact.", "Artifact suspected.", "Re-scan.", True, 0.55)
    v1 = submit_report(text, model_name="cls", model_version="1", analysis_id=1, db_url=url)
    review_report(v1.report_id, "modified", reviewer="dr-a", impression="None.", db_url=url)
    review_report(v1.report_id, "approved", reviewer="dr-b", db_url=url)


def _run(url: str, *statements: str) -> None:
    """Statements on a plain engine (no record layer, no guards), one transaction."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _refused(url: str, sql: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        _run(url, sql)


def _replace_feedback_2(url: str, dialect: str) -> str:
    """Feedback 2 re-inserted over itself as an 'agree', its hashes copied as they were."""
    cols = [c.name for c in TABLES[1].columns]
    values = ", ".join("'agree'" if c == "verdict" else c for c in cols)
    source = f"SELECT {values} FROM ai_feedback WHERE id = 2"
    if dialect == "sqlite":
        return f"INSERT OR REPLACE INTO ai_feedback ({', '.join(cols)}) {source}"
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c != "id")
    quoted = ", ".join(f'"{c}"' for c in cols)
    return f"INSERT INTO ai_feedback ({quoted}) {source} ON CONFLICT (id) DO UPDATE SET {sets}"


def test_each_ai_table_rewritten_behind_the_api_is_named(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db_url)
    report = _verify(db_url)
    assert report.ok, report.findings
    rows = {t.table: t.rows for t in report.tables}
    assert rows["ai_analyses"] == rows["ai_feedback"] == rows["ai_report_versions"] == 3
    dialect = get_engine(db_url).dialect.name
    rewrite = "UPDATE ai_analyses SET status = 'success', error = NULL WHERE id = 2"
    replace = _replace_feedback_2(db_url, dialect)
    delete = "DELETE FROM ai_report_versions WHERE id = 2"
    for sql in (rewrite, replace, delete):  # the triggers refuse each ...
        _refused(db_url, sql)
    if dialect == "sqlite":  # ... until dropped
        unguard = [
            "DROP TRIGGER ai_analyses_no_update",
            "DROP TRIGGER ai_feedback_no_replace",
            "DROP TRIGGER ai_feedback_no_delete",  # REPLACE deletes the old row first
            "DROP TRIGGER ai_report_versions_no_delete",
        ]
    else:  # ... until the owner disables them
        unguard = [f"ALTER TABLE {t.name} DISABLE TRIGGER USER" for t in TABLES]
    _run(db_url, *unguard, rewrite, replace, delete)
    engine = get_engine(db_url)
    with engine.connect() as conn:  # the rewrites went through
        assert conn.execute(select(TABLES[0].c.status).where(TABLES[0].c.id == 2)).scalar() == (
            "success"
        )
        assert conn.execute(select(TABLES[1].c.verdict).where(TABLES[1].c.id == 2)).scalar() == (
            "agree"
        )
    assert _named(_verify(db_url)) == {
        ("ai_analyses", 2, FindingKind.REWRITTEN),
        ("ai_feedback", 2, FindingKind.REWRITTEN),
        ("ai_report_versions", 3, FindingKind.DELETED),
    }
    assert main(["verify", "--db-url", db_url, "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED: ai_analyses record 2 was rewritten" in out
    assert "TAMPERED: ai_feedback record 2 was rewritten" in out
    assert "TAMPERED: ai_report_versions record 3 does not link to record 1: record 2 deleted" in (
        out
    )


def test_the_postgresql_app_role_cannot_unguard_the_ai_tables(pg_server: Any) -> None:
    """As set up by `services up`: the owner makes the tables, the app role only appends."""
    from noctis_lab.services import migrate_stores

    owner_url, app_url = pg_server.create_owned_database()
    migrate_stores(owner_url)
    _fill(app_url)
    for sql, error in (
        ("ALTER TABLE ai_feedback DISABLE TRIGGER USER", "must be owner"),
        ("DROP TRIGGER ai_feedback_append_only ON ai_feedback", "must be owner"),
        ("UPDATE ai_feedback SET verdict = 'agree' WHERE id = 2", "permission denied"),
        ("TRUNCATE ai_report_versions", "permission denied"),
    ):
        with pytest.raises(DBAPIError, match=error):
            _run(app_url, sql)
    _run(
        owner_url,
        "ALTER TABLE ai_feedback DISABLE TRIGGER USER",
        "UPDATE ai_feedback SET verdict = 'agree' WHERE id = 2",
    )
    assert _named(_verify(app_url)) == {("ai_feedback", 2, FindingKind.REWRITTEN)}


def _legacy_tables() -> list[Table]:
    """The AI tables as the store made them before the record layer (no chain columns)."""
    old = MetaData()
    out = []
    for table in TABLES:
        cols = [c._copy() for c in table.columns if c.name not in CHAIN_COLUMNS]
        extra = (
            [UniqueConstraint("report_id", "version")] if table.name == "ai_report_versions" else []
        )
        out.append(Table(table.name, old, *cols, *extra))
    return out


def _legacy_guards(table: str, dialect: str) -> list[str]:
    """The old store's triggers: its own UPDATE/DELETE ones (SQLite), the records' (PostgreSQL)."""
    if dialect != "sqlite":
        return append_only_ddl(table, dialect)  # what `services up` added
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for op in ("UPDATE", "DELETE")
    ]


def test_an_older_ai_store_is_chained_with_every_row_kept(db_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            analyses, feedback, versions = _legacy_tables()
            for table in (analyses, feedback, versions):
                table.create(conn)
                for sql in _legacy_guards(table.name, conn.dialect.name):
                    conn.exec_driver_sql(sql)
            conn.execute(
                insert(analyses),
                [
                    {
                        "created_at": t0 + timedelta(hours=i),
                        "model_name": "old",
                        "model_version": "1",
                        "study_uid": f"9.{i}",
                        "status": "success",
                        "processing_time_s": 0.25 * i,
                        "confidence": None if i == 2 else 0.5 + i / 10,
                        "findings": "{}",
                    }
                    for i in range(4)
                ],
            )
            conn.execute(
                insert(feedback),
                [
                    {
                        "created_at": t0,
                        "analysis_id": 2,
                        "model_name": "old",
                        "model_version": "1",
                        "verdict": "false_negative",
                        "rating": None,
                        "comment": "missed it",
                        "user": "dr-x",
                    }
                ],
            )
    finally:
        engine.dispose()
    get_engine(db_url)  # first use by the new code: the chain is added and backfilled
    record_analysis("old", "1", status="failed", processing_time_s=1.5, db_url=db_url)
    report = _verify(db_url)
    assert report.ok, report.findings
    rows = {t.table: t.rows for t in report.tables}
    assert (rows["ai_analyses"], rows["ai_feedback"], rows["ai_report_versions"]) == (5, 1, 0)
    with get_engine(db_url).connect() as conn:  # nothing lost or changed by the upgrade
        kept = conn.execute(select(TABLES[0]).order_by(TABLES[0].c.id)).mappings().all()
    assert [r["study_uid"] for r in kept[:4]] == ["9.0", "9.1", "9.2", "9.3"]
    assert [r["confidence"] for r in kept[:4]] == [0.5, 0.6, None, 0.8]
    assert kept[4]["status"] == "failed" and kept[4]["prev_hash"] == kept[3]["row_hash"]
    _refused(db_url, "UPDATE ai_feedback SET verdict = 'agree'")
    unguard = (
        "DROP TRIGGER ai_analyses_no_update"
        if "sqlite" in db_url
        else "ALTER TABLE ai_analyses DISABLE TRIGGER USER"
    )
    _run(db_url, unguard, "UPDATE ai_analyses SET model_version = '2' WHERE id = 3")
    assert _named(_verify(db_url)) == {("ai_analyses", 3, FindingKind.REWRITTEN)}
