"""Colours and display defaults shared by the widgets (one place)."""

from __future__ import annotations

from noctis_lab.quality import STATUS_COLOURS

__all__ = ["DEFAULT_LEVEL", "DEFAULT_WINDOW", "STATUS_COLOURS", "STATUS_LABELS", "rgb"]

# STATUS_COLOURS (status -> colour) is the one palette's table
# (``noctis_lab.quality``, which the result and trend plots and the reports use),
# re-exported so the ROI editor (JS receives a copy as a trait), the volume overlay and
# the plots agree. It includes "review" (needs review: the localisation is doubtful).

#: Verdict -> label value in the ROI overlay volume (0 is background).
STATUS_LABELS: dict[str, int] = {"pass": 1, "warning": 2, "fail": 3, "not_checked": 4}

#: A CT window wide enough to see every CatPhan insert, air to Teflon.
DEFAULT_WINDOW = 2000.0
DEFAULT_LEVEL = 0.0


def rgb(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` -> ``(r, g, b)`` in 0..255."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
