"""Tamper evidence: rewrite the history behind the API's back, then `verify` names the record.

Each test stores a small real history (record 2 is a FAIL), tampers with it the way
the issue describes (SQLite ``INSERT OR REPLACE``, ``DROP TRIGGER`` + ``UPDATE``, a
``DELETE``, two rows swapped; a PostgreSQL owner disabling the triggers) and checks
that the verification names the table and the record, while the untouched history
verifies clean (so the checks can fail both ways).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _history_factory import make_result
from sqlalchemy import MetaData, create_engine, insert, text
from sqlalchemy.exc import DBAPIError

from noctis_lab import HistoryError
from noctis_lab.cli import main
from noctis_lab.hu._history_db import _alembic_config, open_engine
from noctis_lab.hu._history_schema import Base
from noctis_lab.hu.history import CalibrationHistory, _calibration_values, _child_rows
from noctis_lab.records import FindingKind, VerifyReport, row_hash, verify
from noctis_lab.records._stores import chained_tables

T0 = datetime(2026, 1, 5, 9, 0, 0)
FAIL = {"Teflon": 40.0}


def _fill(url: str) -> None:
    """Four calibrations (record 2 a FAIL), one review of record 2."""
    with CalibrationHistory(url) as history:
        for i in range(4):
            history.record(
                make_result(T0 + timedelta(days=7 * i), offsets=FAIL if i == 1 else None), "me"
            )
        history.review(2, "lead", "rejected", "Teflon out of tolerance")
        assert history.get(2).status == "fail"


def _verify(url: str, anchor: Path | None = None) -> VerifyReport:
    engine = open_engine(url)
    try:
        return verify(engine, chained_tables(), anchor=anchor)
    finally:
        engine.dispose()


def _named(report: VerifyReport) -> set[tuple[str, int | None, FindingKind]]:
    return {(f.table, f.record_id, f.kind) for f in report.findings}


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "history.db"
    url = f"sqlite:///{path}"
    _fill(url)
    report = _verify(url)
    assert report.ok, report.findings
    yield url, path


def _sqlite(path: Path, *statements: str) -> None:
    """Run statements in a plain sqlite3 session (no ORM, no engine guards)."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


# --------------------------------------------------------------------- clean stores
def test_a_clean_history_verifies_on_both_backends(db_url: str) -> None:
    _fill(db_url)
    report = _verify(db_url)
    assert report.ok and report.status == "ok"
    rows = {t.table: t.rows for t in report.tables}
    assert rows["hu_calibrations"] == 4 and rows["hu_reviews"] == 1
    assert rows["hu_roi_measurements"] == 4 * len(make_result(T0).rois)
    assert all(t.head_hash and len(t.head_hash) == 64 for t in report.tables)


# --------------------------------------------------------------------- SQLite tampering
def test_insert_or_replace_is_refused_and_once_forced_is_named(
    sqlite_db: tuple[str, Path],
) -> None:
    url, path = sqlite_db
    cols = [c.name for c in Base.metadata.tables["hu_calibrations"].columns]
    # the FAIL becomes a PASS, hashes copied over as they were
    replace = (
        f"INSERT OR REPLACE INTO hu_calibrations ({', '.join(cols)}) "
        f"SELECT {', '.join('$pass' if c == 'status' else c for c in cols)} "
        "FROM hu_calibrations WHERE id = 2"
    ).replace("$pass", "'pass'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        _sqlite(path, replace)
    _sqlite(path, "DROP TRIGGER hu_calibrations_no_replace", replace)
    with CalibrationHistory(url) as history:
        assert history.get(2).status == "pass"  # the rewrite went through ...
    report = _verify(url)
    # ... and is named
    assert _named(report) == {("hu_calibrations", 2, FindingKind.REWRITTEN)}
    assert "hu_calibrations record 2 was rewritten" in report.findings[0].message


def test_drop_trigger_and_update_is_named_by_the_cli(
    sqlite_db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, path = sqlite_db
    assert main(["verify", "--db-url", url, "--exit-code"]) == 0
    assert "status: ok" in capsys.readouterr().out
    _sqlite(
        path,
        "DROP TRIGGER hu_calibrations_no_update",
        "UPDATE hu_calibrations SET status = 'pass' WHERE id = 2",
    )
    assert main(["verify", "--db-url", url]) == 0  # it ran: exit 0, the verdict is in the output
    out = capsys.readouterr().out
    assert "TAMPERED: hu_calibrations record 2 was rewritten" in out
    assert "status: TAMPERED (1 finding(s))" in out
    assert main(["verify", "--db-url", url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "tampered" and doc["ok"] is False
    assert [(f["table"], f["record_id"], f["kind"]) for f in doc["findings"]] == [
        ("hu_calibrations", 2, "rewritten")
    ]
    assert main(["verify", "--db-url", url, "--exit-code"]) == 1  # for a scheduler


def test_deleted_rows_are_named(sqlite_db: tuple[str, Path]) -> None:
    url, path = sqlite_db
    n_roi = len(make_result(T0).rois)
    _sqlite(
        path,
        "DROP TRIGGER hu_calibrations_no_delete",
        "DROP TRIGGER hu_roi_measurements_no_delete",
        "DELETE FROM hu_calibrations WHERE id = 2",
        f"DELETE FROM hu_roi_measurements WHERE id BETWEEN {n_roi + 1} AND {2 * n_roi}",
    )
    report = _verify(url)
    assert _named(report) == {
        ("hu_calibrations", 3, FindingKind.DELETED),
        ("hu_roi_measurements", 2 * n_roi + 1, FindingKind.DELETED),
    }
    messages = {f.message for f in report.findings}
    assert "hu_calibrations record 3 does not link to record 1: record 2 deleted" in messages
    assert any(f"records {n_roi + 1}-{2 * n_roi} deleted" in m for m in messages)


def test_swapped_rows_are_named(sqlite_db: tuple[str, Path]) -> None:
    url, path = sqlite_db
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in con.execute("SELECT * FROM hu_calibrations")}
        con.execute("DROP TRIGGER hu_calibrations_no_update")
        for target, source in ((2, 3), (3, 2)):
            values = {k: v for k, v in rows[source].items() if k != "id"}
            sets = ", ".join(f"{k} = :{k}" for k in values)
            con.execute(f"UPDATE hu_calibrations SET {sets} WHERE id = {target}", values)
    finally:
        con.close()
    named = _named(_verify(url))
    # both moved rows are named; the chain breaks around them (3 -> 2 -> 3 -> 4)
    assert {
        ("hu_calibrations", 2, FindingKind.REWRITTEN),
        ("hu_calibrations", 3, FindingKind.REWRITTEN),
        ("hu_calibrations", 4, FindingKind.RELINKED),
    } <= named
    assert {t for t, *_ in named} == {"hu_calibrations"}


def test_a_row_written_without_the_record_layer_is_named(sqlite_db: tuple[str, Path]) -> None:
    url, path = sqlite_db
    _sqlite(
        path,
        "INSERT INTO hu_reviews (id, reviews, reviewer, decision, comment, reviewed_at) "
        "VALUES (2, 2, 'intruder', 'approved', '', '2026-02-01 00:00:00')",
    )
    assert _named(_verify(url)) == {("hu_reviews", 2, FindingKind.UNHASHED)}


def test_an_anchor_catches_a_deleted_tail_and_a_recomputed_chain(
    sqlite_db: tuple[str, Path], tmp_path: Path
) -> None:
    url, path = sqlite_db
    anchor = tmp_path / "qa" / "anchor.json"
    assert _verify(url, anchor).ok
    assert anchor.stat().st_mode & 0o777 == 0o600
    assert json.loads(anchor.read_text())["tables"]["hu_calibrations"]["id"] == 4
    # The newest record, recomputed with the published algorithm: the chain alone is fine.
    table = Base.metadata.tables["hu_calibrations"]
    engine = create_engine(url)
    with engine.connect() as conn:
        row = dict(conn.execute(table.select().where(table.c.id == 4)).mappings().one())
    engine.dispose()
    row["status"] = "fail"
    forged = row_hash(table, row, row["prev_hash"])
    _sqlite(
        path,
        "DROP TRIGGER hu_calibrations_no_update",
        f"UPDATE hu_calibrations SET status = 'fail', row_hash = '{forged}' WHERE id = 4",
        "DROP TRIGGER hu_reviews_no_delete",
        "DELETE FROM hu_reviews",  # the whole (one-row) chain: its tail
    )
    assert _verify(url).ok  # what a chain alone cannot see ...
    before = anchor.read_text()
    report = _verify(url, anchor)  # ... the anchor of the last clean run sees
    assert _named(report) == {
        ("hu_calibrations", 4, FindingKind.ANCHOR),
        ("hu_reviews", 1, FindingKind.ANCHOR),
    }
    assert anchor.read_text() == before  # kept: the alarm repeats until someone acts


# --------------------------------------------------------------------- PostgreSQL roles
def test_postgresql_app_role_cannot_touch_triggers_and_an_owner_rewrite_is_named(
    pg_server: Any,
) -> None:
    owner_url, app_url = pg_server.create_owned_database()
    CalibrationHistory(owner_url).close()  # the migrations run as the owner
    _fill(app_url)  # the application appends as its own role
    app = create_engine(app_url)
    owner = create_engine(owner_url)
    try:
        for sql, error in (
            ("ALTER TABLE hu_calibrations DISABLE TRIGGER ALL", "must be owner"),
            ("ALTER TABLE hu_calibrations DISABLE TRIGGER USER", "must be owner"),
            ("DROP TRIGGER hu_calibrations_append_only ON hu_calibrations", "must be owner"),
            ("UPDATE hu_calibrations SET status = 'pass' WHERE id = 2", "permission denied"),
            ("DELETE FROM hu_reviews", "permission denied"),
            ("TRUNCATE hu_checks CASCADE", "permission denied"),
            ("CREATE TABLE intruder (id int)", "permission denied"),
        ):
            with pytest.raises(DBAPIError, match=error), app.begin() as conn:
                conn.exec_driver_sql(sql)
        with owner.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE hu_calibrations DISABLE TRIGGER USER")
            conn.exec_driver_sql("UPDATE hu_calibrations SET status = 'pass' WHERE id = 2")
            conn.exec_driver_sql("ALTER TABLE hu_calibrations ENABLE TRIGGER USER")
    finally:
        app.dispose()
        owner.dispose()
    report = _verify(app_url)  # the application role may verify
    assert _named(report) == {("hu_calibrations", 2, FindingKind.REWRITTEN)}


# --------------------------------------------------------------------- migration
def test_existing_history_is_chained_by_the_migration(db_url: str) -> None:
    from alembic import command

    engine = open_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0001")
            old = MetaData()
            old.reflect(conn, only=["hu_calibrations", "hu_roi_measurements", "hu_checks"])
            assert "row_hash" not in old.tables["hu_calibrations"].c
            for i in range(3):  # rows as revision 0001 wrote them: no hash
                result = make_result(T0 + timedelta(days=i), offsets=FAIL if i == 1 else None)
                values = _calibration_values(
                    result,
                    kind="calibration",
                    operator="me",
                    notes="",
                    reason="",
                    baseline=False,
                    supersedes=None,
                )
                cal_id = conn.execute(
                    insert(old.tables["hu_calibrations"]).values(**values)
                ).inserted_primary_key[0]
                rois, checks = _child_rows(result, int(cal_id))
                conn.execute(insert(old.tables["hu_roi_measurements"]), rois)
                conn.execute(insert(old.tables["hu_checks"]), checks)
    finally:
        engine.dispose()
    with CalibrationHistory(db_url) as history:
        assert history.revision == "0002" and len(history) == 3
        assert history.get(2).status == "fail"
        history.record(make_result(T0 + timedelta(days=9)), "me")  # chains on
    report = _verify(db_url)
    assert report.ok, report.findings
    assert {t.table: t.head_id for t in report.tables}["hu_calibrations"] == 4
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER hu_calibrations_no_update")
            else:
                conn.exec_driver_sql("ALTER TABLE hu_calibrations DISABLE TRIGGER USER")
            conn.execute(text("UPDATE hu_calibrations SET status = 'pass' WHERE id = 2"))
    finally:
        engine.dispose()
    assert _named(_verify(db_url)) == {("hu_calibrations", 2, FindingKind.REWRITTEN)}


def test_verify_cli_could_not_run_is_exit_2(tmp_path: Path) -> None:
    assert main(["verify", "--db-url", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert not (tmp_path / "none.db").exists()  # verifying creates nothing
    assert main(["verify", "--db-url", "nonsense://"]) == 2


def test_review_status_is_accepted(db_url: str) -> None:
    import dataclasses

    result = dataclasses.replace(make_result(T0), status="review")  # type: ignore[arg-type]
    with CalibrationHistory(db_url) as history:
        rid = history.record(result, "me")
        assert history.get(rid).status == "review"
    assert _verify(db_url).ok


def test_anchor_of_another_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    _fill(url)
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({"db": "sqlite:///elsewhere.db", "tables": {}}))
    assert main(["verify", "--db-url", url, "--anchor", str(anchor)]) == 2


# --------------------------------------------------------------------- another store adopts it
def test_alerts_posted_is_chained_including_an_older_copy(db_url: str) -> None:
    """The QA bot's record: an unchained table from before is backfilled, then tamper shows."""
    from sqlalchemy import Boolean, Column, DateTime, Integer, String, Table, Text

    from noctis_lab.alerts._store import AlertStore as _Store

    old = MetaData()
    legacy = Table(
        "alerts_posted",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(32), nullable=False),
        Column("key", String(512), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("value", String(64), nullable=False),
        Column("posted", Boolean, nullable=False),
        Column("room", String(512), nullable=False),
        Column("text", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            legacy.create(conn)
            conn.execute(
                insert(legacy),
                [
                    {
                        "kind": "calibration",
                        "key": f"k{i}",
                        "subject": "GE/Revolution/123",
                        "value": "fail",
                        "posted": True,
                        "room": "qa-hu.chat",
                        "text": f"FAIL {i}",
                        "created_at": T0 + timedelta(days=i),
                    }
                    for i in range(3)
                ],
            )
    finally:
        engine.dispose()
    store = _Store(db_url)  # chains the three old rows, adds the triggers
    try:
        store.claim([{"kind": "drift", "key": "d1", "subject": "s", "posted": True}], lambda: None)
    finally:
        store.close()
    report = _verify(db_url)
    assert report.ok, report.findings
    assert {t.table: t.rows for t in report.tables}["alerts_posted"] == 4
    engine = create_engine(db_url)
    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alerts_posted SET posted = FALSE WHERE id = 2")
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER alerts_posted_no_update")
            else:
                conn.exec_driver_sql("ALTER TABLE alerts_posted DISABLE TRIGGER USER")
            conn.exec_driver_sql("UPDATE alerts_posted SET posted = FALSE WHERE id = 2")
    finally:
        engine.dispose()
    assert _named(_verify(db_url)) == {("alerts_posted", 2, FindingKind.REWRITTEN)}


def test_the_app_role_does_not_migrate_and_says_who_does(pg_server: Any) -> None:
    _, app_url = pg_server.create_owned_database()  # nothing migrated yet
    with pytest.raises(HistoryError, match=r"permission denied.*noctis-lab services up"):
        CalibrationHistory(app_url)
