"""Shared helpers of the command-line tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

EXE = Path(sys.executable).with_name("noctis-lab")

Run = Callable[..., subprocess.CompletedProcess[str]]


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and mtime (to prove nothing changed)."""
    out: dict[str, tuple[int, int]] = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out
