"""Batch scaling: series per second for 1 and 2 workers, and time from 10 to 200 series.

The peer is the plain sequential loop a user would write (load, analyze, record,
one series after another, in one process). Our batch runs on a local process
pool (1 and 2 workers) and on a Dask LocalCluster (2 workers). Every run writes to
its own fresh SQLite history and the record count is checked.

    .venv/bin/python bench/bench_batch.py [--sizes 10 50 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from noctis_lab.batch import analyze_archive, find_series_folders
from noctis_lab.dicom import load_series
from noctis_lab.hu import analyze
from noctis_lab.hu.history import CalibrationHistory
from noctis_lab.hu.synthetic import make_series

SMALL = {"matrix": 256, "pixel_size_mm": 1.0, "slice_thickness_mm": 5.0, "noise_sd_hu": 8.0}


def build(root: Path, n: int) -> None:
    for i in range(n):
        make_series(root / f"s{i:04d}", "catphan604", seed=i, z_range_mm=(-95.0, 15.0), **SMALL)


def sequential(root: Path, url: str) -> float:
    t0 = time.perf_counter()
    with CalibrationHistory(url) as history:
        for folder in find_series_folders(root):
            history.record(analyze(load_series(folder), phantom="catphan604"), operator="bench")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="noctis-bench-batch-"))
    try:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
        print(
            f"{'series':>6} {'sequential s':>13} {'pool-1 s':>9} {'pool-2 s':>9} "
            f"{'dask-2 s':>9} {'pool-2 series/s':>16} {'pool-2 vs seq':>14}"
        )
        for n in args.sizes:
            root = tmp / f"a{n}"
            build(root, n)
            runs = {}
            runs["seq"] = sequential(root, f"sqlite:///{tmp / f'seq{n}.db'}")
            for name, kw in (
                ("pool1", {"workers": 1}),
                ("pool2", {"workers": 2}),
                ("dask2", {"client": client}),
            ):
                url = f"sqlite:///{tmp / f'{name}{n}.db'}"
                rep = analyze_archive(root, phantom="catphan604", db_url=url, progress=False, **kw)
                assert rep.recorded == n, rep
                runs[name] = rep.seconds
            print(
                f"{n:>6} {runs['seq']:>13.1f} {runs['pool1']:>9.1f} {runs['pool2']:>9.1f} "
                f"{runs['dask2']:>9.1f} {n / runs['pool2']:>16.2f} "
                f"{runs['seq'] / runs['pool2']:>13.2f}x"
            )
        client.close()
        cluster.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
