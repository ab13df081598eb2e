"""Concurrent writers lose nothing: 8 x 125 records = exactly 1000 records, one intact chain.

(A 4 x 250 run was dropped: 8 writers contend harder for the same 1000 records, and the
chain check below is what a lost or interleaved append would break.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from noctis_lab.hu._history_schema import Base
from noctis_lab.hu.history import CalibrationHistory
from noctis_lab.records import verify

WRITER = Path(__file__).resolve().parent / "_history_writer.py"
N_PROC = 4


@pytest.mark.slow
@pytest.mark.parametrize(("n_proc", "n_each"), [(8, 125)])
def test_concurrent_processes_write_1000_records(db_url: str, n_proc: int, n_each: int) -> None:
    CalibrationHistory(db_url).close()  # (the writers would also migrate it, once)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), db_url, str(n_each), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(n_proc)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    elapsed = time.perf_counter() - start
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    ids = [int(i) for out, _ in outs for i in out.split()]
    assert len(ids) == len(set(ids)) == n_proc * n_each
    with CalibrationHistory(db_url) as history:
        assert len(history) == n_proc * n_each
        recs = history.records()
        assert sorted(recs["id"]) == sorted(ids)
        assert recs.groupby("scanner").size().tolist() == [n_each] * n_proc
        with history._engine.connect() as conn:
            n_rois = conn.execute(text("SELECT COUNT(*) FROM hu_roi_measurements")).scalar()
            orphans = conn.execute(
                text(
                    "SELECT COUNT(*) FROM hu_calibrations c WHERE NOT EXISTS "
                    "(SELECT 1 FROM hu_checks k WHERE k.calibration_id = c.id)"
                )
            ).scalar()
        assert n_rois == n_proc * n_each * 16 and orphans == 0
        start = time.perf_counter()
        report = verify(history._engine, [Base.metadata.tables["hu_calibrations"]])
        verify_s = time.perf_counter() - start
    assert report.ok, report.findings  # every append linked to the one before it
    assert [(t.table, t.rows) for t in report.tables] == [("hu_calibrations", n_proc * n_each)]
    assert verify_s < 30, verify_s
    # speed is measured by bench/bench_history.py; here only a sanity bound
    assert elapsed < 300, f"{n_proc} x {n_each} records took {elapsed:.1f} s"


@pytest.mark.slow
def test_concurrent_first_open_migrates_once(tmp_path: Path) -> None:
    """Writers that all open a brand-new database at once: one migrates, all write."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, "5", str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(N_PROC)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with CalibrationHistory(url) as history:
        assert len(history) == 5 * N_PROC
