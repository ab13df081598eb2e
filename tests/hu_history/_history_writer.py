"""A separate process that records N results into the history (concurrency test/bench).

Usage: python _history_writer.py URL N WORKER
Prints the record ids it got, one line, space-separated.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _history_factory import make_result

from noctis_lab.hu.history import CalibrationHistory


def main() -> int:
    url, n, worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(worker)
    t0 = datetime(2026, 1, 1) + timedelta(minutes=worker)
    results = [
        make_result(t0 + timedelta(hours=i), serial=f"W{worker}", noise_sd=1.0, rng=rng)
        for i in range(n)
    ]
    ids = []
    with CalibrationHistory(url) as history:
        for r in results:
            ids.append(history.record(r, operator=f"worker-{worker}"))
    print(" ".join(map(str, ids)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
