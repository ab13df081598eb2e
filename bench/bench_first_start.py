"""First start: ``git clone`` + ``make lab`` on a new checkout until the lab answers.

What a new user does, timed phase by phase: a fresh clone (no ``.venv``, no demo), empty
package caches (pip's and uv's, so every package is fetched as on a new machine), then
``make lab``; the clock stops when the printed URL answers with JupyterLab's page. The
lab is stopped afterwards and the clone removed (``--keep`` keeps it).

The peer, in the same run: the installer the setup used before, plain pip installing the
same pinned stack (``requirements.txt`` with ``requirements.lock``) into a new venv with an
empty cache, timed against our setup (``make lab`` up to the demo: venv, uv, the stack,
the editable installs and the extension link). ``--no-peer`` skips it.

Run: ``.venv/bin/python bench/bench_first_start.py`` (about 8 minutes; quiet machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL = re.compile(r"http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]+")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def _fresh_env(caches: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NOCTIS_HOME", "VIRTUAL_ENV"}}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's shell does not set it
    env |= {
        "PIP_NO_CACHE_DIR": "1",
        "UV_CACHE_DIR": str(caches / "uv"),
        "XDG_CACHE_HOME": str(caches / "xdg"),
    }
    return env


def stop_lab(proc: subprocess.Popen[str]) -> None:
    """Stop ``make lab`` and what it started in its process group."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _stop_everything_under(folder: Path) -> None:
    """Stop what the run left behind (the demo's AI training runs detached from ``make``)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGTERM)


def _time_pip_peer(clone: Path, work: Path) -> float:
    """Seconds for plain pip to install the pinned stack into a new venv, no cache."""
    venv = work / "pip-peer"
    env = _fresh_env(work / "peer-caches")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(
        [*pip, "-r", "requirements.txt", "-c", "requirements.lock"],
        cwd=clone,
        env=env,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - t0


def run(keep: bool, peer: bool) -> int:
    """Clone, ``make lab``, and print each phase's start and the time to a working URL."""
    work = Path(tempfile.mkdtemp(prefix="noctis-first-start-"))
    clone = work / "noctis"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        ["make", "lab"],
        cwd=clone,
        env=_fresh_env(work / "caches"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    url = None
    setup_done = None
    try:
        for line in proc.stdout:
            elapsed = time.monotonic() - start
            if setup_done is None and line.startswith(".venv/bin/noctis-lab demo"):
                setup_done = elapsed
            if not line.startswith((" ", "\t")) and len(line) < 400:
                print(f"{elapsed:7.1f} s  {line.rstrip()[:160]}", flush=True)
            found = URL.search(line)
            if found:
                url = found.group(0)
                break
        if url is None:
            print("make lab ended without a URL", file=sys.stderr)
            return 1
        printed = time.monotonic() - start
        while not _answers(url) and time.monotonic() - start < 1800:
            time.sleep(0.25)
        answered = time.monotonic() - start
        print(f"URL printed after {printed:.1f} s; the lab answered after {answered:.1f} s")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        if peer:
            stop_lab(proc)
            pip_s = _time_pip_peer(clone, work)
            print(
                f"setup: ours (venv, uv, stack, editable installs) {setup_done:.1f} s; "
                f"plain pip, the stack alone: {pip_s:.1f} s "
                f"(load average {os.getloadavg()[0]:.1f})"
            )
        return 0
    finally:
        stop_lab(proc)
        _stop_everything_under(work)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    """Command line: ``--keep`` leaves the clone for inspection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    parser.add_argument("--no-peer", action="store_true", help="skip the plain-pip peer")
    args = parser.parse_args()
    return run(args.keep, peer=not args.no_peer)


if __name__ == "__main__":
    sys.exit(main())
