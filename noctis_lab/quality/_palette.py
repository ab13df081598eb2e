"""The one status palette: every plot, widget, report and dashboard colours a status here.

Each status has a :class:`Swatch` of three colours (``"#rrggbb"``):

``colour``
    the status drawn on white: plot markers, ROI outlines, overlay labels, alarm lines;
``fg`` and ``bg``
    a badge or table cell: text in ``fg`` on ``bg`` (contrast at least 4.5:1, WCAG AA).

``excellent`` and ``pass`` share the greens, ``fail`` and ``error`` the reds; ``good``
is a lighter green, ``warning`` amber, ``review`` (needs review) violet and
``not_checked`` grey. The tables are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from noctis_lab.quality._status import Status, UnknownStatusError

__all__ = ["PALETTE", "STATUS_COLOURS", "Swatch", "badge_css", "swatch"]


@dataclass(frozen=True)
class Swatch:
    """The colours of one status.

    Attributes
    ----------
    colour : str
        The status on white (plots, outlines, overlays).
    fg, bg : str
        Text and background of a badge or table cell.
    """

    colour: str
    fg: str
    bg: str


_GREEN = Swatch("#2e7d32", "#1b5e20", "#e8f5e9")
_RED = Swatch("#c62828", "#b71c1c", "#ffebee")

#: Status -> :class:`Swatch`, one entry per :class:`Status`.
PALETTE: Final[Mapping[Status, Swatch]] = MappingProxyType(
    {
        Status.EXCELLENT: _GREEN,
        Status.GOOD: Swatch("#689f38", "#33691e", "#f1f8e9"),
        Status.PASS: _GREEN,
        Status.NOT_CHECKED: Swatch("#757575", "#455a64", "#eceff1"),
        Status.WARNING: Swatch("#ef8f00", "#7a4f01", "#fff8e1"),
        Status.FAIL: _RED,
        Status.ERROR: _RED,
        Status.REVIEW: Swatch("#6a1b9a", "#4a148c", "#f3e5f5"),
    }
)

#: Status value -> :attr:`Swatch.colour` (plain ``str`` keys, ready for JSON and widgets).
STATUS_COLOURS: Final[Mapping[str, str]] = MappingProxyType(
    {s.value: sw.colour for s, sw in PALETTE.items()}
)


def swatch(status: object) -> Swatch | None:
    """The swatch of a status given as a member, value or label; ``None`` if it is none.

    Parameters
    ----------
    status : object
        ``Status.PASS``, ``"pass"``, ``"needs review"`` ...

    Returns
    -------
    Swatch or None
        Its colours, or ``None`` for a value that names no status.
    """
    try:
        return PALETTE[Status.parse(status)]
    except UnknownStatusError:
        return None


def badge_css(status: object) -> str:
    """Inline CSS of a status badge or table cell (no colour for a non-status value).

    Parameters
    ----------
    status : object
        The status (member, value or label).

    Returns
    -------
    str
        ``color``, ``background-color`` and ``font-weight`` declarations.
    """
    sw = swatch(status)
    fg, bg = ("inherit", "transparent") if sw is None else (sw.fg, sw.bg)
    return f"color:{fg};background-color:{bg};font-weight:600"
