"""Status colours: one table for every plot, widget and overlay of a verdict."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["STATUS_COLOURS"]

#: Verdict -> colour (``"#rrggbb"``): ``pass``, ``warning``, ``fail``, ``review`` (needs
#: review: the phantom was found with doubts, no verdict yet) and ``not_checked`` (a ROI
#: no criterion judged). Read-only; callers that need a dict copy it.
STATUS_COLOURS: Final = MappingProxyType(
    {
        "review": "#6a1b9a",
        "pass": "#2e7d32",
        "warning": "#ef8f00",
        "fail": "#c62828",
        "not_checked": "#757575",
    }
)
