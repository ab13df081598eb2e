"""``noctis-lab mlflow``: the MLflow UI on the project's store, on 127.0.0.1.

The UI opens on the experiments and their runs (MLflow's "machine learning" view,
not the GenAI one that MLflow 3 shows by default). The store is the home's
(:func:`noctis_lab._paths.mlflow_tracking_uri`); it is never created here: with no
store yet, the command says so and exits 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noctis_lab import _paths
from noctis_lab._errors import NoctisError
from noctis_lab.cli._args import Subparsers

__all__ = ["MlflowLaunch", "build_mlflow_launch", "register", "runs_urls"]

HOST = "127.0.0.1"
#: The UI route of the experiments list in the runs ("machine learning") view.
RUNS_VIEW = "/#/experiments?workflowType=machine_learning"


@dataclass(frozen=True)
class MlflowLaunch:
    """The command line and environment that start the UI, and its URL."""

    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    store: str
    port: int
    url: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the store URL without credentials)."""
        return {"command": list(self.command), "port": self.port, "url": self.url}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _sqlite_file(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    return None


def build_mlflow_launch(tracking_uri: str | None = None, port: int | None = None) -> MlflowLaunch:
    """Check the store and build the ``mlflow server`` command line.

    Parameters
    ----------
    tracking_uri : str, optional
        The store (default: the home's, :func:`noctis_lab._paths.mlflow_tracking_uri`).
    port : int, optional
        Port on 127.0.0.1 (default: a free one).

    Raises
    ------
    NoctisError
        No store yet, a store that is already a server, a bad port, or no MLflow.
    """
    uri = tracking_uri or _paths.mlflow_tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise NoctisError(f"the MLflow store {uri} is a server: open its UI at {uri} instead")
    db = _sqlite_file(uri)
    if db is not None and not db.is_file():
        raise NoctisError(
            f"no MLflow store at {db} yet (home {_paths.home()}): "
            "`noctis-lab demo` or `noctis-lab ai register` makes one"
        )
    if port is not None and not 0 < port < 65536:
        raise NoctisError(f"--port {port}: must be between 1 and 65535")
    if importlib.util.find_spec("mlflow") is None:
        raise NoctisError("MLflow is not installed in this environment")
    port = port or _free_port()
    artifacts = (db.parent if db is not None else _paths.home() / "mlflow") / "artifacts"
    cmd = (
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--artifacts-destination",
        str(artifacts),
        "--allowed-hosts",
        f"{HOST}:{port},localhost:{port}",
    )
    env = (
        ("MLFLOW_BACKEND_STORE_URI", uri),  # in the environment: a URL may hold a password
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("DO_NOT_TRACK", "true"),
        ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),  # GenAI job workers: not used
    )
    return MlflowLaunch(cmd, env, uri, port, f"http://{HOST}:{port}{RUNS_VIEW}")


def runs_urls(base: str, timeout: float = 10.0) -> list[tuple[str, str]]:
    """(name, URL of its runs in the runs view) of each experiment the server lists.

    Links inside MLflow 3's UI fall back to its GenAI view unless the page says
    otherwise, so each experiment gets its own runs link.
    """
    import urllib.request

    api = f"{base}/ajax-api/2.0/mlflow/experiments/search?max_results=200"
    with urllib.request.urlopen(api, timeout=timeout) as resp:
        experiments = json.load(resp).get("experiments", [])
    return [
        (e["name"], f"{base}/#/experiments/{e['experiment_id']}/runs?workflowType=machine_learning")
        for e in experiments
        if e.get("name") != "Default"
    ]


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def _run(args: argparse.Namespace) -> int:
    launch = build_mlflow_launch(args.tracking_uri, args.port)
    env = {**os.environ, **dict(launch.env)}
    env.pop("MLFLOW_TRACKING_URI", None)
    print(f"MLflow UI: {launch.url}", flush=True)
    home = _paths.home()
    cwd = home if home.is_dir() else None
    # Its own process group: the server's workers stop with it, whatever stops us.
    proc = subprocess.Popen(
        launch.command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,  # the server's log; stdout carries only the URLs
        start_new_session=True,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        base = f"http://{HOST}:{launch.port}"
        if _wait_healthy(base, proc, args.wait):
            for name, url in runs_urls(base):
                print(f"  runs of {name}: {url}", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        _stop_group(proc)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def register(subparsers: Subparsers) -> None:
    """Add ``noctis-lab mlflow``."""
    p = subparsers.add_parser(
        "mlflow", help="open the MLflow UI on the project's store (runs view)", description=__doc__
    )
    p.add_argument("--port", type=int, metavar="N", help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else the home's mlflow/mlflow.db)",
    )
    p.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for the server (default 300)"
    )
    p.set_defaults(handler=_run)
