"""Where the AI subsystem keeps its state, and the lazy import of MLflow.

The home folder is ``$NOCTIS_HOME`` or, when unset, the current working folder.
MLflow tracking defaults to ``sqlite:///<home>/mlflow/mlflow.db`` with artifacts in
``<home>/mlflow/artifacts``; ``MLFLOW_TRACKING_URI`` overrides it. The analysis and
feedback database defaults to ``sqlite:///<home>/data/noctis.db``; ``NOCTIS_DB_URL``
overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from noctis_lab import _paths

__all__ = [
    "EXPERIMENT_PREFIX",
    "artifact_root",
    "db_url",
    "import_mlflow",
    "mlflow_client",
    "noctis_home",
    "tracking_uri",
]

#: MLflow experiments holding our evaluation runs are named ``<prefix><model name>``.
EXPERIMENT_PREFIX = "noctis-ai/"


def noctis_home() -> Path:
    """Return the Noctis home folder (:func:`noctis_lab._paths.home`)."""
    return _paths.home()


def tracking_uri(uri: str | None = None) -> str:
    """Resolve the MLflow tracking URI: ``uri``, else :func:`noctis_lab._paths.mlflow_tracking_uri`.

    The folder of a local SQLite store is created on the way.
    """
    if uri is not None:
        return uri
    resolved = _paths.mlflow_tracking_uri()
    if resolved.startswith("sqlite:///"):
        Path(resolved.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return resolved


def artifact_root(uri: str) -> str | None:
    """Artifact folder for new experiments of a local SQLite store (``None``: MLflow's default)."""
    if uri.startswith("sqlite:///"):
        db_path = Path(uri.removeprefix("sqlite:///"))
        root = db_path.parent / "artifacts"
        root.mkdir(parents=True, exist_ok=True)
        return root.as_uri()
    return None


def db_url(url: str | None = None) -> str:
    """Resolve the analyses/feedback database URL: ``url``, else :func:`noctis_lab._paths.db_url`.

    The folder of a local SQLite file is created on the way.
    """
    if url is not None:
        return url
    resolved = _paths.db_url()
    if resolved.startswith("sqlite:///"):
        Path(resolved.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return resolved


def import_mlflow() -> ModuleType:
    """Import MLflow with telemetry switched off (set before the first import)."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import logging

    import mlflow

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


def mlflow_client(uri: str | None = None) -> Any:
    """Return an ``MlflowClient`` for the resolved tracking URI."""
    import_mlflow()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(uri))
