"""Shared test configuration: isolated homes, the demo set, output folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from noctis_lab._browser import CHROMIUM

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ci import missing_real_part

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def test_output() -> Path:
    """Folder for screenshots and reports a person may want to look at after a run."""
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's chromium binary; absent, browser tests skip with the reason (fail in CI)."""
    if not CHROMIUM.exists():
        missing_real_part(f"{CHROMIUM} is not installed (`make test` installs Debian's chromium)")
    return CHROMIUM


@pytest.fixture
def noctis_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private NOCTIS_HOME: its own SQLite history and MLflow store."""
    monkeypatch.setenv("NOCTIS_HOME", str(tmp_path))
    monkeypatch.delenv("NOCTIS_DB_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "mlflow").mkdir()
    return tmp_path
