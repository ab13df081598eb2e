"""First start: `make lab` does not wait for the demo's AI training (it runs in the
background, with its progress in a log)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from _cli_tools import Run


@pytest.mark.slow
def test_ai_demo_trains_in_the_background_with_progress(tmp_path: Path, run_cli: Run) -> None:
    home = tmp_path / "home"
    out = home / "data" / "demo"
    out.mkdir(parents=True)
    (out / ".hu-complete").write_text("HU part written\n")  # what `demo --no-ai` leaves
    env = {"NOCTIS_HOME": str(home)}
    t0 = time.monotonic()
    first = run_cli("demo", "--out", str(out), "--ai-in-background", cwd=tmp_path, env=env)
    took = time.monotonic() - t0
    assert first.returncode == 0, first.stderr
    pid = int((out / ".ai-demo.pid").read_text())
    try:
        assert took < 30, f"starting the background training took {took:.0f} s"
        assert f"pid {pid}" in first.stdout and str(out / "ai-demo.log") in first.stdout
        os.kill(pid, 0)  # it runs
        again = run_cli("demo", "--out", str(out), "--ai-in-background", cwd=tmp_path, env=env)
        assert f"pid {pid}" in again.stdout, "a second training was started"
        deadline = time.monotonic() + 120
        log = out / "ai-demo.log"
        while time.monotonic() < deadline and "AI demo" not in log.read_text(errors="replace"):
            time.sleep(1)
        assert "AI demo" in log.read_text(errors="replace"), "no progress in the log"
        assert not (out / ".complete").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
