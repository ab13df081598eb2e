"""The append-only store: records, corrections, reviews, guards, migrations, queries."""

from __future__ import annotations

import dataclasses
import sqlite3
import warnings
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _history_factory import make_result
from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from noctis_lab import HistoryError
from noctis_lab.hu._history_db import head_revision
from noctis_lab.hu._history_schema import (
    HISTORY_TABLES,
    VERSION_TABLE,
    Base,
    CalibrationRow,
    include_name,
    include_object,
)
from noctis_lab.hu.history import AlreadyRecordedWarning, CalibrationHistory

T0 = datetime(2026, 1, 1, 9, 0, 0)
KEY = "GE/Revolution/123"


def _count(history: CalibrationHistory, table: str) -> int:
    with history._engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)


# --------------------------------------------------------------------- record / get
def test_record_and_get_round_trip(db_url: str) -> None:
    result = make_result(T0, offsets={"Teflon": 4.0})
    with CalibrationHistory(db_url) as history:
        rid = history.record(result, operator="A. Physicist", notes="monthly QA")
        rec = history.get(rid)
        assert rec.result == result  # rebuilt through CalibrationResult.from_dict
        assert (rec.scanner, rec.phantom, rec.operator, rec.notes) == (
            KEY,
            "catphan604",
            "A. Physicist",
            "monthly QA",
        )
        assert rec.kind == "calibration" and rec.current and rec.decision is None
        assert rec.acquired_at == T0.replace(tzinfo=rec.acquired_at.tzinfo)
        assert rec.acquired_at is not None and rec.acquired_at.utcoffset() == timedelta(0)
        # one child row per ROI and per check
        assert _count(history, "hu_roi_measurements") == len(result.rois)
        assert _count(history, "hu_checks") == len(result.checks)
        with history._engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT mean, nominal, deviation, low, high, status FROM hu_roi_measurements "
                    "WHERE material = 'Teflon'"
                )
            ).one()
        assert row == (1004.0, 1000.0, 4.0, 990.0, 1010.0, "pass")
        assert rec.to_dict()["result"]["id"] == result.id


def test_record_refuses_bad_input_and_duplicates(tmp_path: Path) -> None:
    with CalibrationHistory(f"sqlite:///{tmp_path / 'h.db'}") as history:
        result = make_result(T0)
        with pytest.raises(HistoryError, match="operator must be a non-empty text"):
            history.record(result, operator="  ")
        with pytest.raises(HistoryError, match="stores CalibrationResult objects, got dict"):
            history.record(result.to_dict(), operator="me")  # type: ignore[arg-type]
        rid = history.record(result, operator="me")
        # the same result without a series UID cannot be told apart by series: refused
        bare = dataclasses.replace(result, series_uid="", id="bare-analysis")
        bare_id = history.record(bare, operator="me")
        with pytest.raises(HistoryError, match=f"already recorded as record {bare_id}"):
            history.record(bare, operator="me")
        with pytest.raises(HistoryError, match=r"no calibration record 99 .*from 1 to 2"):
            history.get(99)
        assert len(history) == 2 and rid == 1


# --------------------------------------------------------------------- idempotent recording
def test_recording_a_series_again_is_a_no_op_with_a_message(db_url: str) -> None:
    """Issue 15: a re-run notebook records the same series once; corrections stay linked."""
    result = make_result(T0)
    with CalibrationHistory(db_url) as history:
        assert history.recorded_as(result) is None
        rid = history.record(result, "me")
        # a new analysis of the same series (new result id), same phantom and profile
        again = dataclasses.replace(result, id="another-analysis")
        assert history.recorded_as(again) == rid
        with pytest.warns(AlreadyRecordedWarning, match=rf"already recorded as record {rid}"):
            assert history.record(again, "me") == rid
        assert len(history) == 1
        # another profile version, phantom or series is another calibration
        for other in (
            dataclasses.replace(again, id="a2", profile_version="2.0"),
            dataclasses.replace(again, id="a3", profile="other-profile"),
            make_result(T0, series_uid="1.2.3.999"),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert history.record(other, "me") not in (None, rid)
        assert len(history) == 4
        # a correction and a review of the first record are linked records, as before
        cid = history.correct(rid, again, "me", "ROI moved off the bead")
        history.review(cid, "lead", "approved")
        assert history.get(cid).supersedes == rid and len(history) == 5
        with pytest.warns(AlreadyRecordedWarning):
            assert history.record(result, "me") == rid
        assert len(history) == 5


def test_cli_says_when_a_series_is_already_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from noctis_lab.cli import main
    from noctis_lab.hu.synthetic import generate, write

    series = tmp_path / "series"
    write(generate("catphan604", matrix=256, pixel_size_mm=1.0, slice_thickness_mm=5.0), series)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["hu", "analyze", str(series), "--record", "--operator", "me", "--db", db]
    assert main(argv) == 0
    assert "recorded as history record 1" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "already recorded as history record 1" in out and "nothing stored" in out
    with CalibrationHistory(db) as history:
        assert len(history) == 1


# --------------------------------------------------------------------- corrections / reviews
def test_correction_replaces_in_trend_but_keeps_old_row(db_url: str) -> None:
    with CalibrationHistory(db_url) as history:
        ids = [
            history.record(make_result(T0 + timedelta(days=i), offsets={"Teflon": 1.0 * i}), "me")
            for i in range(3)
        ]
        fixed = make_result(T0 + timedelta(days=1), offsets={"Teflon": -2.5})
        cid = history.correct(ids[1], fixed, operator="reviewer", reason="ROI on an air bubble")
        assert cid == ids[-1] + 1
        old, new = history.get(ids[1]), history.get(cid)
        assert old.superseded_by == cid and not old.current
        assert (
            new.kind == "correction" and new.supersedes == ids[1] and new.reason.startswith("ROI")
        )
        trend = history.trend(KEY, material="Teflon")
        assert list(trend["record_id"]) == [ids[0], cid, ids[2]]
        assert list(trend["mean"]) == [1000.0, 997.5, 1002.0]
        recs = history.records(scanner=KEY)
        assert len(recs) == 4  # the old row is still there
        assert list(recs["current"]) == [True, False, True, True]
        assert len(history.records(scanner=KEY, current_only=True)) == 3
        with pytest.raises(HistoryError, match=f"already corrected by record {cid}"):
            history.correct(ids[1], fixed, operator="x", reason="again")
        with pytest.raises(HistoryError, match="reason must be a non-empty text"):
            history.correct(cid, fixed, operator="x", reason="")
        # a correction of the correction chains on
        cid2 = history.correct(cid, make_result(T0 + timedelta(days=1)), "x", reason="recheck")
        assert list(history.trend(KEY, material="Teflon")["record_id"]) == [ids[0], cid2, ids[2]]
        assert history.latest(KEY).id == ids[2]


def test_reviews(db_url: str) -> None:
    with CalibrationHistory(db_url) as history:
        rid = history.record(make_result(T0), "me")
        r1 = history.review(rid, "Dr Lead", "needs-repeat", "noisy")
        r2 = history.review(rid, "Dr Lead", "approved", "repeat was fine")
        assert r2 > r1
        rec = history.get(rid)
        assert [r.decision for r in rec.reviews] == ["needs-repeat", "approved"]
        assert rec.decision == "approved" and rec.reviews[0].comment == "noisy"
        assert rec.reviews[1].reviewed_at.tzinfo is not None
        assert history.records()["decision"].tolist() == ["approved"]
        with pytest.raises(HistoryError, match=r"decision must be one of .*'approved'"):
            history.review(rid, "Dr Lead", "ok")  # type: ignore[arg-type]
        with pytest.raises(HistoryError, match="no calibration record 42"):
            history.review(42, "Dr Lead", "approved")


# --------------------------------------------------------------------- append-only
def test_orm_refuses_update_and_delete(db_url: str) -> None:
    with CalibrationHistory(db_url) as history:
        rid = history.record(make_result(T0), "me")
        with Session(history._engine) as session:
            row = session.get(CalibrationRow, rid)
            assert row is not None
            row.operator = "someone else"
            with pytest.raises(HistoryError, match="append-only: refusing to change or delete"):
                session.flush()
            session.rollback()
            row = session.get(CalibrationRow, rid)
            session.delete(row)
            with pytest.raises(HistoryError, match="append-only"):
                session.flush()
            session.rollback()
            with pytest.raises(HistoryError, match="refusing UPDATE on table 'hu_checks'"):
                session.execute(update(Base.metadata.tables["hu_checks"]).values(status="pass"))
        with (
            history._engine.begin() as conn,
            pytest.raises(HistoryError, match="refusing DELETE on table 'hu_reviews'"),
        ):
            conn.execute(delete(Base.metadata.tables["hu_reviews"]))
        assert history.get(rid).operator == "me"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE hu_calibrations SET operator = 'x'",
        "DELETE FROM hu_roi_measurements",
        "UPDATE hu_checks SET status = 'pass'",
        "DELETE FROM hu_reviews",
    ],
)
def test_database_triggers_refuse_raw_sql(db_url: str, sql: str) -> None:
    with CalibrationHistory(db_url) as history:
        rid = history.record(make_result(T0), "me")
        history.review(rid, "lead", "approved")
        # Raw SQL through the driver bypasses the ORM guards: the triggers must stop it.
        with pytest.raises(DBAPIError, match="append-only"), history._engine.begin() as conn:
            conn.exec_driver_sql(sql)
        assert _count(history, "hu_roi_measurements") == len(make_result(T0).rois)
        assert history.get(rid).operator == "me"


def test_sqlite_file_refuses_changes_from_plain_sqlite3(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with CalibrationHistory(f"sqlite:///{path}") as history:
        history.record(make_result(T0), "me")
    con = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="hu_calibrations is append-only"):
            con.execute("DELETE FROM hu_calibrations")
        assert con.execute("SELECT COUNT(*) FROM hu_calibrations").fetchone() == (1,)
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        con.close()


def test_postgresql_refuses_truncate(pg_server: Any) -> None:
    with CalibrationHistory(pg_server.create_database()) as history:
        history.record(make_result(T0), "me")
        with pytest.raises(DBAPIError, match="append-only"), history._engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE hu_checks CASCADE")
        assert len(history) == 1


# --------------------------------------------------------------------- migrations
def test_migrations_ship_with_the_package() -> None:
    folder = resources.files("noctis_lab.hu") / "migrations"
    assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    assert head_revision() == "0002"


def test_upgrade_from_empty_and_idempotent_reopen(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert not any(
                conn.dialect.has_table(conn, t) for t in (*HISTORY_TABLES, VERSION_TABLE)
            )
        with CalibrationHistory(db_url) as history:
            assert history.revision == "0002"
            history.record(make_result(T0), "me")
        with CalibrationHistory(db_url) as again:  # re-open: nothing migrates twice
            assert again.revision == "0002" and len(again) == 1
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [
                ("0002",)
            ]
    finally:
        engine.dispose()


def test_migration_matches_models_and_ignores_other_tables(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    # Another area's table, created with create_all in the same database.
    other = MetaData()
    Table("ai_models", other, Column("name", String(50)))
    with CalibrationHistory(db_url) as history:
        other.create_all(history._engine)
        with history._engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "include_name": include_name,
                    "include_object": include_object,
                    "version_table": VERSION_TABLE,
                    "compare_type": True,
                },
            )
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], diff
        # re-opening leaves the other area's table alone
        CalibrationHistory(db_url).close()
        with history._engine.connect() as conn:
            assert conn.dialect.has_table(conn, "ai_models")


# --------------------------------------------------------------------- URLs
def test_default_url_under_noctis_home(noctis_home: Path) -> None:
    with CalibrationHistory() as history:
        history.record(make_result(T0), "me")
    assert (noctis_home / "data" / "noctis.db").is_file()


def test_noctis_db_url_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere" / "h.db"
    monkeypatch.setenv("NOCTIS_DB_URL", f"sqlite:///{target}")
    with CalibrationHistory() as history:
        assert history.url.endswith("elsewhere/h.db")
    assert target.is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("sqlite://", "in-memory SQLite"),
        ("nosuchdb://x/y", "cannot open the calibration history"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        CalibrationHistory(url)


# --------------------------------------------------------------------- queries
@pytest.fixture
def two_scanners(tmp_path: Path) -> CalibrationHistory:
    history = CalibrationHistory(f"sqlite:///{tmp_path / 'h.db'}")
    rng = np.random.default_rng(3)
    for i in range(12):
        history.record(make_result(T0 + timedelta(days=i), noise_sd=0.5, rng=rng), "me")
    for i in range(3):
        history.record(
            make_result(T0 + timedelta(days=30 * i), serial="B7", offsets={"Air": -15.0 * i}),
            "me",
        )
    return history


def test_records_filters(two_scanners: CalibrationHistory) -> None:
    h = two_scanners
    assert len(h.records()) == 15
    assert len(h.records(scanner=KEY)) == 12
    assert len(h.records(phantom="acr464")) == 0
    recs = h.records(since="2026-01-05", until=T0 + timedelta(days=7))  # inclusive
    assert list(recs["id"]) == [5, 6, 7, 8]
    assert recs["time"].is_monotonic_increasing and str(recs["time"].dt.tz) == "UTC"
    with pytest.raises(HistoryError, match="since='last week' is not a date"):
        h.records(since="last week")
    h.close()


def test_scanners_latest_status_and_overdue(two_scanners: CalibrationHistory) -> None:
    h = two_scanners
    df = h.scanners(now=datetime(2026, 3, 10))
    assert list(df["scanner"]) == ["GE/Revolution/123", "GE/Revolution/B7"]
    a, b = df.iloc[0], df.iloc[1]
    assert (a["n_records"], b["n_records"]) == (12, 3)
    # A's last calibration 2026-01-12 (57 days): overdue; B's 2026-03-02 (8 days): due later.
    assert bool(a["overdue"]) and not bool(b["overdue"])
    assert b["latest_status"] == "fail"  # air -30 HU out of ±10
    assert not bool(a["drift_alarm"])
    daily = CalibrationHistory(h.url, overdue_after_days=1)
    assert bool(daily.scanners(now=datetime(2026, 3, 4), drift=False)["overdue"].iloc[1])
    daily.close()
    with pytest.raises(HistoryError, match="overdue_after_days must be positive"):
        CalibrationHistory(h.url, overdue_after_days=0)
    h.close()


def test_latest_and_unknown_names(two_scanners: CalibrationHistory) -> None:
    h = two_scanners
    latest = h.latest("GE/Revolution/B7")
    assert latest.acquired_at is not None and latest.acquired_at.date().isoformat() == "2026-03-02"
    with pytest.raises(
        HistoryError, match=r"no calibration of scanner 'X/Y/Z'.*'GE/Revolution/123'"
    ):
        h.latest("X/Y/Z")
    with pytest.raises(HistoryError, match=r"no ROI of material 'Unobtainium'.*'Teflon'"):
        h.trend(KEY, material="Unobtainium")
    h.close()


def test_trend_columns_and_tolerance_from_checks(two_scanners: CalibrationHistory) -> None:
    h = two_scanners
    tr = h.trend(KEY)
    assert {
        "time",
        "material",
        "mean",
        "nominal",
        "deviation",
        "sd",
        "status",
        "record_id",
        "low",
        "high",
    } <= set(tr.columns)
    teflon = tr[tr["material"] == "Teflon"]
    assert len(teflon) == 12 and (teflon["low"] == 990.0).all() and (teflon["high"] == 1010.0).all()
    # ROIs no HU check judged (background, uniformity) carry no tolerance
    water = tr[tr["material"] == "Water-equivalent"]
    assert water["low"].isna().all() and (water["status"] == "not_checked").all()
    assert len(h.trend(KEY, phantom="catphan604", material="Air")) == 24  # two air inserts
    h.close()


def test_select_is_untouched_by_guards(two_scanners: CalibrationHistory) -> None:
    with two_scanners._engine.connect() as conn:
        assert conn.execute(select(CalibrationRow.id)).all()
    two_scanners.close()
