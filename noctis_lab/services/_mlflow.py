"""The MLflow tracking server: start it on PostgreSQL, check it, stop its process group."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from noctis_lab._errors import ServiceError
from noctis_lab.services._ports import HOST, port_is_free
from noctis_lab.services._postgres import log_tail
from noctis_lab.services._state import Layout

__all__ = ["kill_group", "mlflow_healthy", "mlflow_pid", "start_mlflow"]


def mlflow_pid(lay: Layout) -> int | None:
    """The MLflow server's pid if the pid file names a live MLflow process of ours."""
    try:
        pid = int(lay.mlflow_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    try:
        leader = os.getpgid(pid)
    except ProcessLookupError:
        return None
    if b"mlflow" not in b" ".join(cmdline) or leader != pid:
        return None  # a recycled pid: not ours
    return pid


def mlflow_healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_mlflow(lay: Layout, port: int, backend_url: str, workers: int, timeout: float) -> int:
    if not port_is_free(port):
        raise ServiceError(
            f"port {port} on {HOST} is taken by another program; "
            "choose another MLflow port (--mlflow-port)"
        )
    if importlib.util.find_spec("mlflow") is None:
        raise ServiceError("MLflow is not installed in this environment (pip install mlflow)")
    lay.artifacts.mkdir(exist_ok=True)
    lay.mlflow_pid.parent.mkdir(exist_ok=True)
    log = lay.logs / "mlflow.log"
    hosts = f"{HOST}:{port},localhost:{port}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--serve-artifacts",
        "--artifacts-destination",
        str(lay.artifacts),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--allowed-hosts",
        hosts,
    ]
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_BACKEND_STORE_URI": backend_url,
        # the GenAI job runner (huey consumers: 7 more processes) serves nothing we use
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=lay.root,
            start_new_session=True,
        )
    lay.mlflow_pid.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lay.mlflow_pid.unlink(missing_ok=True)
            raise ServiceError(
                f"the MLflow server exited (code {proc.returncode}) while starting; "
                f"log {log}:\n{log_tail(log)}"
            )
        if mlflow_healthy(port):
            return proc.pid
        time.sleep(0.3)
    kill_group(proc.pid)
    lay.mlflow_pid.unlink(missing_ok=True)
    raise ServiceError(
        f"the MLflow server did not answer on {HOST}:{port} within {timeout:.0f} s; "
        f"log {log}:\n{log_tail(log)}"
    )


def kill_group(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid`` (ours), then SIGKILL after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap when it is our child
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
