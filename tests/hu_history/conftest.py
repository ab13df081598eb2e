"""Fixtures of the calibration-history tests: a factory of calibration results.

The databases (``db_url`` over SQLite and PostgreSQL, ``pg_server``) come from
the suite's root ``conftest.py``, shared with the record layer's tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _history_factory import make_result, scanner

__all__ = ["make_result", "scanner"]
