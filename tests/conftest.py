"""Shared test configuration: isolated homes, the demo set, output folders, a PostgreSQL.

``db_url`` is parametrised over ``sqlite`` (a file in a tmp dir) and
``postgresql`` (a fresh database on a private server started from Debian's
PostgreSQL binaries on a free loopback port, in a tmp data dir, as an
unprivileged account when running as root because initdb refuses root; the
server logic is :class:`noctis_lab.services.PostgresServer`, shared with
``noctis-lab services``). One server serves the whole session (the history, the
record layer's tests). The PostgreSQL runs skip with the reason when the server
binaries or the psycopg driver are absent (and fail in CI).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from noctis_lab._browser import CHROMIUM
from noctis_lab._errors import ServiceError
from noctis_lab.services import PostgresServer, free_port
from noctis_lab.services._postgres import pg_bindir, server_user

# A suite started in the background of a non-interactive shell (`make test &`, a scheduler)
# inherits SIGINT ignored, and so would every server it starts: the tests that stop a
# server or the Hub with SIGINT, as JupyterHub does, would then wait in vain. A handler set
# here is reset to the default in each child at exec, so the servers get Python's own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


_counter = itertools.count()


class _TestServer(PostgresServer):
    """The shared loopback server, plus a fresh database per call (trust auth, no fsync)."""

    def create_database(self) -> str:
        return self.ensure_database(f"noctis_test_{next(_counter)}")

    def create_owned_database(self) -> tuple[str, str]:
        """A fresh database set up like ``services up``: (owner URL, application URL)."""
        n = next(_counter)
        return self.ensure_app_database(
            f"noctis_test_{n}", f"owner_{n}", "owner-pw", f"app_{n}", "app-pw"
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[_TestServer]:
    """A private PostgreSQL server for the session (skips when it cannot be had)."""
    bindir = pg_bindir()
    if bindir is None:
        missing_real_part(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "install Debian's postgresql package to run the history tests on PostgreSQL"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing_real_part("the psycopg (v3) driver is not installed: pip install 'psycopg[binary]'")
    root = Path(tempfile.mkdtemp(prefix="noctis-pg-"))
    os.chmod(root, 0o711)  # the server account (when root) must reach root/data
    server = _TestServer(
        root / "data",
        free_port(),
        bindir=bindir,
        run_as=server_user(),
        superuser="noctis",
        password=None,
        options=("-F", "-c max_connections=50"),
    )
    try:
        server.initdb()
        server.start()
    except ServiceError as exc:
        shutil.rmtree(root, ignore_errors=True)
        missing_real_part(f"could not start a throwaway PostgreSQL: {exc}")
    yield server
    try:
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    server = request.getfixturevalue("pg_server")
    return str(server.create_database())
