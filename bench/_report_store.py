"""The store of the report and dashboard benchmarks ($NOCTIS_HOME, or a small one)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_home() -> Path:
    """A NOCTIS_HOME with a calibration history and an MLflow store (built when missing)."""
    env = os.environ.get("NOCTIS_HOME")
    if (
        env
        and (Path(env) / "data" / "noctis.db").is_file()
        and (Path(env) / "mlflow" / "mlflow.db").is_file()
    ):
        return Path(env)
    home = Path(tempfile.mkdtemp(prefix="noctis-bench-"))
    sys.path.insert(0, str(ROOT / "tests" / "reports"))
    from _store import build_store

    print(f"building a small store in {home} ...", flush=True)
    build_store(home)
    return home
