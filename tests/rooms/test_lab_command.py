"""``noctis-lab lab``: option checks, and a real start with a users file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _servers import free_port, wait_until

from noctis_lab._errors import IdentityError, NoctisError, NoFilesFoundError
from noctis_lab.cli._lab import build_lab_launch


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(NoFilesFoundError, match="no such directory"):
        build_lab_launch(root=str(tmp_path / "missing"))
    bad = tmp_path / "users.json"
    bad.write_text(json.dumps({"users": [{"username": "alice", "token": "x" * 20}]}))
    bad.chmod(0o644)  # every token readable by other accounts
    with pytest.raises(IdentityError, match="readable by other accounts"):
        build_lab_launch(root=str(tmp_path), users=str(bad))
    bad.chmod(0o600)
    bad.write_text(json.dumps({"users": [{"username": "al ice", "token": "x" * 20}]}))
    with pytest.raises(IdentityError, match="username"):
        build_lab_launch(root=str(tmp_path), users=str(bad))
    bad.write_text(json.dumps({"users": [{"username": "a", "token": "short"}]}))
    with pytest.raises(IdentityError, match="at least 16"):
        build_lab_launch(root=str(tmp_path), users=str(bad))
    bad.write_text(
        json.dumps(
            {"users": [{"username": "a", "token": "t" * 16}, {"username": "b", "token": "t" * 16}]}
        )
    )
    with pytest.raises(IdentityError, match="shared with another user"):
        build_lab_launch(root=str(tmp_path), users=str(bad))
    bad.write_text("{not json")
    with pytest.raises(IdentityError, match="not valid JSON"):
        build_lab_launch(root=str(tmp_path), users=str(bad))
    with pytest.raises(NoctisError, match="port"):
        build_lab_launch(root=str(tmp_path), port=70000)
    launch = build_lab_launch(root=str(tmp_path), port=8999)
    assert launch.token is not None and len(launch.token) >= 32
    assert f"token={launch.token}" in launch.url and launch.url.startswith("http://127.0.0.1:8999/")
    # the token reaches the server through its environment, never its command line
    assert not any(launch.token in c for c in launch.command)
    assert dict(launch.env)["JUPYTER_TOKEN"] == launch.token
    assert "--ip=127.0.0.1" in launch.command
    assert "--ServerApp.jpserver_extensions=noctis_rooms=True" in launch.command
    assert launch.token not in json.dumps(launch.to_dict())


def _users_file(folder: Path) -> Path:
    """A 0600 users file: alice (admin) and bob, each with a token."""
    users = folder / "users.json"
    alice = {
        "username": "alice",
        "token": "alice-token-abcdef0123",
        "display_name": "Alice",
        "role": "admin",
    }
    bob = {"username": "bob", "token": "bob-token-abcdef012345", "display_name": "Bob"}
    users.write_text(json.dumps({"users": [alice, bob]}))
    users.chmod(0o600)
    return users


@pytest.mark.server
def test_lab_starts_with_users_file(tmp_path: Path) -> None:
    users = _users_file(tmp_path)
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "NOCTIS_USERS": str(users),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
    }
    exe = Path(sys.executable).parent / "noctis-lab"
    proc = subprocess.Popen(
        [str(exe), "lab", "--root", str(root), "--port", str(port), "--no-browser"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        me = wait_until("the lab answering bob", lambda: _me(port), timeout=90, proc=proc)
        assert me["identity"]["username"] == "bob" and me["identity"]["display_name"] == "Bob"
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/me",
            headers={"Authorization": "token nope-nope-nope-nope"},
        )
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(req, timeout=5)
        # files the server creates are private to its account (umask 077)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/noctis/rooms",
            data=json.dumps({"path": "team.chat"}).encode(),
            method="POST",
            headers={"Authorization": "token alice-token-abcdef0123"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
        assert (root / "team.chat").stat().st_mode & 0o077 == 0
        assert (root / ".noctis").stat().st_mode & 0o077 == 0
        assert (root / ".noctis" / "rooms.db").stat().st_mode & 0o077 == 0
        # no token on any command line of the server's processes
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _tree(proc.pid)]
        assert cmdlines and not any(b"token-abcdef" in c for c in cmdlines)
    finally:
        # stopped as a service manager stops it: SIGTERM to noctis-lab reaches its server too
        tree = _tree(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in tree:  # the server too: it holds the output pipe open
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert proc.returncode == 143
    assert not [pid for pid in tree if Path(f"/proc/{pid}").exists()], "server left running"
    text = out.decode(errors="replace")
    assert f"http://127.0.0.1:{port}/lab" in text and "own token" in text
    assert "chat rules enforced" in text


def _me(port: int) -> dict[str, Any]:
    """``/api/me`` as bob."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/me",
        headers={"Authorization": "token bob-token-abcdef012345"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        me: dict[str, Any] = json.loads(r.read())
    return me


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
    return out
