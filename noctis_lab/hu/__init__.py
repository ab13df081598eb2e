"""CT Hounsfield-unit standards: phantoms, references, tolerance profiles, analysis.

Phantom layouts, reference values and tolerance profiles are data files with
their sources (``noctis_lab/hu/data``), validated on load.

>>> from noctis_lab.hu import analyze
>>> result = analyze("data/demo/scanner-a/2026-01-05", "catphan604", "seed")  # doctest: +SKIP
>>> result.status, result.recommendations  # doctest: +SKIP

:func:`judge` is the last step of :func:`analyze` on its own: measurements (for
instance with some ROIs measured again where a physicist moved them) against a
profile, giving a new :class:`CalibrationResult`.

The calibration history and the synthetic phantom generator are the modules
``noctis_lab.hu.history`` and ``noctis_lab.hu.synthetic`` (imported on demand).
"""

from __future__ import annotations

from noctis_lab.hu._analyze import analyze, judge
from noctis_lab.hu._demo_set import demo_series
from noctis_lab.hu._identify import Candidate, Identification, identify
from noctis_lab.hu._kinds import CheckKind, LocalisationMethod, RoiRole
from noctis_lab.hu._phantoms import (
    Feature,
    Module,
    Phantom,
    Roi,
    Source,
    list_phantoms,
    load_phantom,
)
from noctis_lab.hu._profiles import Criterion, Profile, list_profiles, load_profile
from noctis_lab.hu._references import ReferenceEntry, ReferenceTable, load_references
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
    "Candidate",
    "Check",
    "CheckKind",
    "Criterion",
    "EdPoint",
    "Feature",
    "Identification",
    "Linearity",
    "Localisation",
    "LocalisationMethod",
    "Module",
    "Phantom",
    "Profile",
    "ReferenceEntry",
    "ReferenceTable",
    "Roi",
    "RoiMeasurement",
    "RoiRole",
    "Source",
    "Uniformity",
    "analyze",
    "demo_series",
    "identify",
    "judge",
    "list_phantoms",
    "list_profiles",
    "load_phantom",
    "load_profile",
    "load_references",
]
