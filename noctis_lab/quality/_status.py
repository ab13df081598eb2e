"""The one status vocabulary of Noctis Lab: HU calibrations and AI models alike.

A :class:`Status` is a ``str`` enum: results keep the member (``Status.PASS``), which
compares equal to its value (``Status.PASS == "pass"``), formats as it
(``f"{Status.PASS}"`` is ``"pass"``) and serialises as it (``json.dumps`` writes
``"pass"``). :attr:`Status.label` is how a reader sees it (``review`` reads "needs
review").

The order of :func:`worst_status`, best first (``=`` marks a tie)::

    not_checked < excellent < good < pass < warning < fail = error < review

``not_checked`` (a ROI that no criterion judged) carries no verdict, so any judged
status outranks it; ``review`` (needs review: the phantom localisation is doubtful)
ranks above a failure because it leaves every other verdict unconfirmed. The HU and
AI scales do not mix in practice; where they meet, a pass is worse than an excellent
or good model. On a tie the status seen first stays, starting from the default (so
``not_checked`` alone combines to the default, ``pass`` for HU verdicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from noctis_lab._errors import NoctisError

__all__ = ["Status", "UnknownStatusError", "worst_status"]


class UnknownStatusError(NoctisError, ValueError):
    """A value that is not a status of :class:`Status` (by value or label)."""


class Status(StrEnum):
    """A verdict: HU calibration (``pass`` ...) or AI model (``excellent`` ...) status.

    HU calibrations use ``pass``, ``warning``, ``fail`` and ``review`` (needs review),
    and ``not_checked`` for a ROI no criterion judged; AI models use ``excellent``,
    ``good``, ``warning`` and ``error``.
    """

    NOT_CHECKED = "not_checked"
    EXCELLENT = "excellent"
    GOOD = "good"
    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"
    ERROR = "error"
    REVIEW = "review"

    @property
    def label(self) -> str:
        """How a reader sees the status: ``"needs review"``, ``"not checked"``, ``"pass"``."""
        return _LABELS.get(self, self.value)

    @property
    def rank(self) -> int:
        """Severity in the order of :func:`worst_status`; a higher rank is worse."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: object) -> Status:
        """The status named by ``value``: a member, its value or its label.

        Parameters
        ----------
        value : object
            ``Status.REVIEW``, ``"review"`` or ``"needs review"`` (case-insensitive).

        Returns
        -------
        Status
            The member.

        Raises
        ------
        UnknownStatusError
            ``value`` names no status.
        """
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower()
        found = _BY_NAME.get(text)
        if found is None:
            known = ", ".join(s.value for s in cls)
            raise UnknownStatusError(f"unknown status {value!r}; expected one of {known}")
        return found


_LABELS: Final[Mapping[Status, str]] = MappingProxyType(
    {Status.REVIEW: "needs review", Status.NOT_CHECKED: "not checked"}
)
_RANK: Final[Mapping[Status, int]] = MappingProxyType(
    {
        Status.NOT_CHECKED: 0,
        Status.EXCELLENT: 1,
        Status.GOOD: 2,
        Status.PASS: 3,
        Status.WARNING: 4,
        Status.FAIL: 5,
        Status.ERROR: 5,
        Status.REVIEW: 6,
    }
)
_BY_NAME: Final[Mapping[str, Status]] = MappingProxyType(
    {**{s.value: s for s in Status}, **{s.label: s for s in Status}}
)

StatusLike = Status | str
"""A :class:`Status` or its value/label as text."""


def _flatten(
    statuses: Iterable[StatusLike | Iterable[StatusLike | None] | None],
) -> Iterable[StatusLike | None]:
    """Each status of ``statuses``, an argument that is an iterable giving its items."""
    for item in statuses:
        if item is None or isinstance(item, str):
            yield item
        else:
            yield from item


def worst_status(
    *statuses: StatusLike | Iterable[StatusLike | None] | None,
    default: StatusLike = Status.PASS,
) -> Status:
    """The worst of several statuses, in the order documented in this module.

    Parameters
    ----------
    *statuses : Status, str, None or iterable of them
        The statuses to combine; an argument may be an iterable of statuses (a
        generator over checks, say). ``None`` (no information) is ignored.
    default : Status or str
        The result when nothing worse is given: ``pass`` for HU verdicts,
        ``excellent`` for AI models.

    Returns
    -------
    Status
        The worst status; on a tie the first seen (the default before any).

    Raises
    ------
    UnknownStatusError
        An entry names no status.

    Examples
    --------
    >>> worst_status("pass", "warning")
    <Status.WARNING: 'warning'>
    >>> worst_status(["not_checked"])
    <Status.PASS: 'pass'>
    >>> worst_status(default="excellent")
    <Status.EXCELLENT: 'excellent'>
    """
    worst = Status.parse(default)
    for item in _flatten(statuses):
        if item is None:
            continue
        status = Status.parse(item)
        if _RANK[status] > _RANK[worst]:
            worst = status
    return worst
