"""Helpers for the command-line tests: the CLI run as a subprocess from other folders."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _cli_tools import EXE, Run

#: Settings that would decide the home or the stores behind the test's back.
_HOME_VARS = ("NOCTIS_HOME", "NOCTIS_DB_URL", "MLFLOW_TRACKING_URI", "NOCTIS_DEMO")


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user who set nothing: per-user data under ``tmp_path/xdg``."""
    env = {k: v for k, v in os.environ.items() if k not in _HOME_VARS}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.fixture
def run_cli(clean_env: dict[str, str]) -> Run:
    """Run ``noctis-lab ARGS`` in folder ``cwd`` with ``clean_env`` (plus ``env`` overrides)."""

    def run(
        *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), *args],
            cwd=cwd,
            env={**clean_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="module")
def recorded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose history holds one real calibration (a small synthetic CatPhan 604)."""
    from noctis_lab.hu import analyze
    from noctis_lab.hu.history import CalibrationHistory
    from noctis_lab.hu.synthetic import generate

    home = tmp_path_factory.mktemp("recorded-home")
    (home / "data").mkdir()
    series = generate("catphan604", matrix=128, pixel_size_mm=2.0, slice_thickness_mm=5.0, seed=1)
    history = CalibrationHistory(f"sqlite:///{home / 'data' / 'noctis.db'}")
    try:
        history.record(analyze(series.volume, "catphan604", "seed"), operator="cli-test")
    finally:
        history.close()
    return home
