"""The result of one HU phantom analysis: typed, frozen, serialisable.

:class:`CalibrationResult` is what :func:`noctis_lab.hu.analyze` returns and what
the calibration history stores. Every piece is a frozen dataclass with
``to_dict()`` / ``from_dict()``; the whole result also has ``to_json()``,
``to_dataframe()`` (one row per ROI) and ``checks_dataframe()`` (one row per check),
and draws itself (``plot_slice(volume)``, ``plot_linearity()``).

Statuses are ``"pass"``, ``"warning"`` (within tolerance but beyond the profile's
warning fraction of it), ``"fail"`` and ``"review"`` ("needs review": the phantom was
found with doubts, so no verdict is given on the scanner until a physicist has looked
at the ROI overlay). A ROI that no criterion judged has status ``"not_checked"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from noctis_lab.dicom._volume import ScannerInfo
from noctis_lab.hu._kinds import CheckKind, LocalisationMethod, RoiRole
from noctis_lab.quality import Status
from noctis_lab.quality import worst_status as _worst_status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from noctis_lab.dicom._volume import Volume

__all__ = [
    "CalibrationResult",
    "Check",
    "EdPoint",
    "Linearity",
    "Localisation",
    "RoiMeasurement",
    "Status",
    "Uniformity",
    "worst_status",
]

#: The status vocabulary is the one of :mod:`noctis_lab.quality` (re-exported here):
#: checks and results are ``pass``, ``warning``, ``fail`` or ``review``; a ROI no
#: criterion judged is ``not_checked``.
RoiStatus = Status


def worst_status(statuses: Iterable[Status | str | None]) -> Status:
    """The worst of several statuses (``review`` > ``fail`` > ``warning`` > ``pass``).

    :func:`noctis_lab.quality.worst_status` with the HU default: ``pass`` if there are
    none; ``not_checked`` adds no verdict. ``review`` ranks first: a doubtful
    localisation leaves every other verdict unconfirmed.

    Parameters
    ----------
    statuses : iterable of Status or str
        The statuses to combine.

    Returns
    -------
    Status
        The worst of them.
    """
    return _worst_status(statuses, default=Status.PASS)


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become ``None``, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _fields(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Field name -> value of a dataclass, one level deep (``names``: its fields).

    What ``dataclasses.asdict`` gives for dataclasses whose fields are scalars (the
    callers convert their tuples and dicts themselves), without its recursive deep
    copy, which cost milliseconds per result.
    """
    return {n: getattr(obj, n) for n in names}


@dataclass(frozen=True)
class RoiMeasurement:
    """Statistics of one ROI, pooled over the usable slices of its module.

    Attributes
    ----------
    module, name, material : str
        Where the ROI is (module and ROI name from the phantom file) and its material.
    role : RoiRole
        ``insert``, ``background``, ``uniformity_centre`` or ``uniformity_edge``.
    nominal_hu : float or None
        The phantom's nominal CT number for the material.
    mean, median, sd : float
        Pixel statistics over all pixels of the ROI in all usable slices (HU).
    sem : float
        Standard error of ``mean``, honest about correlated noise: the larger of the
        spread of the per-slice means divided by sqrt(n_slices) and the pixel SD
        divided by the square root of the number of *independent* samples, estimated
        from the noise autocorrelation (see ``noctis_lab.hu._measure``).
    n_pixels, n_slices : int
        Pixels (all slices together) and slices used.
    x_mm, y_mm : float
        ROI centre in the image, mm from the image's first pixel centre (column, row).
    radius_mm : float
        ROI radius, mm.
    deviation : float or None
        ``mean - nominal_hu`` (None without a nominal).
    status : Status
        The worst status of the checks that judged this ROI, or ``not_checked``.
    range_hu : tuple of float or None
        The phantom maker's acceptable range for the material.
    relative_electron_density : float or None
        Electron density relative to water, where the phantom file gives it.
    cnr : float or None
        Contrast-to-noise ratio against the module's background ROI:
        ``|mean - background mean| / background SD``.
    """

    module: str
    name: str
    material: str
    role: RoiRole
    nominal_hu: float | None
    mean: float
    median: float
    sd: float
    sem: float
    n_pixels: int
    n_slices: int
    x_mm: float
    y_mm: float
    radius_mm: float
    deviation: float | None
    status: RoiStatus = Status.NOT_CHECKED
    range_hu: tuple[float, float] | None = None
    relative_electron_density: float | None = None
    cnr: float | None = None

    def __post_init__(self) -> None:
        """Keep the status and role enum members, whatever text they were given as."""
        object.__setattr__(self, "status", Status.parse(self.status))
        object.__setattr__(self, "role", RoiRole(self.role))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; ``nominal`` repeats ``nominal_hu`` for short readers."""
        d = _fields(self, _ROI_FIELDS)
        d["status"] = self.status.value
        d["role"] = self.role.value
        d["range_hu"] = list(self.range_hu) if self.range_hu is not None else None
        d["nominal"] = self.nominal_hu
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoiMeasurement:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = set(_ROI_FIELDS)
        d = {k: v for k, v in data.items() if k in names}
        rng = d.get("range_hu")
        d["range_hu"] = (float(rng[0]), float(rng[1])) if rng is not None else None
        for k in ("mean", "median", "sd", "sem", "x_mm", "y_mm", "radius_mm"):
            d[k] = float(d[k]) if d.get(k) is not None else math.nan
        for k in ("nominal_hu", "deviation", "relative_electron_density", "cnr"):
            d[k] = _opt_float(d.get(k))
        d["n_pixels"] = int(d["n_pixels"])
        d["n_slices"] = int(d["n_slices"])
        return cls(**d)


@dataclass(frozen=True)
class Check:
    """One criterion of a tolerance profile applied to one measurement.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``"hu.CTP404.air_top"`` or ``"noise"``.
    kind : CheckKind
        ``hu`` (a CT number), ``uniformity``, ``noise``, ``linearity_slope``,
        ``linearity_deviation``, ``constancy_hu``, ``constancy_noise``, ``localisation`` ...
    target : str
        What was judged (``"CTP404/air_top (Air)"``).
    measured, expected : float or None
        The measured value and the value aimed at.
    low, high : float or None
        The accepted interval for ``measured`` (either side may be open).
    deviation : float or None
        ``measured - expected``.
    unit : str
        ``HU``, ``%``, ``ratio`` ...
    status : Status
        ``pass``, ``warning``, ``fail`` or ``review``.
    tolerance : str
        The criterion in words (``"0 ± 5 HU"``).
    source : str
        The citation: ``"<id>: <text>"``.
    module, roi, material : str or None
        The ROI judged (its module, name and material), for checks of one ROI; None
        for checks of the whole series (noise, linearity, localisation).
    """

    id: str
    kind: CheckKind
    target: str
    measured: float | None
    expected: float | None
    low: float | None
    high: float | None
    deviation: float | None
    unit: str
    status: Status
    tolerance: str
    source: str
    module: str | None = None
    roi: str | None = None
    material: str | None = None

    def __post_init__(self) -> None:
        """Keep the status and kind enum members, whatever text they were given as."""
        object.__setattr__(self, "status", Status.parse(self.status))
        object.__setattr__(self, "kind", CheckKind(self.kind))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = _fields(self, _CHECK_FIELDS)
        d["status"] = self.status.value
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = set(_CHECK_FIELDS)
        d = {k: v for k, v in data.items() if k in names}
        for k in ("measured", "expected", "low", "high", "deviation"):
            d[k] = _opt_float(d.get(k))
        return cls(**d)


@dataclass(frozen=True)
class Linearity:
    """CT-number linearity: least-squares fit of measured mean HU against nominal HU.

    ``max_deviation_hu`` is the largest ``|measured - fit|``; ``max_deviation_pct``
    is it as a percentage of the nominal span (max nominal - min nominal).
    """

    slope: float
    intercept: float
    r_squared: float
    max_deviation_hu: float
    max_deviation_pct: float
    max_deviation_material: str
    nominal_span_hu: float
    materials: tuple[str, ...]
    nominal_hu: tuple[float, ...]
    measured_hu: tuple[float, ...]
    sem_hu: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = _fields(self, _LINEARITY_FIELDS)
        for k in ("materials", "nominal_hu", "measured_hu", "sem_hu"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Linearity:
        """Inverse of :meth:`to_dict`."""
        names = set(_LINEARITY_FIELDS)
        d = {k: v for k, v in data.items() if k in names}
        d["materials"] = tuple(str(m) for m in d.get("materials", ()))
        for k in ("nominal_hu", "measured_hu", "sem_hu"):
            d[k] = tuple(float(v) for v in d.get(k, ()))
        return cls(**d)


@dataclass(frozen=True)
class Uniformity:
    """Centre vs edge ROIs of a uniform module.

    ``max_difference_hu`` is the edge ROI mean furthest from the centre mean, minus
    the centre mean (signed); ``integral_uniformity_pct`` is
    ``100 * (max - min) / (max + min + 2000)`` over the ROI means (shifted to
    attenuation scale so water is 1000).
    """

    module: str
    centre_hu: float
    edges_hu: dict[str, float]
    max_difference_hu: float
    max_difference_roi: str
    integral_uniformity_pct: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = _fields(self, _UNIFORMITY_FIELDS)
        d["edges_hu"] = dict(self.edges_hu)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Uniformity:
        """Inverse of :meth:`to_dict`."""
        names = set(_UNIFORMITY_FIELDS)
        d = {k: v for k, v in data.items() if k in names}
        d["edges_hu"] = {str(k): float(v) for k, v in d["edges_hu"].items()}
        return cls(**d)


@dataclass(frozen=True)
class EdPoint:
    """One point of the HU to relative-electron-density curve."""

    material: str
    relative_electron_density: float
    mean_hu: float
    sem_hu: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return _fields(self, _ED_FIELDS)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdPoint:
        """Inverse of :meth:`to_dict`."""
        names = set(_ED_FIELDS)
        return cls(**{k: v for k, v in data.items() if k in names})


# the field names, once: to_dict / from_dict run for every result the history writes
_ROI_FIELDS = _field_names(RoiMeasurement)
_CHECK_FIELDS = _field_names(Check)
_LINEARITY_FIELDS = _field_names(Linearity)
_UNIFORMITY_FIELDS = _field_names(Uniformity)
_ED_FIELDS = _field_names(EdPoint)


@dataclass(frozen=True)
class Localisation:
    """Where the phantom was found, how, and how sure.

    Attributes
    ----------
    method : LocalisationMethod
        ``auto``, ``manual`` or ``mixed`` (some values overridden by the caller).
    reference_slice : int
        Index of the central slice of the reference module.
    reference_z_mm : float
        Its position along the slice normal, mm.
    centre_px : tuple of float
        Phantom centre ``(x, y)`` in pixels (column, row) on the reference slice.
    centre_spread_px : float
        Median absolute deviation of the per-slice centres, pixels (tilt/robustness).
    roll_deg : float
        Phantom roll (a ROI at angle ``a`` appears at ``a + roll_deg``).
    module_slices : dict
        Module name -> indices of the slices measured.
    score : float
        Localisation score of the reference module: correlation between sampled and
        nominal insert values at the chosen roll (1 is perfect), NaN when not scored.
    notes : tuple of str
        What was looked for, what was found, and any doubts.
    """

    method: LocalisationMethod
    reference_slice: int
    reference_z_mm: float
    centre_px: tuple[float, float]
    centre_spread_px: float
    roll_deg: float
    module_slices: dict[str, tuple[int, ...]]
    score: float
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Keep the method an enum member, whatever text it was given as."""
        object.__setattr__(self, "method", LocalisationMethod(self.method))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "method": self.method.value,
            "reference_slice": self.reference_slice,
            "reference_z_mm": self.reference_z_mm,
            "centre_px": list(self.centre_px),
            "centre_spread_px": self.centre_spread_px,
            "roll_deg": self.roll_deg,
            "module_slices": {k: list(v) for k, v in self.module_slices.items()},
            "score": self.score,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Localisation:
        """Inverse of :meth:`to_dict`."""
        cx, cy = data["centre_px"]
        score = data.get("score")
        return cls(
            method=LocalisationMethod(data["method"]),
            reference_slice=int(data["reference_slice"]),
            reference_z_mm=float(data["reference_z_mm"]),
            centre_px=(float(cx), float(cy)),
            centre_spread_px=float(data.get("centre_spread_px") or 0.0),
            roll_deg=float(data["roll_deg"]),
            module_slices={
                str(k): tuple(int(i) for i in v) for k, v in data["module_slices"].items()
            },
            score=math.nan if score is None else float(score),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CalibrationResult:
    """The verdict of one HU phantom analysis.

    Attributes
    ----------
    id : str
        uuid4 hex, unique per analysis.
    analysed_at : str
        ISO 8601 UTC time of the analysis.
    phantom, phantom_title : str
        Phantom name (``catphan604``) and title.
    profile, profile_version : str
        The tolerance profile used and its version.
    scanner : ScannerInfo
        Scanner metadata from the DICOM.
    acquisition_datetime : str
        From the DICOM (may be empty).
    series_uid : str
        SeriesInstanceUID.
    study_uid : str
        StudyInstanceUID (study links in chat rooms and reports open it).
    status : Status
        Overall ``pass`` / ``warning`` / ``fail`` / ``review``: the worst of :attr:`checks`.
    rois : tuple of RoiMeasurement
    checks : tuple of Check
    linearity : Linearity or None
    uniformity : Uniformity or None
    noise_hu : float or None
        Noise (SD, HU) in the uniformity centre ROI, or in the water / background ROI.
    electron_density : tuple of EdPoint or None
        The HU to relative-electron-density curve, where the phantom gives densities.
    localisation : Localisation
    recommendations : tuple of str
        Plain-language advice tied to the pattern of failures.
    source : str
        Path of the series or a description of the in-memory volume.
    """

    phantom: str
    phantom_title: str
    profile: str
    profile_version: str
    scanner: ScannerInfo
    acquisition_datetime: str
    series_uid: str
    status: Status
    rois: tuple[RoiMeasurement, ...]
    checks: tuple[Check, ...]
    linearity: Linearity | None
    uniformity: Uniformity | None
    noise_hu: float | None
    electron_density: tuple[EdPoint, ...] | None
    localisation: Localisation
    recommendations: tuple[str, ...]
    source: str
    id: str = field(default_factory=_new_id)
    analysed_at: str = field(default_factory=_now)
    study_uid: str = ""

    def __post_init__(self) -> None:
        """Keep the status an enum member, whatever text it was given as."""
        object.__setattr__(self, "status", Status.parse(self.status))

    # -- look-ups -----------------------------------------------------------
    def roi(self, name: str, module: str | None = None) -> RoiMeasurement:
        """The measurement of ROI ``name`` (optionally in ``module``)."""
        for r in self.rois:
            if r.name == name and (module is None or r.module == module):
                return r
        raise KeyError(f"no ROI {name!r} in this result; ROIs: {[r.name for r in self.rois]}")

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        """The checks with status ``fail``."""
        return tuple(c for c in self.checks if c.status == "fail")

    # -- serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the shape printed by ``noctis-lab hu analyze --json``)."""
        return {
            "id": self.id,
            "analysed_at": self.analysed_at,
            "status": self.status.value,
            "phantom": self.phantom,
            "phantom_title": self.phantom_title,
            "profile": self.profile,
            "profile_version": self.profile_version,
            "scanner": self.scanner.to_dict(),
            "acquisition_datetime": self.acquisition_datetime,
            "series_uid": self.series_uid,
            "study_uid": self.study_uid,
            "source": self.source,
            "rois": [r.to_dict() for r in self.rois],
            "checks": [c.to_dict() for c in self.checks],
            "linearity": self.linearity.to_dict() if self.linearity is not None else None,
            "uniformity": self.uniformity.to_dict() if self.uniformity is not None else None,
            "noise_hu": self.noise_hu,
            "electron_density": (
                [p.to_dict() for p in self.electron_density]
                if self.electron_density is not None
                else None
            ),
            "localisation": self.localisation.to_dict(),
            "recommendations": list(self.recommendations),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationResult:
        """Inverse of :meth:`to_dict`."""
        lin = data.get("linearity")
        uni = data.get("uniformity")
        ed = data.get("electron_density")
        noise = data.get("noise_hu")
        return cls(
            id=str(data["id"]),
            analysed_at=str(data["analysed_at"]),
            phantom=str(data["phantom"]),
            phantom_title=str(data.get("phantom_title", data["phantom"])),
            profile=str(data["profile"]),
            profile_version=str(data["profile_version"]),
            scanner=ScannerInfo.from_dict(dict(data.get("scanner") or {})),
            acquisition_datetime=str(data.get("acquisition_datetime") or ""),
            series_uid=str(data.get("series_uid") or ""),
            study_uid=str(data.get("study_uid") or ""),
            status=Status.parse(data["status"]),
            rois=tuple(RoiMeasurement.from_dict(r) for r in data.get("rois", ())),
            checks=tuple(Check.from_dict(c) for c in data.get("checks", ())),
            linearity=Linearity.from_dict(lin) if lin is not None else None,
            uniformity=Uniformity.from_dict(uni) if uni is not None else None,
            noise_hu=None if noise is None else float(noise),
            electron_density=(tuple(EdPoint.from_dict(p) for p in ed) if ed is not None else None),
            localisation=Localisation.from_dict(data["localisation"]),
            recommendations=tuple(str(s) for s in data.get("recommendations", ())),
            source=str(data.get("source") or ""),
        )

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text (non-finite numbers written as ``null``)."""
        return json.dumps(_clean(self.to_dict()), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> CalibrationResult:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_dataframe(self) -> pd.DataFrame:
        """One row per ROI measurement."""
        import pandas as pd

        rows = []
        for r in self.rois:
            d = r.to_dict()
            d.pop("nominal", None)
            rows.append(d)
        cols = [f.name for f in dataclasses.fields(RoiMeasurement)]
        return pd.DataFrame(rows, columns=cols)

    def checks_dataframe(self) -> pd.DataFrame:
        """One row per check."""
        import pandas as pd

        cols = [f.name for f in dataclasses.fields(Check)]
        return pd.DataFrame([c.to_dict() for c in self.checks], columns=cols)

    # -- plots -----------------------------------------------------------------
    def plot_slice(self, volume: Volume, module: str | None = None, ax: Any = None) -> Figure:
        """An axial slice of ``module`` with its ROIs drawn and coloured by status."""
        from noctis_lab.hu._plot import plot_slice

        return plot_slice(self, volume, module=module, ax=ax)

    def plot_linearity(self, ax: Any = None) -> Figure:
        """Measured vs nominal HU with the fit, the identity line and tolerance bands."""
        from noctis_lab.hu._plot import plot_linearity

        return plot_linearity(self, ax=ax)

    def __repr__(self) -> str:
        n_fail = len(self.failed_checks)
        return (
            f"CalibrationResult({self.phantom}, profile={self.profile} v{self.profile_version}, "
            f"status={self.status}, {len(self.rois)} ROIs, {len(self.checks)} checks, "
            f"{n_fail} failed, scanner={self.scanner.key!r})"
        )
