"""Batch analysis of an archive: local pool, Dask cluster, failures, resume without duplicates."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _ci import missing_real_part

from noctis_lab import NoFilesFoundError
from noctis_lab.batch import analyze_archive, find_series_folders
from noctis_lab.hu import load_phantom
from noctis_lab.hu.history import CalibrationHistory
from noctis_lab.hu.synthetic import make_series

SMALL = {"matrix": 256, "pixel_size_mm": 1.0, "slice_thickness_mm": 5.0, "noise_sd_hu": 6.0}


def _archive(root: Path, n: int) -> list[Path]:
    folders = []
    for i in range(n):
        offset = 10.0 if i == 1 else 0.0  # one miscalibrated scanner: a fail, not an error
        folders.append(
            make_series(
                root / f"scanner-{i % 2}" / f"2026-10-{i + 1:02d}",
                "catphan604",
                seed=i,
                offset_hu=offset,
                z_range_mm=(-95.0, 15.0),
                **SMALL,
            )
        )
    return folders


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    _archive(root, 4)
    broken = root / "scanner-9" / "2026-10-09"
    # a 300 mm water drum is no CatPhan, not even its uniform module alone: an error
    water = load_phantom("water")
    drum = water.model_copy(update={"body": water.body.model_copy(update={"radius_mm": 150.0})})
    make_series(broken, drum, seed=9, z_range_mm=(-10.0, 10.0), **{**SMALL, "pixel_size_mm": 1.4})
    return root


def _uids_recorded(url: str) -> list[str]:
    with CalibrationHistory(url) as history:
        return list(history.records()["series_uid"])


def test_find_series_folders(archive: Path, tmp_path: Path) -> None:
    assert len(find_series_folders(archive)) == 5
    with pytest.raises(NoFilesFoundError, match="no DICOM series found under"):
        find_series_folders(tmp_path)


def test_local_pool_records_each_series_and_reports_failures(archive: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    report = analyze_archive(archive, phantom="catphan604", workers=2, db_url=url, progress=False)
    assert report.recorded == 4, str(report)
    # The water drum analysed as a CatPhan fails with its reason; the batch went on.
    (failed,) = report.failed
    assert "scanner-9" in failed.path
    assert "PhantomNotFoundError" in failed.error
    verdicts = {o.status for o in report.outcomes if o.outcome == "recorded"}
    assert {"pass", "fail"} <= verdicts, verdicts  # the +10 HU scanner fails, the others pass
    uids = _uids_recorded(url)
    assert len(uids) == len(set(uids)) == 4

    again = analyze_archive(archive, phantom="catphan604", workers=2, db_url=url, progress=False)
    assert (again.recorded, again.skipped, len(again.failed)) == (0, 4, 1)
    assert len(_uids_recorded(url)) == 4


def test_dask_local_cluster(archive: Path, tmp_path: Path) -> None:
    try:
        import dask.distributed as distributed
    except ImportError as exc:  # pinned in requirements.txt: only absent off the stack
        missing_real_part(f"dask.distributed is not installed: {exc}")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        report = analyze_archive(
            archive, phantom="catphan604", client=client, db_url=url, progress=False
        )
    assert report.executor.startswith("dask (2 workers)")
    assert report.recorded == 4 and len(report.failed) == 1
    assert len({o.worker for o in report.outcomes}) == 2  # both workers took part
    assert sorted(_uids_recorded(url)) == sorted(
        o.series_uid for o in report.outcomes if o.outcome == "recorded"
    )


def _count(db: Path) -> int:
    """Calibrations committed so far (a raw read: polling must not slow the batch)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM hu_calibrations").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet, or busy


def test_killed_batch_resumes_without_duplicates(tmp_path: Path) -> None:
    n = 24  # far more than the pool finishes in the few ms between a poll and the kill
    root = tmp_path / "archive"
    _archive(root, n)
    db = tmp_path / "h.db"
    url = f"sqlite:///{db}"
    code = (
        "import sys; from noctis_lab.batch import analyze_archive;"
        "analyze_archive(sys.argv[1], phantom='catphan604', workers=2, db_url=sys.argv[2],"
        " progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), url], start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _count(db) == 0:  # kill once some are recorded
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch and its workers die mid-run
    proc.wait()
    before = len(_uids_recorded(url))
    assert 0 < before < n, f"{before} of {n} recorded when the batch was killed"

    report = analyze_archive(root, phantom="catphan604", workers=2, db_url=url, progress=False)
    assert report.skipped == before and report.recorded == n - before
    uids = _uids_recorded(url)
    assert len(uids) == len(set(uids)) == n


def test_cli_batch_json(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from noctis_lab.cli import main

    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["hu", "batch", str(archive), "--phantom", "catphan604", "--workers", "2"]
    assert main([*argv, "--db", url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["recorded"], out["failed"]) == (4, 1)
    # --strict turns a failed series into a non-zero exit, for schedulers
    assert main([*argv, "--db", url, "--json", "--strict"]) == 1
