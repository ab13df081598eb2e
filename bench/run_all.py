"""Run every benchmark in bench/ in turn and print its output (``make bench``).

Each ``bench_*.py`` runs our code and its named peer in the same run and prints
the ratio; see bench/README.md for what each compares and the latest figures.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        if wanted and script.stem not in wanted and script.name not in wanted:
            continue
        print(f"\n=== {script.name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {script.name}: exit {proc.returncode} in {time.perf_counter() - t0:.1f} s")
        if proc.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
