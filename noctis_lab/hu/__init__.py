"""CT Hounsfield-unit standards: phantoms, references, tolerance profiles, analysis.

Phantom layouts, reference values and tolerance profiles are data files with
their sources (``noctis_lab/hu/data``), validated on load.
"""

from __future__ import annotations

from noctis_lab.hu._phantoms import (
    Feature,
    Module,
    Phantom,
    Roi,
    Source,
    list_phantoms,
    load_phantom,
)
from noctis_lab.hu._result import (
    CalibrationResult,
    Check,
    EdPoint,
    Linearity,
    Localisation,
    RoiMeasurement,
    Uniformity,
)

__all__ = [
    "CalibrationResult",
    "Check",
    "EdPoint",
    "Feature",
    "Linearity",
    "Localisation",
    "Module",
    "Phantom",
    "Roi",
    "RoiMeasurement",
    "Source",
    "Uniformity",
    "list_phantoms",
    "load_phantom",
]
