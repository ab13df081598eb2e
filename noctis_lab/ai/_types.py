"""Shared small types: the status scale and issues.

The status vocabulary is the one of :mod:`noctis_lab.quality` (AI models use
``excellent``, ``good``, ``warning`` and ``error``); it is re-exported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from noctis_lab.quality import Status
from noctis_lab.quality import worst_status as _worst_status

__all__ = ["Issue", "Status", "worst_status"]


def worst_status(*statuses: Status | str | None) -> Status:
    """Combine model statuses: the worst wins, so an ``error`` is never hidden.

    :func:`noctis_lab.quality.worst_status` with the AI default: ``None`` entries (no
    information from that source) are ignored; with nothing at all the result is
    ``excellent``.

    Parameters
    ----------
    *statuses : Status, str or None
        The statuses to combine.

    Returns
    -------
    Status
        The worst of them.

    Raises
    ------
    UnknownStatusError
        An entry names no status (a ``ValueError``).
    """
    return _worst_status(*statuses, default=Status.EXCELLENT)


@dataclass(frozen=True)
class Issue:
    """A problem found with a model, in plain words.

    Attributes
    ----------
    code : str
        Stable machine name, e.g. ``"missing_file"``, ``"low_success_rate"``, ``"degradation"``.
    severity : Status
        The status this issue implies on its own (``good``, ``warning`` or ``error``;
        given as text it is made a :class:`~noctis_lab.quality.Status`).
    message : str
        Plain-words explanation for a clinician or physicist.
    source : str
        Which part found it: ``"file"``, ``"metrics"``, ``"analyses"``, ``"history"``.
    """

    code: str
    severity: Status
    message: str
    source: str

    def __post_init__(self) -> None:
        """Keep the severity an enum member, whatever text it was given as."""
        object.__setattr__(self, "severity", Status.parse(self.severity))

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (the severity as its value)."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "source": self.source,
        }

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict())
