"""Notebook and Voila widgets for the physicist's HU workflow.

- :class:`RoiEditor` -- a CT slice with the analysis ROIs, dragged and resized with
  the mouse; the table, verdicts and checks update live; records to the history.
- :func:`view_volume` -- axial, coronal and sagittal slices and a 3-D rendering
  (NiiVue through ipyniivue, whose JavaScript ships in its wheel: works offline),
  with the ROIs overlaid in their verdict colours.
- :class:`PhantomBrowser`, :func:`phantom_table`, :func:`profile_table` -- phantom
  layouts, reference values with ranges and sources, tolerance profiles.
- :class:`TrendView` -- HU of each material over time with tolerance bands and drift
  alarms, scanner and material picked from drop-downs.

All of them are anywidget / ipywidgets objects and behave the same in JupyterLab and
Voila. The ROI editor's front end is a hand-written ES module inside the package
(``noctis_lab/widgets/static``): no node build is needed at install.
"""

from __future__ import annotations

from noctis_lab.widgets._nifti import affine_ras, nifti_bytes
from noctis_lab.widgets._phantom_browser import (
    PhantomBrowser,
    phantom_table,
    plot_phantom_module,
    profile_table,
)
from noctis_lab.widgets._roi_editor import RoiEditor
from noctis_lab.widgets._slice import window_uint8
from noctis_lab.widgets._trend import TrendView
from noctis_lab.widgets._volume_view import roi_label_volume, view_volume

__all__ = [
    "PhantomBrowser",
    "RoiEditor",
    "TrendView",
    "affine_ras",
    "nifti_bytes",
    "phantom_table",
    "plot_phantom_module",
    "profile_table",
    "roi_label_volume",
    "view_volume",
    "window_uint8",
]
