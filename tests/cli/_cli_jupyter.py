"""A real Jupyter server for the CLI tests: wait for it, run code in a kernel, save files."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import websocket  # websocket-client (pinned through the Jupyter stack)


def wait_for(url: str, *, timeout: float = 120.0, proc: Any = None) -> None:
    """Wait until ``url`` answers 200 (fail early if ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s: {last}")


def api(base: str, token: str, path: str, method: str = "GET", body: Any = None) -> Any:
    """Call the Jupyter REST API and return the decoded JSON (None for empty bodies)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def run_in_kernel(base: str, token: str, notebook_path: str, code: str) -> str:
    """Start a kernel for ``notebook_path`` (as opening it in the lab does), run ``code``,
    return its stdout."""
    session = api(
        base,
        token,
        "/api/sessions",
        "POST",
        {"path": notebook_path, "type": "notebook", "kernel": {"name": "python3"}},
    )
    kernel_id = session["kernel"]["id"]
    ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=120)
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": False},
                "channel": "shell",
            }
        )
    )
    out: list[str] = []
    try:
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        ws.close()
        api(base, token, f"/api/sessions/{session['id']}", "DELETE")
    return "".join(out)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_lab(
    cmd: list[str], *, cwd: Any, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``noctis-lab lab ...`` and wait for it: (process, base URL, token)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "Noctis Lab: http://127.0.0.1:PORT/lab?token=..."
    if "token=" not in line:
        stop(proc)
        raise AssertionError(f"noctis-lab lab printed {line!r}")
    url = line.split("Noctis Lab: ", 1)[1].strip()
    base, token = url.split("/lab?token=", 1)
    try:
        wait_for(f"{base}/api/status?token={token}", proc=proc)
    except AssertionError:
        stop(proc)
        raise
    return proc, base, token


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop a server started by :func:`start_lab`."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
