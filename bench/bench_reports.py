"""Report generation time: `run_report` (papermill + HTML [+ PDF] + summary) against the peer,
plain `jupyter nbconvert --execute --to html --no-input` on the same notebook.

Goal: the HU report under 15 s. Prints seconds per run and the ratio ours / peer.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report_store import bench_home

REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    home = bench_home()
    os.environ["NOCTIS_HOME"] = str(home)
    from noctis_lab.reports import report_notebook, run_report

    out = Path(tempfile.mkdtemp(prefix="noctis-bench-reports-"))
    rows = []
    for kind, pdf in (("hu", False), ("hu", True), ("ai", False)):
        times = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            res = run_report(kind, out, pdf=pdf)
            times.append(time.perf_counter() - t0)
            assert res.ok, res.error
        peer = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "nbconvert",
                    "--execute",
                    "--to",
                    "html",
                    "--no-input",
                    "--output-dir",
                    str(out / "peer"),
                    str(report_notebook(kind)),
                ],
                check=True,
                capture_output=True,
                cwd=home,
            )
            peer.append(time.perf_counter() - t0)
        ours, theirs = statistics.median(times), statistics.median(peer)
        rows.append((f"{kind} report{' + PDF' if pdf else ''}", ours, theirs))
    print(f"\nreport generation (median of {REPEAT}; store {home})")
    print(f"{'report':<18}{'ours s':>9}{'nbconvert s':>13}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<18}{ours:9.2f}{theirs:13.2f}{ours / theirs:8.2f}")
    hu = rows[0][1]
    print(f"HU report goal < 15 s: {'met' if hu < 15 else 'NOT met'} ({hu:.1f} s)")


if __name__ == "__main__":
    main()
