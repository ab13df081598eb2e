"""Serve the dashboards with Voila: loopback only, a token, one kernel per page view.

Voila runs in directory mode on ``notebooks/dashboards``; a dashboard is at
``http://127.0.0.1:<port>/voila/render/<name>.ipynb?token=<token>``. Inside a running
JupyterLab the same notebooks are at ``<lab>/voila/render/notebooks/dashboards/<name>.ipynb``
(installing voila enables its server extension).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noctis_lab._errors import ReportError
from noctis_lab.reports._runner import notebooks_dir

__all__ = [
    "DASHBOARDS",
    "VoilaServer",
    "dashboards_dir",
    "free_port",
    "install_lab_voila",
    "lab_voila_config",
    "offline_page_config",
    "start_voila",
    "voila_command",
    "voila_env",
]

#: JupyterLab front-end extensions kept off the dashboard pages: they are made for the
#: Lab application (chat, collaboration, rooms, the Voila preview) and, loaded in a
#: Voila page, fail to find their Lab services (a 403 or a missing shared module) and
#: can stop the page from rendering. The widget renderers are all kept.
LAB_ONLY_EXTENSIONS = (
    "noctis-rooms",
    "jupyterlab-chat-extension",
    "@jupyter/collaboration-extension",
    "@jupyter/docprovider-extension",
    "@voila-dashboards/jupyterlab-preview",
)

#: Dashboard notebooks (in ``notebooks/dashboards``) and what they show.
DASHBOARDS: dict[str, str] = {
    "hu_dashboard.ipynb": "HU calibration: scanners, status, trends, latest slice",
    "ai_dashboard.ipynb": "AI models: status, metrics with CIs, trends, analyses, feedback",
}


def dashboards_dir() -> Path:
    """The folder Voila serves."""
    return notebooks_dir() / "dashboards"


#: Our Voila template (``jupyter/voila/templates/noctis``): lab, minus the CDN links.
TEMPLATE = "noctis"
#: The Jupyter data folder holding it (added to ``JUPYTER_PATH`` of the server).
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"


def lab_voila_config() -> dict[str, Any]:
    """The server config that makes Voila inside JupyterLab render like ``dashboards``.

    Our offline template (no CDN fonts) and the Lab-only front-end extensions kept off,
    for the Voila server extension of any Jupyter server of the environment
    (``noctis-lab lab`` included).
    """
    return {
        "VoilaConfiguration": {
            "template": TEMPLATE,
            "extension_denylist": list(LAB_ONLY_EXTENSIONS),
        }
    }


def offline_page_config(page_config: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Voila's ``page_config_hook``: no MathJax from a CDN.

    Inside a Jupyter server Voila inherits the server's MathJax settings and its page
    then fetches MathJax from cdnjs; with both options null (as standalone Voila has
    them) the page renders math with what it ships and asks nothing of the network.
    """
    return {**page_config, "fullMathjaxUrl": None, "mathjaxConfig": None}


_LAB_CONFIG = """\
# Written by noctis_lab.reports._voila.install_lab_voila (make setup): Voila inside any
# Jupyter server of this environment (noctis-lab lab) renders the dashboards as
# `noctis-lab dashboards` does: our template (no CDN fonts), no MathJax from a CDN,
# the Lab-only front-end extensions kept off.
from noctis_lab.reports._voila import lab_voila_config, offline_page_config

for _name, _value in lab_voila_config()["VoilaConfiguration"].items():
    setattr(c.VoilaConfiguration, _name, _value)
c.VoilaConfiguration.page_config_hook = offline_page_config
"""


def install_lab_voila(prefix: str | Path) -> tuple[Path, Path]:
    """Make the Voila of every Jupyter server in the environment ``prefix`` render offline.

    Links the template into ``<prefix>/share/jupyter/voila/templates/noctis`` and writes
    ``<prefix>/etc/jupyter/voila.py``, the config Voila's server extension reads (it does
    not read ``jupyter_server_config.d``): :func:`lab_voila_config` and
    :func:`offline_page_config`. ``make setup`` does it for the venv (editable installs
    place no data files).

    Parameters
    ----------
    prefix : path
        The environment's prefix (``sys.prefix`` of its Python).

    Returns
    -------
    tuple of Path
        The template link and the config file.
    """
    root = Path(prefix)
    link = root / "share" / "jupyter" / "voila" / "templates" / TEMPLATE
    link.parent.mkdir(parents=True, exist_ok=True)
    source = JUPYTER_DATA / "voila" / "templates" / TEMPLATE
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        import shutil

        shutil.rmtree(link)
    link.symlink_to(source, target_is_directory=True)
    config = root / "etc" / "jupyter" / "voila.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(_LAB_CONFIG, encoding="utf-8")
    return link, config


def voila_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``env`` (default: this process's) with our templates found."""
    run_env = dict(os.environ if env is None else env)
    paths = [str(JUPYTER_DATA), *filter(None, run_env.get("JUPYTER_PATH", "").split(os.pathsep))]
    run_env["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    run_env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return run_env


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def voila_command(
    root: str | Path,
    *,
    port: int,
    preheat: bool = False,
    pool_size: int = 1,
) -> list[str]:
    """The Voila command line: loopback, lab template, no tracebacks to clients.

    The token is not on it (other local users see command lines): :func:`token_config`
    writes it to a private config file that Voila reads.
    """
    exe = Path(sys.executable).parent / "voila"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "voila"]
    cmd = [
        *base,
        str(root),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
        f"--template={TEMPLATE}",
        "--show_tracebacks=False",
        *[f"--VoilaConfiguration.extension_denylist={x}" for x in LAB_ONLY_EXTENSIONS],
    ]
    if preheat:
        cmd += ["--preheat_kernel=True", f"--pool_size={max(1, pool_size)}"]
    else:
        cmd += ["--preheat_kernel=False", "--pool_size=0"]
    return cmd


def token_config(token: str) -> Path:
    """A private folder (0700) holding ``voila.json`` (0600) that sets Voila's token.

    Put it first on ``JUPYTER_CONFIG_PATH`` for the Voila process; remove it when the
    server stops (:meth:`VoilaServer.stop` does).
    """
    import json
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="noctis-voila-"))  # 0700
    path = folder / "voila.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"Voila": {"token": token}}, f)
    return folder


@dataclass
class VoilaServer:
    """A running Voila process (stop it with :meth:`stop` or use it as a context manager)."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path | None = None
    started_s: float = field(default=0.0)
    #: The private folder holding the token config (removed by :meth:`stop`).
    config_dir: Path | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        """The address of one dashboard, with the token."""
        return f"{self.base_url}/voila/render/{notebook}?token={self.token}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its kernels, and remove the private token file."""
        if self.config_dir is not None:
            import shutil

            shutil.rmtree(self.config_dir, ignore_errors=True)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> VoilaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_voila(
    root: str | Path | None = None,
    *,
    port: int | None = None,
    token: str | None = None,
    preheat: bool = False,
    pool_size: int = 1,
    log: str | Path | None = None,
    wait_s: float = 90.0,
    env: dict[str, str] | None = None,
) -> VoilaServer:
    """Start Voila on the dashboards and wait until it answers.

    Parameters
    ----------
    root : path, optional
        The folder to serve (default: :func:`dashboards_dir`).
    port : int, optional
        Default: a free port on 127.0.0.1.
    token : str, optional
        Default: a fresh random token.
    preheat, pool_size
        Keep ``pool_size`` kernels per notebook executed in advance. Off by default:
        Voila 0.5.13 hands the first visitor whatever its pool holds, and a pre-run that
        stalled (its kernel's ``execute_reply`` never came, the kernel idle) or failed
        (the kernel did not start in time) leaves that page at "Running ..." for good;
        without the pool each view runs its own kernel, with Voila's progress shown.
    log : path, optional
        File for Voila's log (default: discarded).
    wait_s : float
        How long to wait for the server to answer.
    env : dict, optional
        Environment of the server and its kernels (default: this process's).
    """
    folder = Path(root) if root is not None else dashboards_dir()
    if not folder.is_dir():
        raise ReportError(f"no dashboards folder at {folder}")
    port = port or free_port()
    token = token or secrets.token_hex(24)
    cmd = voila_command(folder, port=port, preheat=preheat, pool_size=pool_size)
    run_env = voila_env(env)
    config_dir = token_config(token)
    run_env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (str(config_dir), run_env.get("JUPYTER_CONFIG_PATH", "")) if p
    )
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env=run_env, cwd=str(folder.parent)
    )
    server = VoilaServer(proc, port, token, Path(log) if log is not None else None)
    server.config_dir = config_dir
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ReportError(f"voila exited with status {proc.returncode}; see {log or 'its log'}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/?token={token}", timeout=2) as r:
                if r.status == 200:
                    server.started_s = time.perf_counter() - t0
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise ReportError(f"voila did not answer on port {port} within {wait_s:.0f} s")
