"""The in-memory CT volume that every analysis consumes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ScannerInfo", "Volume"]


@dataclass(frozen=True)
class ScannerInfo:
    """Who acquired a series, and how.

    Attributes mirror the DICOM tags they come from; every one may be empty when
    the tag is absent. :attr:`key` identifies a scanner in the calibration history.
    """

    manufacturer: str = ""
    model: str = ""
    station: str = ""
    serial: str = ""
    software_versions: str = ""
    institution: str = ""
    kvp: float | None = None
    tube_current_ma: float | None = None
    convolution_kernel: str = ""
    slice_thickness_mm: float | None = None
    acquisition_datetime: str = ""
    series_description: str = ""
    cone_beam_evidence: str = ""

    @property
    def cone_beam(self) -> bool:
        """Whether the header shows a cone-beam acquisition (see :func:`cone_beam_evidence`)."""
        return bool(self.cone_beam_evidence)

    @property
    def key(self) -> str:
        """A stable identifier: ``manufacturer/model/serial`` (station when no serial)."""
        ident = self.serial or self.station or "unknown"
        return "/".join(p.strip() or "unknown" for p in (self.manufacturer, self.model, ident))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary, with the derived :attr:`key`."""
        d = dataclasses.asdict(self)
        d["key"] = self.key
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScannerInfo:
        """Inverse of :meth:`to_dict` (unknown keys, such as ``key``, are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, eq=False)
class Volume:
    """A CT series as a regular HU volume.

    Attributes
    ----------
    hu : numpy.ndarray
        float32 array ``(z, y, x)`` in Hounsfield units, slices sorted along the
        slice normal (increasing position).
    spacing : tuple of float
        ``(dz, dy, dx)`` in mm: slice spacing, row spacing, column spacing.
    origin : tuple of float
        ImagePositionPatient ``(x, y, z)`` of the first voxel of the first slice, mm.
    orientation : tuple of float
        ImageOrientationPatient: row direction cosines then column direction cosines.
    slice_positions : tuple of float
        Position of each slice along the slice normal, mm (same order as ``hu``).
    scanner : ScannerInfo
        Scanner and acquisition metadata.
    series_uid, study_uid : str
        DICOM identifiers of the series and study.
    sources : tuple of str
        Where each slice came from (file paths, or ``<memory:N>``).
    """

    hu: npt.NDArray[np.float32]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    slice_positions: tuple[float, ...] = ()
    scanner: ScannerInfo = field(default_factory=ScannerInfo)
    series_uid: str = ""
    study_uid: str = ""
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"Volume.hu must be 3-D (z, y, x), got shape {self.hu.shape}")
        if not self.slice_positions:
            dz = self.spacing[0]
            z0 = self.origin[2]
            object.__setattr__(
                self, "slice_positions", tuple(z0 + dz * i for i in range(self.hu.shape[0]))
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)`` number of voxels."""
        z, y, x = self.hu.shape
        return int(z), int(y), int(x)

    @property
    def pixel_size(self) -> tuple[float, float]:
        """In-plane ``(dy, dx)`` in mm."""
        return self.spacing[1], self.spacing[2]

    def slice_index(self, position_mm: float) -> int:
        """Index of the slice nearest to ``position_mm`` along the slice normal."""
        pos = np.asarray(self.slice_positions)
        return int(np.argmin(np.abs(pos - position_mm)))

    def __repr__(self) -> str:
        z, y, x = self.shape
        return (
            f"Volume({z}x{y}x{x}, spacing={tuple(round(s, 3) for s in self.spacing)} mm, "
            f"scanner={self.scanner.key!r}, series={self.series_uid!r})"
        )
