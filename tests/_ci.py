"""A missing real part (PostgreSQL, JupyterHub, Chromium, the shared real data) in CI.

On a developer's machine a test whose real part is absent skips with the reason;
in CI (``CI=true``, as ``.ci/run`` sets it) the same absence is a failure, so a
green CI run always means the real parts ran.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["IN_CI", "missing_real_part"]

#: Whether the suite runs in CI, where nothing real may be skipped.
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_real_part(reason: str) -> NoReturn:
    """Skip with ``reason``; in CI, fail with it instead."""
    if IN_CI:
        pytest.fail(f"CI=true and a real part is missing: {reason}", pytrace=False)
    pytest.skip(reason)
