"""One status vocabulary, one palette and one set of drift statistics for HU and AI.

The HU calibration, the AI model status, the plots, widgets, reports and dashboards
all speak this vocabulary:

* :class:`Status`, a ``str`` enum (results keep the member; it serialises as its
  value), :func:`worst_status` with its documented order, and
  :class:`UnknownStatusError` for a value that names no status;
* :data:`PALETTE` (status -> :class:`Swatch`: plot colour, badge text and background),
  :data:`STATUS_COLOURS` (status -> plot colour) and :func:`badge_css`;
* the drift statistics (:func:`cusum`, :func:`ewma`, :func:`window_z`,
  :func:`trend_fit`, :func:`step_fit`, :func:`fit_windows`) and their one result type,
  :class:`DriftResult`, with :class:`DriftTest`, :class:`Direction` and
  :class:`DriftShape`.
"""

from noctis_lab.quality._drift import (
    Direction,
    DriftResult,
    DriftShape,
    DriftTest,
    StepFit,
    TrendFit,
    cusum,
    ewma,
    fit_windows,
    step_fit,
    trend_fit,
    window_z,
)
from noctis_lab.quality._palette import PALETTE, STATUS_COLOURS, Swatch, badge_css, swatch
from noctis_lab.quality._status import Status, UnknownStatusError, worst_status

__all__ = [
    "PALETTE",
    "STATUS_COLOURS",
    "Direction",
    "DriftResult",
    "DriftShape",
    "DriftTest",
    "Status",
    "StepFit",
    "Swatch",
    "TrendFit",
    "UnknownStatusError",
    "badge_css",
    "cusum",
    "ewma",
    "fit_windows",
    "step_fit",
    "swatch",
    "trend_fit",
    "window_z",
    "worst_status",
]
