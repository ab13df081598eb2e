"""Fixtures of the reports area: one small real store per session, copied per test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _store import build_store


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The session's store (HU history with images, MLflow with one model) and its facts."""
    home = tmp_path_factory.mktemp("reports-store")
    facts = build_store(home)
    return home, facts


@pytest.fixture
def store_home(store: tuple[Path, dict[str, object]], noctis_home: Path) -> Path:
    """A private NOCTIS_HOME holding a copy of the session store's databases."""
    src, _ = store
    shutil.copytree(src / "data", noctis_home / "data", dirs_exist_ok=True)
    shutil.copytree(src / "mlflow", noctis_home / "mlflow", dirs_exist_ok=True)
    return noctis_home
