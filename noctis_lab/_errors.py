"""The error hierarchy of Noctis Lab.

Every failure that a user can cause raises a subclass of :class:`NoctisError`.
Each subclass also derives from the matching built-in exception, so callers that
only know Python's own exceptions (``ValueError``, ``FileNotFoundError`` ...) still
catch it. Messages name the thing (a file, a phantom, a row) and the reason.
"""

from __future__ import annotations

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
]


class NoctisError(Exception):
    """Base class of every error that Noctis Lab raises on purpose."""


class DicomError(NoctisError, ValueError):
    """A DICOM file cannot be used: not DICOM, truncated, no pixels, bad tags."""


class NoFilesFoundError(NoctisError, FileNotFoundError):
    """A folder, archive or list holds no usable files."""


class AmbiguousSeriesError(NoctisError, ValueError):
    """Several series were found and the caller did not say which one."""

    def __init__(self, message: str, series: dict[str, str] | None = None) -> None:
        super().__init__(message)
        #: SeriesInstanceUID -> short description, to choose from.
        self.series: dict[str, str] = dict(series or {})


class SeriesGeometryError(NoctisError, ValueError):
    """The slices of a series do not form one regular axial volume."""


class PhantomNotFoundError(NoctisError, ValueError):
    """The phantom (or the module asked for) was not found in the images."""


class PhantomDefinitionError(NoctisError, ValueError):
    """A phantom definition file is missing, malformed or inconsistent."""


class ProfileError(NoctisError, ValueError):
    """A tolerance profile or reference table is missing, malformed or inconsistent."""


class HistoryError(NoctisError, RuntimeError):
    """The calibration history store cannot be read or written."""


class ModelCheckError(NoctisError, ValueError):
    """A model file or registry entry failed a check."""


class ManifestError(NoctisError, ValueError):
    """A test-set manifest is malformed; the message names the row."""


class ReportError(NoctisError, RuntimeError):
    """A report could not be produced."""


class ChatPermissionError(NoctisError, PermissionError):
    """A chat action was refused by the server-side rules."""


class IdentityError(NoctisError, ValueError):
    """A users file (the team's identities and tokens) is missing, malformed or inconsistent."""


class RoomError(NoctisError, ValueError):
    """A chat room does not exist, or a room request is malformed."""


class ServiceError(NoctisError, RuntimeError):
    """A shared service (PostgreSQL, the MLflow server) cannot be set up, started or stopped."""


class NoctisWarning(UserWarning):
    """Base class of Noctis Lab's warnings."""


class SliceGapWarning(NoctisWarning):
    """Slices are missing from a series: positions jump by more than the spacing."""
