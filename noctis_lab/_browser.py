"""Debian's Chromium, as every part of Noctis Lab drives it (PDF reports, tests, benches).

Playwright for Python drives the system browser through ``executable_path``; the
project never downloads a browser of its own.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]

#: The real binary (``/usr/bin/chromium`` is a wrapper script).
CHROMIUM = Path("/usr/lib/chromium/chromium")

#: Headless, sandbox-free (root), and quiet on a closed network: without the
#: background-networking flags Chromium keeps trying hosts it cannot reach.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
