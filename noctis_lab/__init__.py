"""Noctis Lab: CT quality assurance and medical-imaging AI verification in Jupyter.

The package is organised by area; import what you need from each:

- :mod:`noctis_lab.dicom` -- load CT series into a :class:`~noctis_lab.dicom.Volume`.
- :mod:`noctis_lab.hu` -- phantoms, references, tolerance profiles, analysis, history.
- :mod:`noctis_lab.ai` -- model checks, evaluation, status and degradation, MLflow.
- :mod:`noctis_lab.widgets` -- notebook and Voila widgets.
- :mod:`noctis_lab.reports` -- papermill reports and schedules.

Heavy dependencies (torch, mlflow, matplotlib) are imported lazily by the modules
that need them, so ``import noctis_lab`` stays fast.
"""

from __future__ import annotations

from noctis_lab._errors import (
    AmbiguousSeriesError,
    ChatPermissionError,
    DicomError,
    HistoryError,
    IdentityError,
    ManifestError,
    ModelCheckError,
    NoctisError,
    NoctisWarning,
    NoFilesFoundError,
    PhantomDefinitionError,
    PhantomNotFoundError,
    ProfileError,
    ReportError,
    RoomError,
    SeriesGeometryError,
    ServiceError,
    SliceGapWarning,
)
from noctis_lab._version import __version__

__all__ = [
    "AmbiguousSeriesError",
    "ChatPermissionError",
    "DicomError",
    "HistoryError",
    "IdentityError",
    "ManifestError",
    "ModelCheckError",
    "NoFilesFoundError",
    "NoctisError",
    "NoctisWarning",
    "PhantomDefinitionError",
    "PhantomNotFoundError",
    "ProfileError",
    "ReportError",
    "RoomError",
    "SeriesGeometryError",
    "ServiceError",
    "SliceGapWarning",
    "__version__",
]
