"""The code stays ruff- and mypy-clean (what `make lint` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PATHS = ["noctis_lab", "tests", "bench", "extensions"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check() -> None:
    proc = _run(str(BIN / "ruff"), "check", *PATHS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format() -> None:
    proc = _run(str(BIN / "ruff"), "format", "--check", *PATHS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_mypy() -> None:
    proc = _run(str(BIN / "mypy"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_notebooks_are_stored_without_outputs_and_thin() -> None:
    import json

    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            assert not cell.get("outputs"), f"{nb.name} is stored with outputs"
            assert cell.get("execution_count") is None, f"{nb.name} has execution counts"
            assert "def " not in src and "class " not in src, f"{nb.name} defines code: {src}"
