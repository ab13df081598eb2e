"""A missing real part (PostgreSQL, JupyterHub, Chromium, the shared real data) in CI.

On a developer's machine a test whose real part is absent skips with the reason;
in CI (``CI=true``, as ``.ci/run`` sets it) the same absence is a failure, so a
green CI run always means the real parts ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["IN_CI", "REALDATA", "missing_real_part", "realdata_dir"]

#: Whether the suite runs in CI, where nothing real may be skipped.
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_real_part(reason: str) -> NoReturn:
    """Skip with ``reason``; in CI, fail with it instead."""
    if IN_CI:
        pytest.fail(f"CI=true and a real part is missing: {reason}", pytrace=False)
    pytest.skip(reason)


#: The real phantom scans beside the checkout (never copied into the repository).
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def realdata_dir() -> Path:
    """``../shared/realdata``; a missing real part (skip, or fail in CI) when absent."""
    if not REALDATA.is_dir():
        missing_real_part(f"the real phantom scans are not at {REALDATA}")
    return REALDATA
