"""Where Noctis Lab keeps its files: one place for every default path and URL."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["db_url", "demo_dir", "home", "mlflow_tracking_uri"]


def home() -> Path:
    """The project home: ``$NOCTIS_HOME`` if set, else the current directory."""
    return Path(os.environ.get("NOCTIS_HOME") or os.getcwd()).resolve()


def demo_dir() -> Path:
    """The demo data set: ``$NOCTIS_DEMO`` if set, else ``<home>/data/demo``."""
    env = os.environ.get("NOCTIS_DEMO")
    return Path(env).resolve() if env else home() / "data" / "demo"


def db_url() -> str:
    """The calibration/analysis database: ``$NOCTIS_DB_URL`` or SQLite in ``<home>/data``."""
    env = os.environ.get("NOCTIS_DB_URL", "").strip()
    if env:
        return env
    return f"sqlite:///{home() / 'data' / 'noctis.db'}"


def mlflow_tracking_uri() -> str:
    """MLflow store: ``$MLFLOW_TRACKING_URI`` or SQLite under ``<home>/mlflow``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{home() / 'mlflow' / 'mlflow.db'}"
