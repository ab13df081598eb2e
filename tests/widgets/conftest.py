"""Widget test fixtures: one small synthetic CatPhan series and its analysis, one demo set."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from _servers import free_port, running


@pytest.fixture(scope="session")
def catphan_series() -> Any:
    """A 256x256, 1 mm CatPhan 604 series with noise, off centre (ground truth known)."""
    from noctis_lab.hu.synthetic import generate

    return generate(
        "catphan604",
        matrix=256,
        pixel_size_mm=1.0,
        slice_thickness_mm=5.0,
        noise_sd_hu=6.0,
        shift_mm=(3.0, -2.0, 0.0),
        seed=7,
    )


@pytest.fixture(scope="session")
def catphan_result(catphan_series: Any) -> Any:
    """``analyze`` of :func:`catphan_series` with the seed profile."""
    from noctis_lab.hu import analyze

    return analyze(catphan_series.volume, "catphan604", "seed")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project home with the demo series under data/demo (no history yet)."""
    from noctis_lab.hu._demo_set import write_demo_set as demo_set

    root = tmp_path_factory.mktemp("demo-home")
    demo_set(root / "data" / "demo", progress=False)
    return root


@pytest.fixture
def notebook_home(
    demo_root: Path, tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A private NOCTIS_HOME holding the demo data and a copy of notebooks/."""
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "mlflow").mkdir()
    (home / "data" / "demo").symlink_to(demo_root / "data" / "demo", target_is_directory=True)
    shutil.copytree(repo_root / "notebooks", home / "notebooks")
    monkeypatch.setenv("NOCTIS_HOME", str(home))
    monkeypatch.delenv("NOCTIS_DB_URL", raising=False)
    monkeypatch.delenv("NOCTIS_DEMO", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def lab_server(notebook_home: Path) -> Any:
    """A real JupyterLab on a free 127.0.0.1 port, token-protected, root = the notebook home.

    Yields ``(base_url, token)``; the server is stopped (by its pid) afterwards.
    """
    import os
    import secrets
    import sys

    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(notebook_home / ".jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(notebook_home / ".jupyter-runtime"),
    )
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={notebook_home}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.workspaces_dir={notebook_home / '.jupyter-workspaces'}",
    ]
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/status?token={token}"
    log = notebook_home / "lab.log"
    with running(cmd, url=url, log=log, env=env, timeout=60, stop_timeout=15):
        yield base, token


@pytest.fixture
def voila_server(notebook_home: Path) -> Any:
    """Real Voila (``noctis_lab.reports``' launcher: loopback, token, Lab-only front-end
    extensions kept off) serving the notebook home's ``notebooks/`` folder.

    Yields the :class:`~noctis_lab.reports._voila.VoilaServer`; stopped afterwards.
    """
    import os

    from noctis_lab.reports._voila import start_voila

    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(notebook_home / ".jupyter-runtime"))
    log = notebook_home / "voila.log"
    server = start_voila(notebook_home / "notebooks", preheat=False, env=env, log=log)
    try:
        yield server
    finally:
        server.stop()
