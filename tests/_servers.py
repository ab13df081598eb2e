"""Real servers for the tests: start a process, wait until it answers, stop it.

One place for what every server fixture does (Jupyter servers and labs, ``noctis-lab lab``,
JupyterHub): pick a free loopback port, poll until the server answers (failing at once, with
the end of its log, when the process exits), and stop it with a signal, killing it if it
does not stop in time.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["answers", "free_port", "running", "stop_process", "wait_until"]

T = TypeVar("T")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.is_file():
        return ""
    return log.read_text(errors="replace")[-chars:]


def wait_until(
    what: str,
    check: Callable[[], T],
    *,
    timeout: float,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
    interval: float = 0.5,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    ``check`` may raise ``OSError`` (``URLError``, ``HTTPError``, refused connections) or
    ``ValueError`` (a half-written answer) while the server comes up. Fails with an
    AssertionError saying ``what`` did not happen, with the end of ``log``, when ``proc``
    exits or ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"{what}: the process exited ({proc.returncode}):\n{_log_tail(log)}"
            )
        try:
            got = check()
        except (OSError, ValueError):
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s:\n{_log_tail(log)}")
        time.sleep(interval)


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    """True when ``url`` answers 200 (raises OSError while the server is not up)."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return bool(resp.status == 200)


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30
) -> None:
    """Send ``sig`` and wait; kill the process when it has not stopped within ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def running(
    cmd: list[str],
    *,
    url: str,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` (output to ``log``) until the block ends; wait until ``url`` answers 200.

    The server is stopped with ``stop_signal`` (killed after ``stop_timeout`` s) however the
    block ends, also when it never came up.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(
            f"{cmd[0]} answering {url}", lambda: answers(url), timeout=timeout, proc=proc, log=log
        )
        yield proc
    finally:
        stop_process(proc, stop_signal, stop_timeout)
