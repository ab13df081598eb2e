"""Fixtures of the services tests: one real ``services up`` (PostgreSQL + MLflow) per module.

The services run from a private folder directly under the system temp folder (pytest's
``tmp_path`` lives in a 0700 folder that the unprivileged PostgreSQL account cannot
reach when the tests run as root). They skip with the reason when the PostgreSQL server
binaries or the psycopg driver are absent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _ci import missing_real_part

from noctis_lab.services import ServicesReport, services_down, services_up
from noctis_lab.services._postgres import pg_bindir

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def require_postgres() -> None:
    """Skip (fail in CI) unless the PostgreSQL server binaries and psycopg are installed."""
    if pg_bindir() is None:
        missing_real_part(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "install Debian's postgresql package (`make postgresql`) to run the services tests"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing_real_part("the psycopg (v3) driver is not installed: pip install 'psycopg[binary]'")


@pytest.fixture(scope="module")
def services_dir() -> Iterator[Path]:
    """A fresh state folder, removed (after ``services down``) at the end of the module."""
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix="noctis-services-"))
    yield root
    try:
        if (root / "services.json").exists():
            services_down(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def services(services_dir: Path) -> ServicesReport:
    """PostgreSQL and the MLflow server, started cold in ``services_dir``."""
    report = services_up(services_dir, timeout=180)
    assert report.up, report
    return report
