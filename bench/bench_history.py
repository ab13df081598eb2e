"""Benchmark: the calibration history against a naive sqlite3 JSON-blob store.

Ours: :class:`noctis_lab.hu.history.CalibrationHistory` on a SQLite file (WAL,
busy timeout, one transaction per record with bulk-inserted ROI and check rows).
Peer: the naive approach: plain ``sqlite3``, one connection per record, the
default rollback journal (no WAL), the whole result as one JSON blob; its trend
query loads and parses every blob of the scanner.

Measured in one run: records/s written by one process and by 4 processes at
once (records lost by the peer are counted), and the time of a trend query over
1,000 records. The result recorded is a real analysis of a synthetic CatPhan 604
series (16 ROIs, its checks), recorded again under new ids and times.

Run: ``.venv/bin/python bench/bench_history.py [--records 1000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 1, 1, 8, 0, 0)


# ----------------------------------------------------------------------------- inputs
def analysed_result_json() -> str:
    """One real analysis of a small synthetic CatPhan 604 series, as JSON."""
    from noctis_lab.hu._analyze import analyze
    from noctis_lab.hu.synthetic import generate

    series = generate(
        "catphan604",
        matrix=256,
        pixel_size_mm=1.0,
        slice_thickness_mm=5.0,
        noise_sd_hu=5.0,
        acquisition_datetime="2026-01-01T08:00:00",
    )
    return analyze(series, profile="manufacturer").to_json(indent=None)


def variants(result_json: str, n: int, worker: int = 0) -> list[Any]:
    """``n`` copies of the result with new ids and acquisition times."""
    from noctis_lab.hu._result import CalibrationResult

    base = CalibrationResult.from_json(result_json)
    out = []
    for i in range(n):
        when = T0 + timedelta(hours=i, minutes=worker)
        out.append(
            dataclasses.replace(
                base, id=uuid.uuid4().hex, acquisition_datetime=when.isoformat(timespec="seconds")
            )
        )
    return out


# ----------------------------------------------------------------------------- ours
def ours_write(url: str, result_json: str, n: int, worker: int, barrier: Any = None) -> tuple:
    from noctis_lab.hu.history import CalibrationHistory

    results = variants(result_json, n, worker)
    with CalibrationHistory(url) as history:
        if barrier is not None:
            barrier.wait()
        start = time.perf_counter()
        for r in results:
            history.record(r, operator=f"bench-{worker}")
        end = time.perf_counter()
    return start, end, n, 0


def ours_trend(url: str, scanner: str) -> float:
    from noctis_lab.hu.history import CalibrationHistory

    with CalibrationHistory(url) as history:
        history.trend(scanner)  # warm
        times = []
        for _ in range(5):
            t = time.perf_counter()
            df = history.trend(scanner)
            times.append(time.perf_counter() - t)
        assert len(df) > 0
    return statistics.median(times)


# ----------------------------------------------------------------------------- peer
_PEER_DDL = (
    "CREATE TABLE IF NOT EXISTS calibrations (id INTEGER PRIMARY KEY, scanner TEXT, "
    "recorded_at TEXT, operator TEXT, result TEXT)"
)


def peer_write(path: str, result_json: str, n: int, worker: int, barrier: Any = None) -> tuple:
    blobs = [(r.scanner.key, r.to_json(indent=None)) for r in variants(result_json, n, worker)]
    con = sqlite3.connect(path)
    con.execute(_PEER_DDL)
    con.commit()
    con.close()
    if barrier is not None:
        barrier.wait()
    lost = 0
    start = time.perf_counter()
    for scanner, blob in blobs:
        try:
            con = sqlite3.connect(path)  # a new connection per record, default journal
            con.execute(
                "INSERT INTO calibrations (scanner, recorded_at, operator, result) "
                "VALUES (?, ?, ?, ?)",
                (scanner, datetime.now().isoformat(), f"bench-{worker}", blob),
            )
            con.commit()
            con.close()
        except sqlite3.OperationalError:
            lost += 1
    end = time.perf_counter()
    return start, end, n - lost, lost


def peer_trend(path: str, scanner: str) -> float:
    import pandas as pd

    def query() -> pd.DataFrame:
        con = sqlite3.connect(path)
        rows = []
        for rid, blob in con.execute(
            "SELECT id, result FROM calibrations WHERE scanner = ?", (scanner,)
        ):
            d = json.loads(blob)
            for roi in d["rois"]:
                rows.append(
                    {
                        "time": d["acquisition_datetime"],
                        "record_id": rid,
                        "material": roi["material"],
                        "mean": roi["mean"],
                        "nominal": roi["nominal_hu"],
                        "deviation": roi["deviation"],
                        "sd": roi["sd"],
                        "status": roi["status"],
                    }
                )
        con.close()
        df = pd.DataFrame(rows)
        df["time"] = pd.to_datetime(df["time"], utc=True)
        return df.sort_values(["time", "record_id"])

    query()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        query()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ----------------------------------------------------------------------------- driver
def _parallel(fn: Any, target: str, result_json: str, n_each: int, n_proc: int) -> tuple:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n_proc)
        with ctx.Pool(n_proc) as pool:
            outs = pool.starmap(
                fn, [(target, result_json, n_each, w, barrier) for w in range(n_proc)]
            )
    start = min(o[0] for o in outs)
    end = max(o[1] for o in outs)
    written = sum(o[2] for o in outs)
    lost = sum(o[3] for o in outs)
    return written / (end - start), written, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="records per measurement")
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    n, n_proc = args.records, args.processes
    n_each = n // n_proc

    from noctis_lab.hu._result import CalibrationResult

    print("analysing one synthetic CatPhan 604 series ...", flush=True)
    result_json = analysed_result_json()
    base = CalibrationResult.from_json(result_json)
    scanner = base.scanner.key
    print(f"  {len(base.rois)} ROIs, {len(base.checks)} checks per record; scanner {scanner}")

    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="noctis-bench-") as tmp:
        root = Path(tmp)
        ours_url = f"sqlite:///{root / 'ours.db'}"
        peer_path = str(root / "peer.db")

        s, e, written, _ = ours_write(ours_url, result_json, n, 0)
        ours_single = written / (e - s)
        s, e, written, lost = peer_write(peer_path, result_json, n, 0)
        peer_single = written / (e - s)
        rows.append(("write, 1 process (records/s)", ours_single, peer_single, f"peer lost {lost}"))

        t_ours = ours_trend(ours_url, scanner)
        t_peer = peer_trend(peer_path, scanner)
        rows.append((f"trend query, {n} records (ms)", t_ours * 1e3, t_peer * 1e3, ""))

        ours_url4 = f"sqlite:///{root / 'ours4.db'}"
        peer_path4 = str(root / "peer4.db")
        from noctis_lab.hu.history import CalibrationHistory

        CalibrationHistory(ours_url4).close()
        ours_par, _, _ = _parallel(ours_write, ours_url4, result_json, n_each, n_proc)
        peer_par, _, peer_lost = _parallel(peer_write, peer_path4, result_json, n_each, n_proc)
        with CalibrationHistory(ours_url4) as h:
            ours_found = len(h)
        con = sqlite3.connect(peer_path4)
        peer_found = con.execute("SELECT COUNT(*) FROM calibrations").fetchone()[0]
        con.close()
        rows.append(
            (
                f"write, {n_proc} processes (records/s)",
                ours_par,
                peer_par,
                f"found: ours {ours_found}/{n_each * n_proc}, peer {peer_found}/"
                f"{n_each * n_proc} (lost {peer_lost})",
            )
        )

    print()
    print(f"{'measure':<34}{'noctis':>12}{'naive sqlite3':>16}{'ratio':>9}  note")
    for name, ours, peer, note in rows:
        higher_is_better = "records/s" in name
        ratio = ours / peer if higher_is_better else peer / ours
        print(f"{name:<34}{ours:>12.1f}{peer:>16.1f}{ratio:>8.2f}x  {note}")
    print("\nratio > 1: noctis is faster (throughput ours/peer; query time peer/ours)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
