"""Shared small types: the status scale and issues."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["STATUS_ORDER", "Issue", "Status", "worst_status"]

Status = Literal["excellent", "good", "warning", "error"]
#: Severity rank of each status; a higher rank is worse.
STATUS_ORDER: dict[str, int] = {"excellent": 0, "good": 1, "warning": 2, "error": 3}


def worst_status(*statuses: Status | None) -> Status:
    """Combine statuses: the worst one wins, so an ``error`` is never hidden by a better one.

    ``None`` entries (no information from that source) are ignored; with nothing at all the
    result is ``"excellent"``.
    """
    known = [s for s in statuses if s is not None]
    if not known:
        return "excellent"
    for s in known:
        if s not in STATUS_ORDER:
            raise ValueError(f"unknown status {s!r}; expected one of {list(STATUS_ORDER)}")
    return max(known, key=lambda s: STATUS_ORDER[s])


@dataclass(frozen=True)
class Issue:
    """A problem found with a model, in plain words.

    Attributes
    ----------
    code : str
        Stable machine name, e.g. ``"missing_file"``, ``"low_success_rate"``, ``"degradation"``.
    severity : {"good", "warning", "error"}
        The status this issue implies on its own.
    message : str
        Plain-words explanation for a clinician or physicist.
    source : str
        Which part found it: ``"file"``, ``"metrics"``, ``"analyses"``, ``"history"``.
    """

    code: str
    severity: Status
    message: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict())
