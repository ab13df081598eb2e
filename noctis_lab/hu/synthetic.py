"""Synthetic CT phantom series with known ground truth.

:func:`generate` renders any phantom definition (:func:`noctis_lab.hu.load_phantom`:
CatPhan 503/504/600/604/700, ACR 464, the water cylinder, the CIRS 062M-like
electron-density phantom, or a user file) into a HU :class:`~noctis_lab.dicom.Volume`
and records what an ideal measurement returns in a :class:`GroundTruth`;
:func:`write` stores both as a DICOM series plus ``ground_truth.json``.

Geometry (the contract with the analysis):

* image plane: ``x`` to the right (columns), ``y`` down (rows), millimetres; the
  centre of an ``n x n`` image, pixel ``((n - 1) / 2, (n - 1) / 2)``, is
  ``(0, 0)`` mm; DICOM ImagePositionPatient of pixel ``(0, 0)`` is
  ``(-(n - 1) / 2 * p, -(n - 1) / 2 * p, z)``.
* the phantom centre sits at ``(shift_x, shift_y)``; the reference module's
  centre at ``z = shift_z`` and every other module at ``shift_z + z_offset_mm``.
* a ROI at ``(x, y)`` in the phantom frame appears at
  ``(shift_x, shift_y) + roi.position(roll_deg)``.

Rendering: shapes have area-weighted (supersampled) edges; a slice of thickness
``T`` at ``z`` is the exact average of the phantom over ``[z - T/2, z + T/2]``
(rectangular slice profile), so slices that straddle a module boundary mix the
two. The modules' noiseless images are drawn once and mixed per slice; noise is
added per slice. Miscalibration is applied per material:
``HU = scale * HU_nominal + offset_hu + material_offsets_hu.get(material, 0)``.

>>> from noctis_lab.hu.synthetic import generate
>>> s = generate("catphan604", matrix=256, pixel_size_mm=1.0, noise_sd_hu=5, seed=1)
>>> s.truth.roi("CTP404", "teflon").true_hu
1000.0
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from noctis_lab._errors import ManifestError, NoFilesFoundError, PhantomDefinitionError
from noctis_lab._version import __version__
from noctis_lab.dicom._volume import ScannerInfo, Volume
from noctis_lab.hu import _render as R
from noctis_lab.hu._phantoms import Module, Phantom, load_phantom

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "TRUTH_FILE",
    "GroundTruth",
    "SyntheticSeries",
    "TruthModule",
    "TruthRoi",
    "default_scanner",
    "generate",
    "load_truth",
    "make_series",
    "write",
]

TRUTH_FILE = "ground_truth.json"
TRUTH_SCHEMA = "noctis-synthetic-truth/1"

#: HU of the air around the phantom (before miscalibration).
AIR_HU = -1000.0
#: The CatPhan slice-thickness wire ramps: angle to the axial plane and wire diameter.
RAMP_ANGLE_DEG = 23.0
RAMP_WIRE_MM = 1.0
#: Metal rods drawn when ``metal_streaks`` is on.
METAL_HU = 3000.0
METAL_RADIUS_MM = 1.5
STREAK_HU = 150.0
#: Ring artifacts: how many rings, and their Gaussian half width (mm).
N_RINGS = 4
RING_WIDTH_MM = 0.6
#: Couch: top skin, foam core and bottom skin (thickness mm, HU).
COUCH_LAYERS = ((2.0, 300.0), (36.0, -850.0), (2.0, 300.0))
COUCH_GAP_MM = 1.0

_AIR = -2  # label of air in the z segment list
_BODY = -1  # label of the body between modules

F64 = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class TruthRoi:
    """Where a ROI is and what an ideal measurement of it returns.

    Attributes
    ----------
    module, name, material, role : str
        As in the phantom definition.
    nominal_hu : float or None
        The definition's nominal CT number.
    true_hu : float
        The value drawn in the ROI: ``scale * value + offset + material offset``,
        where ``value`` is the insert's nominal (inserts) or the module background
        (background and uniformity ROIs). DICOM storage rounds to 1 HU.
    relative_electron_density : float or None
        From the definition.
    radius_mm, insert_radius_mm : float
        Measurement radius, and the radius of the physical insert drawn.
    x_mm, y_mm, z_mm : float
        Centre in patient/image coordinates (``z``: the module centre).
    row, col : float
        Fractional pixel position of the centre on every slice.
    slice_index : int or None
        Index (in the written volume) of the slice nearest the module centre.
    """

    module: str
    name: str
    material: str
    role: str
    nominal_hu: float | None
    true_hu: float
    relative_electron_density: float | None
    radius_mm: float
    insert_radius_mm: float
    x_mm: float
    y_mm: float
    z_mm: float
    row: float
    col: float
    slice_index: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TruthRoi:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class TruthModule:
    """A module's place along z and its background.

    ``z_mm`` is the module centre; ``z_start_mm``/``z_end_mm`` the part of the
    phantom where this module is what a slice sees (overlapping definitions are
    split halfway between the module centres). ``centre_slice_index`` is the
    written slice nearest ``z_mm`` (``None`` when no slice lies in the module),
    ``centre_slice_z_mm`` its position and ``centre_slice_pure`` whether that
    slice lies wholly inside the module (no partial volume with a neighbour).
    """

    name: str
    kind: str
    z_mm: float
    z_start_mm: float
    z_end_mm: float
    thickness_mm: float
    background_material: str
    background_nominal_hu: float
    background_true_hu: float
    centre_slice_index: int | None
    centre_slice_z_mm: float | None
    centre_slice_pure: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TruthModule:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


@dataclass(frozen=True)
class GroundTruth:
    """Everything the generator knows about a synthetic series.

    Attributes
    ----------
    phantom, phantom_title : str
        The phantom's name and title.
    parameters : dict
        Every argument of :func:`generate` (JSON-ready; ``scanner`` as a dict).
    scale, offset_hu : float
        Global miscalibration: ``HU = scale * nominal + offset_hu``.
    material_offsets_hu : dict
        Extra offsets per material name.
    shift_mm : (float, float, float)
        Phantom centre ``(x, y)`` and reference-module ``z`` in patient coordinates.
    roll_deg : float
        Phantom roll (clockwise on screen).
    centre_pixel : (float, float)
        ``(row, col)`` of the phantom centre.
    matrix, pixel_size_mm, slice_thickness_mm : int, float, float
        Image geometry; slices are contiguous (spacing = thickness).
    slice_positions_mm : tuple of float
        z of every written slice.
    missing_slices : tuple of int
        Indices, in the full slice grid, of the slices left out.
    missing_slice_positions_mm : tuple of float
        Their z positions.
    modules : tuple of TruthModule
    rois : tuple of TruthRoi
    noise_sd_hu, noise_correlation_mm, blur_mm : float
        Noise SD and Gaussian correlation sigma; in-plane blur sigma (mm).
    artifacts : dict
        Ring radii and amplitude, metal positions, couch.
    rendering : dict
        How the images were drawn (supersampling, slice profile, ramp geometry).
    series_uid, study_uid : str
    scanner : ScannerInfo
    generator : str
        ``noctis-lab <version>``.
    """

    phantom: str
    phantom_title: str
    parameters: dict[str, Any]
    scale: float
    offset_hu: float
    material_offsets_hu: dict[str, float]
    shift_mm: tuple[float, float, float]
    roll_deg: float
    centre_pixel: tuple[float, float]
    matrix: int
    pixel_size_mm: float
    slice_thickness_mm: float
    slice_positions_mm: tuple[float, ...]
    missing_slices: tuple[int, ...]
    missing_slice_positions_mm: tuple[float, ...]
    modules: tuple[TruthModule, ...]
    rois: tuple[TruthRoi, ...]
    noise_sd_hu: float
    noise_correlation_mm: float
    blur_mm: float
    artifacts: dict[str, Any] = field(default_factory=dict)
    rendering: dict[str, Any] = field(default_factory=dict)
    series_uid: str = ""
    study_uid: str = ""
    scanner: ScannerInfo = field(default_factory=ScannerInfo)
    generator: str = f"noctis-lab {__version__}"
    schema: str = TRUTH_SCHEMA

    # ----------------------------------------------------------------- lookups
    def module(self, name: str) -> TruthModule:
        """The module called ``name`` (``KeyError`` naming the choices)."""
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(f"no module {name!r}; the truth has {[m.name for m in self.modules]}")

    def roi(self, module: str, name: str) -> TruthRoi:
        """The ROI ``name`` of ``module`` (``KeyError`` naming the choices)."""
        for r in self.rois:
            if r.module == module and r.name == name:
                return r
        have = [f"{r.module}.{r.name}" for r in self.rois]
        raise KeyError(f"no ROI {module}.{name}; the truth has {have}")

    @property
    def inserts(self) -> tuple[TruthRoi, ...]:
        """The ROIs with role ``insert``."""
        return tuple(r for r in self.rois if r.role == "insert")

    def true_hu(self, nominal_hu: float, material: str | None = None) -> float:
        """The miscalibrated value of a material of ``nominal_hu``."""
        extra = self.material_offsets_hu.get(material, 0.0) if material is not None else 0.0
        return self.scale * nominal_hu + self.offset_hu + extra

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the content of ``ground_truth.json``)."""
        return {
            "schema": self.schema,
            "generator": self.generator,
            "phantom": self.phantom,
            "phantom_title": self.phantom_title,
            "parameters": self.parameters,
            "scale": self.scale,
            "offset_hu": self.offset_hu,
            "material_offsets_hu": dict(self.material_offsets_hu),
            "shift_mm": list(self.shift_mm),
            "roll_deg": self.roll_deg,
            "centre_pixel": list(self.centre_pixel),
            "matrix": self.matrix,
            "pixel_size_mm": self.pixel_size_mm,
            "slice_thickness_mm": self.slice_thickness_mm,
            "slice_positions_mm": list(self.slice_positions_mm),
            "missing_slices": list(self.missing_slices),
            "missing_slice_positions_mm": list(self.missing_slice_positions_mm),
            "modules": [m.to_dict() for m in self.modules],
            "rois": [r.to_dict() for r in self.rois],
            "noise_sd_hu": self.noise_sd_hu,
            "noise_correlation_mm": self.noise_correlation_mm,
            "blur_mm": self.blur_mm,
            "artifacts": self.artifacts,
            "rendering": self.rendering,
            "series_uid": self.series_uid,
            "study_uid": self.study_uid,
            "scanner": self.scanner.to_dict(),
        }

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys, two-space indent, final newline)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ManifestError
            The schema is not ``noctis-synthetic-truth/1`` or a field is missing.
        """
        if data.get("schema") != TRUTH_SCHEMA:
            raise ManifestError(
                f"ground truth schema must be {TRUTH_SCHEMA!r}, got {data.get('schema')!r}"
            )
        try:
            return cls(
                phantom=str(data["phantom"]),
                phantom_title=str(data["phantom_title"]),
                parameters=dict(data["parameters"]),
                scale=float(data["scale"]),
                offset_hu=float(data["offset_hu"]),
                material_offsets_hu={
                    str(k): float(v) for k, v in dict(data["material_offsets_hu"]).items()
                },
                shift_mm=(
                    float(data["shift_mm"][0]),
                    float(data["shift_mm"][1]),
                    float(data["shift_mm"][2]),
                ),
                roll_deg=float(data["roll_deg"]),
                centre_pixel=(float(data["centre_pixel"][0]), float(data["centre_pixel"][1])),
                matrix=int(data["matrix"]),
                pixel_size_mm=float(data["pixel_size_mm"]),
                slice_thickness_mm=float(data["slice_thickness_mm"]),
                slice_positions_mm=tuple(float(v) for v in data["slice_positions_mm"]),
                missing_slices=tuple(int(v) for v in _tuple(data["missing_slices"])),
                missing_slice_positions_mm=tuple(
                    float(v) for v in _tuple(data["missing_slice_positions_mm"])
                ),
                modules=tuple(TruthModule.from_dict(m) for m in data["modules"]),
                rois=tuple(TruthRoi.from_dict(r) for r in data["rois"]),
                noise_sd_hu=float(data["noise_sd_hu"]),
                noise_correlation_mm=float(data["noise_correlation_mm"]),
                blur_mm=float(data["blur_mm"]),
                artifacts=dict(data.get("artifacts", {})),
                rendering=dict(data.get("rendering", {})),
                series_uid=str(data.get("series_uid", "")),
                study_uid=str(data.get("study_uid", "")),
                scanner=ScannerInfo.from_dict(dict(data.get("scanner", {}))),
                generator=str(data.get("generator", "")),
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ManifestError(f"ground truth is malformed: {type(exc).__name__}: {exc}") from None

    def to_dataframe(self) -> pd.DataFrame:
        """One row per ROI."""
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.rois])


def load_truth(folder: str | Path) -> GroundTruth:
    """Read ``ground_truth.json`` from ``folder`` (or from the file itself).

    Raises
    ------
    NoFilesFoundError
        There is no ground-truth file.
    ManifestError
        The file is not valid JSON or not a ground truth.
    """
    path = Path(folder)
    if path.is_dir():
        path = path / TRUTH_FILE
    if not path.is_file():
        raise NoFilesFoundError(f"no ground truth file {path} (write() creates {TRUTH_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"ground truth {path} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if not isinstance(data, dict):
        raise ManifestError(f"ground truth {path} must hold a JSON object")
    try:
        return GroundTruth.from_dict(data)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from None


@dataclass(frozen=True, eq=False)
class SyntheticSeries:
    """A generated series: the HU volume and its ground truth."""

    volume: Volume
    truth: GroundTruth

    def __repr__(self) -> str:
        """The phantom and the volume."""
        return f"SyntheticSeries({self.truth.phantom}, {self.volume!r})"


# --------------------------------------------------------------------------- arguments


def default_scanner() -> ScannerInfo:
    """A plausible synthetic scanner (used when :func:`generate` gets none)."""
    return ScannerInfo(
        manufacturer="Noctis Synthetic",
        model="Phantom Generator",
        station="SYNTH01",
        serial="SYN-0001",
        software_versions=f"noctis-lab {__version__}",
        institution="Noctis Lab",
        kvp=120.0,
        tube_current_ma=200.0,
        convolution_kernel="STANDARD",
    )


DEFAULT_DATETIME = "2026-11-20T08:00:00"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_UID = re.compile(r"^(?=.{1,64}$)(0|[1-9]\d*)(\.(0|[1-9]\d*))+$")


def _finite(name: str, value: Any, *, low: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v <= low if strict else v < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return v


def _integer(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _materials(ph: Phantom) -> set[str]:
    names = {ph.body.material, "Air"}
    for m in ph.modules:
        names.add(m.background_material)
        names.update(r.material for r in m.rois)
    return names


@dataclass(frozen=True)
class _Calibration:
    scale: float
    offset: float
    extra: Mapping[str, float]

    def __call__(self, value: float, material: str | None = None) -> float:
        add = self.extra.get(material, 0.0) if material is not None else 0.0
        return self.scale * value + self.offset + add


def _insert_value(module: Module, roi: Any) -> float:
    if roi.nominal_hu is not None:
        return float(roi.nominal_hu)
    if roi.range_hu is not None:
        return 0.5 * (float(roi.range_hu[0]) + float(roi.range_hu[1]))
    raise PhantomDefinitionError(
        f"insert {module.name}.{roi.name} has neither nominal_hu nor range_hu: the generator "
        "needs a value to draw"
    )


# --------------------------------------------------------------------------- z layout


def _segments(ph: Phantom, shift_z: float) -> list[tuple[float, float, int]]:
    """Phantom z segments ``(z0, z1, label)``: label = module index, or ``_BODY``."""
    lo = [shift_z + m.z_offset_mm - m.thickness_mm / 2 for m in ph.modules]
    hi = [shift_z + m.z_offset_mm + m.thickness_mm / 2 for m in ph.modules]
    centres = [shift_z + m.z_offset_mm for m in ph.modules]
    cuts = set(lo) | set(hi)
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            if lo[i] < hi[j] and lo[j] < hi[i]:  # overlapping definitions: split halfway
                cuts.add(0.5 * (centres[i] + centres[j]))
    edges = sorted(cuts)
    out: list[tuple[float, float, int]] = []
    for a, b in itertools.pairwise(edges):
        mid = 0.5 * (a + b)
        covering = [i for i in range(len(centres)) if lo[i] <= mid <= hi[i]]
        label = min(covering, key=lambda i: (abs(mid - centres[i]), i)) if covering else _BODY
        if out and out[-1][2] == label and abs(out[-1][1] - a) < 1e-9:
            out[-1] = (out[-1][0], b, label)
        else:
            out.append((a, b, label))
    return out


def _extent(ph: Phantom) -> tuple[float, float]:
    """The z extent of the phantom relative to the reference module centre (unshifted)."""
    return (
        min(m.z_offset_mm - m.thickness_mm / 2 for m in ph.modules),
        max(m.z_offset_mm + m.thickness_mm / 2 for m in ph.modules),
    )


def _slice_grid(
    ph: Phantom, thickness: float, n_slices: int | None, z_range: tuple[float, float] | None
) -> list[float]:
    if z_range is not None:
        a, b = z_range
        count = math.floor((b - a) / thickness + 1e-6) + 1
        return [a + k * thickness for k in range(count)]
    lo, hi = _extent(ph)
    if n_slices is not None:
        first = round((lo + hi) / 2 / thickness - (n_slices - 1) / 2)
        return [(first + k) * thickness for k in range(n_slices)]
    margin = max(5.0, 2 * thickness)
    k0 = math.floor((lo - margin) / thickness)
    k1 = math.ceil((hi + margin) / thickness)
    return [k * thickness for k in range(k0, k1 + 1)]


def _weights(
    segments: list[tuple[float, float, int]], z: float, thickness: float
) -> dict[int, float]:
    """Fraction of the slice window ``z +- T/2`` in each segment label (air: the rest)."""
    a, b = z - thickness / 2, z + thickness / 2
    w: dict[int, float] = {}
    for s0, s1, label in segments:
        overlap = min(b, s1) - max(a, s0)
        if overlap > 1e-12:
            w[label] = w.get(label, 0.0) + overlap / thickness
    rest = 1.0 - sum(w.values())
    if rest > 1e-12:
        w[_AIR] = rest
    return w


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class _Setup:
    ph: Phantom
    grid: R.Grid
    cal: _Calibration
    cx: float
    cy: float
    roll: float
    thickness: float
    blur_px: float
    metals: tuple[tuple[float, float], ...]
    couch: bool

    def at(self, distance: float, angle_deg: float) -> tuple[float, float]:
        a = math.radians(angle_deg + self.roll)
        return self.cx + distance * math.cos(a), self.cy + distance * math.sin(a)


def _draw_couch(img: F64, s: _Setup) -> None:
    ax, ay = s.ph.body.half_axes_mm
    _, half_h = R.Ellipse(s.cx, s.cy, ax, ay, s.roll).half_extent()
    top = s.cy + half_h + COUCH_GAP_MM
    width = s.grid.n * s.grid.pixel_mm  # spans the field of view
    for thick, hu in COUCH_LAYERS:
        R.paint(img, s.grid, R.Rect(0.0, top + thick / 2, width, thick / 2), s.cal(hu))
        top += thick


def _render_label(label: int, s: _Setup) -> F64:
    """The noiseless image of a module (``label >= 0``), of the body alone, or of air."""
    n = s.grid.n
    img = np.full((n, n), s.cal(AIR_HU, "Air"), dtype=np.float64)
    if label != _AIR:
        body = s.ph.body
        ax, ay = body.half_axes_mm
        module = s.ph.modules[label] if label >= 0 else None
        inner_hu = (
            s.cal(module.background_hu, module.background_material)
            if module is not None
            else s.cal(body.hu, body.material)
        )
        shell = body.shell_mm if body.shell_hu is not None else 0.0
        if shell > 0:
            assert body.shell_hu is not None
            R.paint(img, s.grid, R.Ellipse(s.cx, s.cy, ax, ay, s.roll), s.cal(body.shell_hu))
        R.paint(img, s.grid, R.Ellipse(s.cx, s.cy, ax - shell, ay - shell, s.roll), inner_hu)
        if module is not None:
            for roi in module.rois:
                if roi.role != "insert":
                    continue
                x, y = roi.position(s.roll)
                radius = roi.reach_mm
                value = s.cal(_insert_value(module, roi), roi.material)
                R.paint(img, s.grid, R.Ellipse(s.cx + x, s.cy + y, radius, radius), value)
            for f in module.features:
                if f.kind == "disk":
                    assert f.radius_mm is not None
                    fx, fy = s.at(f.distance_mm, f.angle_deg)
                    R.paint(img, s.grid, R.Ellipse(fx, fy, f.radius_mm, f.radius_mm), s.cal(f.hu))
                elif f.kind == "line_pairs":
                    assert f.lp_per_cm is not None and f.n_bars is not None
                    assert f.length_mm is not None
                    width = 10.0 / (2.0 * f.lp_per_cm)
                    for k in range(f.n_bars):
                        d = f.distance_mm + (k - (f.n_bars - 1) / 2) * 2 * width
                        bx, by = s.at(d, f.angle_deg)
                        bar = R.Rect(bx, by, width / 2, f.length_mm / 2, f.angle_deg + s.roll)
                        R.paint(img, s.grid, bar, s.cal(f.hu))
        for mx, my in s.metals:
            R.paint(
                img, s.grid, R.Ellipse(mx, my, METAL_RADIUS_MM, METAL_RADIUS_MM), s.cal(METAL_HU)
            )
    if s.couch:
        _draw_couch(img, s)
    if s.blur_px > 0:
        img = R.gaussian_blur(img, s.blur_px)
    return img


def _ramps(z: float, zc: float, module: Module, s: _Setup) -> F64 | None:
    """The wire ramps of ``module`` seen by the slice at ``z`` (additive image), if any."""
    tan = math.tan(math.radians(RAMP_ANGLE_DEG))
    cos = math.cos(math.radians(RAMP_ANGLE_DEG))
    t = s.thickness
    img: F64 | None = None
    bg = s.cal(module.background_hu, module.background_material)
    ramps = [f for f in module.features if f.kind == "ramp"]
    for k, f in enumerate(ramps):
        assert f.length_mm is not None
        sign = 1.0 if k % 2 == 0 else -1.0
        # the wire at in-plane distance u along it sits at z = zc + sign * u * tan
        u0 = (z - t / 2 - zc) / tan * sign
        u1 = (z + t / 2 - zc) / tan * sign
        u0, u1 = max(min(u0, u1), -f.length_mm / 2), min(max(u0, u1), f.length_mm / 2)
        if u1 - u0 <= 1e-9:
            continue
        fraction = min(1.0, RAMP_WIRE_MM / (t * cos))
        cx, cy = s.at(f.distance_mm, f.angle_deg)
        direction = math.radians(f.angle_deg + s.roll + 90.0)
        um = 0.5 * (u0 + u1)
        rect = R.Rect(
            cx + um * math.cos(direction),
            cy + um * math.sin(direction),
            0.5 * (u1 - u0),
            RAMP_WIRE_MM / 2,
            math.degrees(direction),
        )
        if img is None:
            img = np.zeros((s.grid.n, s.grid.n))
        R.add_shape(img, s.grid, rect, (s.cal(f.hu) - bg) * fraction)
    if img is not None and s.blur_px > 0:
        img = R.gaussian_blur(img, s.blur_px)
    return img


def _metal_positions(ph: Phantom, cx: float, cy: float, roll: float) -> list[tuple[float, float]]:
    """Two metal rods beyond every ROI, inside the body, at 45 and 225 degrees."""
    ax, ay = ph.body.half_axes_mm
    inner = min(ax, ay) - (ph.body.shell_mm if ph.body.shell_hu is not None else 0.0)
    reach = 0.0
    for _, r in ph.iter_rois():
        x, y = r.xy_mm
        rad = r.reach_mm
        reach = max(reach, math.hypot(x, y) + rad)
    dist = 0.5 * (reach + inner) if reach < inner - 2 * METAL_RADIUS_MM else 0.9 * inner
    out = []
    for a in (45.0, 225.0):
        t = math.radians(a + roll)
        out.append((cx + dist * math.cos(t), cy + dist * math.sin(t)))
    return out


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def generate(
    phantom: str | Path | Phantom = "catphan604",
    *,
    matrix: int = 512,
    pixel_size_mm: float = 0.5,
    slice_thickness_mm: float = 2.0,
    n_slices: int | None = None,
    z_range_mm: tuple[float, float] | None = None,
    noise_sd_hu: float = 0.0,
    noise_correlation_mm: float = 0.8,
    blur_mm: float = 0.0,
    scale: float = 1.0,
    offset_hu: float = 0.0,
    material_offsets_hu: Mapping[str, float] | None = None,
    shift_mm: Sequence[float] = (0.0, 0.0, 0.0),
    roll_deg: float = 0.0,
    missing_slices: Iterable[int] = (),
    ring_artifact_hu: float = 0.0,
    metal_streaks: bool = False,
    couch: bool = False,
    seed: int = 0,
    scanner: ScannerInfo | None = None,
    acquisition_datetime: str | None = None,
    series_uid: str | None = None,
) -> SyntheticSeries:
    """Render a phantom into a synthetic CT series with its ground truth.

    Parameters
    ----------
    phantom : str, Path or Phantom
        Built-in name (``catphan604``, ``catphan504``, ``acr464``, ``water``,
        ``cirs062m`` ...), a phantom JSON file, or a loaded :class:`Phantom`.
    matrix : int
        Image size ``matrix x matrix``.
    pixel_size_mm : float
        In-plane pixel size; the field of view is ``matrix * pixel_size_mm``.
    slice_thickness_mm : float
        Slice thickness and spacing (contiguous slices, rectangular profile).
    n_slices : int, optional
        Number of slices, centred on the phantom's length (grid aligned so that
        a slice sits at the nominal reference-module centre where possible).
    z_range_mm : (float, float), optional
        First and last slice position instead (step: the thickness). Default
        (neither given): every module plus ``max(5 mm, 2 slices)`` each side.
    noise_sd_hu : float
        Noise standard deviation (exact in expectation).
    noise_correlation_mm : float
        Sigma (mm) of the Gaussian that filters white noise in-plane (0: white).
    blur_mm : float
        Sigma (mm) of the in-plane Gaussian blur of the noiseless image.
    scale, offset_hu : float
        Miscalibration ``HU = scale * nominal + offset_hu``, applied to every
        material, the air around the phantom included.
    material_offsets_hu : mapping, optional
        Extra offset per material name (an insert's ``material``, a module's
        ``background_material``, the body's material, or ``"Air"``).
    shift_mm : (x, y, z)
        Phantom centre ``(x, y)`` from the image centre, and the reference
        module's centre ``z``, mm.
    roll_deg : float
        Phantom roll about its axis, clockwise on screen.
    missing_slices : iterable of int
        Indices into the slice grid to leave out of the series.
    ring_artifact_hu : float
        Amplitude of concentric rings about the isocentre (0: none).
    metal_streaks : bool
        Add two metal rods (beyond every ROI) with streaks.
    couch : bool
        Draw a couch under the phantom on every slice.
    seed : int
        Seeds the noise and artifact layout: equal arguments give equal output.
    scanner : ScannerInfo, optional
        Scanner metadata (default :func:`default_scanner`); its slice thickness
        and acquisition date-time are set from the arguments.
    acquisition_datetime : str, optional
        ``YYYY-MM-DDTHH:MM:SS`` (default: the scanner's, else 2026-11-20T08:00:00).
    series_uid : str, optional
        A valid DICOM UID; default derived from the arguments.

    Returns
    -------
    SyntheticSeries

    Raises
    ------
    PhantomDefinitionError
        Unknown phantom, or the phantom does not fit in the field of view.
    ValueError
        An argument is out of range (the message names it).
    """
    a = _arguments(
        phantom,
        matrix=matrix,
        pixel_size_mm=pixel_size_mm,
        slice_thickness_mm=slice_thickness_mm,
        n_slices=n_slices,
        z_range_mm=z_range_mm,
        noise_sd_hu=noise_sd_hu,
        noise_correlation_mm=noise_correlation_mm,
        blur_mm=blur_mm,
        scale=scale,
        offset_hu=offset_hu,
        material_offsets_hu=material_offsets_hu,
        shift_mm=shift_mm,
        roll_deg=roll_deg,
        ring_artifact_hu=ring_artifact_hu,
        metal_streaks=metal_streaks,
        couch=couch,
        seed=seed,
        scanner=scanner,
        acquisition_datetime=acquisition_datetime,
    )
    positions_all, missing, keep = _slices(a, missing_slices)
    scanner_out = dataclasses.replace(
        a.scanner,
        slice_thickness_mm=a.t,
        acquisition_datetime=a.when,
        series_description=a.scanner.series_description or f"{a.ph.title} (synthetic)",
    )
    params = _parameters(a, phantom, missing, scanner_out, series_uid)
    uid, study_uid = _uids(params, a.ph, series_uid)
    s_noise, s_ring = np.random.SeedSequence(a.seed).spawn(2)
    cal = _Calibration(a.sc, a.off, a.extra)
    metals = tuple(_metal_positions(a.ph, a.sx, a.sy, a.roll)) if a.metal_streaks else ()
    setup = _Setup(
        a.ph, R.Grid(a.n, a.p), cal, a.sx, a.sy, a.roll, a.t, a.blur / a.p, metals, a.couch
    )
    segments = _segments(a.ph, a.sz)
    rings = _ring_radii(a, s_ring)
    hu = _render_slices(a, setup, segments, positions_all, keep, rings, s_noise)
    positions = tuple(float(positions_all[k]) for k in keep)
    x0 = setup.grid.x0
    volume = Volume(
        hu=hu,
        spacing=(a.t, a.p, a.p),
        origin=(x0, x0, positions[0]),
        slice_positions=positions,
        scanner=scanner_out,
        series_uid=uid,
        study_uid=study_uid,
        sources=tuple(f"<memory:{j}>" for j in range(len(keep))),
    )
    modules_truth, roi_truth = _module_truth(a, setup, segments, positions)
    crow, ccol = setup.grid.to_pixel(a.sx, a.sy)
    truth = GroundTruth(
        phantom=a.ph.name,
        phantom_title=a.ph.title,
        parameters=params,
        scale=a.sc,
        offset_hu=a.off,
        material_offsets_hu=dict(sorted(a.extra.items())),
        shift_mm=(a.sx, a.sy, a.sz),
        roll_deg=a.roll,
        centre_pixel=(crow, ccol),
        matrix=a.n,
        pixel_size_mm=a.p,
        slice_thickness_mm=a.t,
        slice_positions_mm=positions,
        missing_slices=tuple(missing),
        missing_slice_positions_mm=tuple(float(positions_all[k]) for k in missing),
        modules=tuple(modules_truth),
        rois=tuple(roi_truth),
        noise_sd_hu=a.noise,
        noise_correlation_mm=a.corr,
        blur_mm=a.blur,
        artifacts=_artifact_truth(a, rings, metals, cal),
        rendering={
            "supersample": R.SUPERSAMPLE,
            "slice_profile": "rectangular",
            "air_hu": cal(AIR_HU, "Air"),
            "ramp_angle_deg": RAMP_ANGLE_DEG,
            "ramp_wire_mm": RAMP_WIRE_MM,
            "blur": "gaussian sigma (mm) of the noiseless image",
            "noise": "white noise filtered by a gaussian of sigma noise_correlation_mm, "
            "rescaled to noise_sd_hu; independent per slice",
            "quantisation": "DICOM stores integers: 1 HU steps",
        },
        series_uid=uid,
        study_uid=study_uid,
        scanner=scanner_out,
    )
    return SyntheticSeries(volume=volume, truth=truth)


@dataclass(frozen=True)
class _Args:
    """The arguments of :func:`generate`, checked."""

    ph: Phantom
    n: int
    p: float
    t: float
    noise: float
    corr: float
    blur: float
    sc: float
    off: float
    roll: float
    ring: float
    seed: int
    metal_streaks: bool
    couch: bool
    sx: float
    sy: float
    sz: float
    extra: dict[str, float]
    n_sl: int | None
    zr: tuple[float, float] | None
    scanner: ScannerInfo
    when: str


def _material_offsets(
    ph: Phantom, material_offsets_hu: Mapping[str, float] | None
) -> dict[str, float]:
    extra: dict[str, float] = {}
    known = _materials(ph)
    for mat, v in dict(material_offsets_hu or {}).items():
        if mat not in known:
            raise ValueError(
                f"material_offsets_hu: phantom {ph.name!r} has no material {mat!r}; its "
                f"materials are {', '.join(sorted(known))}"
            )
        extra[str(mat)] = _finite(f"material_offsets_hu[{mat!r}]", v)
    return extra


def _z_range(
    n_slices: int | None, z_range_mm: tuple[float, float] | None
) -> tuple[int | None, tuple[float, float] | None]:
    if n_slices is not None and z_range_mm is not None:
        raise ValueError("give n_slices or z_range_mm, not both")
    n_sl = None if n_slices is None else _integer("n_slices", n_slices, 1)
    if z_range_mm is None:
        return n_sl, None
    if len(tuple(z_range_mm)) != 2:
        raise ValueError(f"z_range_mm must be (first, last) in mm, got {z_range_mm!r}")
    za = _finite("z_range_mm[0]", z_range_mm[0])
    zb = _finite("z_range_mm[1]", z_range_mm[1])
    if zb < za:
        raise ValueError(f"z_range_mm: last {zb} is below first {za}")
    return n_sl, (za, zb)


def _check_fit(ph: Phantom, n: int, p: float, sx: float, sy: float, roll: float) -> None:
    body = ph.body
    if body.shell_hu is not None and body.shell_mm >= min(body.half_axes_mm):
        raise PhantomDefinitionError(
            f"phantom {ph.name!r}: shell {body.shell_mm} mm is thicker than the body radius"
        )
    hx, hy = R.Ellipse(sx, sy, *body.half_axes_mm, roll).half_extent()
    half_fov = n * p / 2
    if abs(sx) + hx > half_fov or abs(sy) + hy > half_fov:
        raise PhantomDefinitionError(
            f"phantom {ph.name!r} ({2 * hx:.0f} x {2 * hy:.0f} mm, centre shifted "
            f"{sx:g}, {sy:g} mm) does not fit in the {n * p:g} mm field of view "
            f"({n} x {p:g} mm): use a larger matrix or pixel size, or a smaller shift"
        )


def _arguments(phantom: str | Path | Phantom, **kw: Any) -> _Args:
    """Check every argument of :func:`generate`; the error names the one that is wrong."""
    ph = load_phantom(phantom)
    for flag in ("metal_streaks", "couch"):
        if not isinstance(kw[flag], bool):
            raise ValueError(f"{flag} must be True or False, got {kw[flag]!r}")
    shift = tuple(kw["shift_mm"])
    if len(shift) != 3:
        raise ValueError(f"shift_mm must be (x, y, z) in mm, got {kw['shift_mm']!r}")
    sx, sy, sz = (_finite(f"shift_mm[{i}]", v) for i, v in enumerate(shift))
    n_sl, zr = _z_range(kw["n_slices"], kw["z_range_mm"])
    n = _integer("matrix", kw["matrix"], 16)
    p = _finite("pixel_size_mm", kw["pixel_size_mm"], low=0.0, strict=True)
    roll = _finite("roll_deg", kw["roll_deg"])
    _check_fit(ph, n, p, sx, sy, roll)
    scanner_in = kw["scanner"] if kw["scanner"] is not None else default_scanner()
    if not isinstance(scanner_in, ScannerInfo):
        raise ValueError(f"scanner must be a ScannerInfo, got {type(scanner_in).__name__}")
    when = kw["acquisition_datetime"] or scanner_in.acquisition_datetime or DEFAULT_DATETIME
    if not _ISO.match(when):
        raise ValueError(f"acquisition_datetime must be YYYY-MM-DDTHH:MM:SS, got {when!r}")
    return _Args(
        ph=ph,
        n=n,
        p=p,
        t=_finite("slice_thickness_mm", kw["slice_thickness_mm"], low=0.0, strict=True),
        noise=_finite("noise_sd_hu", kw["noise_sd_hu"], low=0.0),
        corr=_finite("noise_correlation_mm", kw["noise_correlation_mm"], low=0.0),
        blur=_finite("blur_mm", kw["blur_mm"], low=0.0),
        sc=_finite("scale", kw["scale"], low=0.0, strict=True),
        off=_finite("offset_hu", kw["offset_hu"]),
        roll=roll,
        ring=_finite("ring_artifact_hu", kw["ring_artifact_hu"], low=0.0),
        seed=_integer("seed", kw["seed"], 0),
        metal_streaks=kw["metal_streaks"],
        couch=kw["couch"],
        sx=sx,
        sy=sy,
        sz=sz,
        extra=_material_offsets(ph, kw["material_offsets_hu"]),
        n_sl=n_sl,
        zr=zr,
        scanner=scanner_in,
        when=when,
    )


def _slices(a: _Args, missing_slices: Iterable[int]) -> tuple[list[float], list[int], list[int]]:
    """The slice grid, the indices left out and the indices kept."""
    positions_all = _slice_grid(a.ph, a.t, a.n_sl, a.zr)
    missing = sorted({_integer("missing_slices item", i, 0) for i in missing_slices})
    if missing and missing[-1] >= len(positions_all):
        raise ValueError(
            f"missing_slices: index {missing[-1]} is beyond the {len(positions_all)} slices "
            "of the series (indices start at 0)"
        )
    if len(missing) >= len(positions_all):
        raise ValueError("missing_slices removes every slice of the series")
    gone = set(missing)
    return positions_all, missing, [k for k in range(len(positions_all)) if k not in gone]


def _parameters(
    a: _Args,
    phantom: str | Path | Phantom,
    missing: list[int],
    scanner_out: ScannerInfo,
    series_uid: str | None,
) -> dict[str, Any]:
    """The arguments as recorded in the ground truth (and hashed into the UIDs)."""
    text = str(phantom) if not isinstance(phantom, Phantom) else ""
    from_file = isinstance(phantom, Path) or text.endswith(".json") or "/" in text
    return {
        "phantom": text if from_file else a.ph.name,
        "matrix": a.n,
        "pixel_size_mm": a.p,
        "slice_thickness_mm": a.t,
        "n_slices": a.n_sl,
        "z_range_mm": list(a.zr) if a.zr is not None else None,
        "noise_sd_hu": a.noise,
        "noise_correlation_mm": a.corr,
        "blur_mm": a.blur,
        "scale": a.sc,
        "offset_hu": a.off,
        "material_offsets_hu": dict(sorted(a.extra.items())),
        "shift_mm": [a.sx, a.sy, a.sz],
        "roll_deg": a.roll,
        "missing_slices": missing,
        "ring_artifact_hu": a.ring,
        "metal_streaks": a.metal_streaks,
        "couch": a.couch,
        "seed": a.seed,
        "scanner": scanner_out.to_dict(),
        "acquisition_datetime": a.when,
        "series_uid": series_uid,
    }


def _uids(params: dict[str, Any], ph: Phantom, series_uid: str | None) -> tuple[str, str]:
    """Series and study UIDs: the caller's series UID, else derived from the arguments."""
    from pydicom.uid import generate_uid

    digest = hashlib.sha256(_canonical([params, ph.to_dict()]).encode()).hexdigest()
    if series_uid is None:
        uid = str(generate_uid(entropy_srcs=[digest, "series"]))
    else:
        if not _UID.match(str(series_uid)):
            raise ValueError(f"series_uid {series_uid!r} is not a valid DICOM UID")
        uid = str(series_uid)
    return uid, str(generate_uid(entropy_srcs=[digest, uid, "study"]))


def _ring_radii(a: _Args, s_ring: np.random.SeedSequence) -> list[float]:
    if a.ring <= 0:
        return []
    rrng = np.random.default_rng(s_ring)
    ax_min = min(a.ph.body.half_axes_mm)
    return sorted(float(v) for v in rrng.uniform(10.0, 0.9 * ax_min, N_RINGS))


def _render_slices(
    a: _Args,
    setup: _Setup,
    segments: list[tuple[float, float, int]],
    positions_all: list[float],
    keep: list[int],
    rings: list[float],
    s_noise: np.random.SeedSequence,
) -> npt.NDArray[np.float32]:
    """Noiseless slices (cached label images mixed by z weights), artifacts, then noise."""
    grid, n, ph = setup.grid, a.n, a.ph
    weights = [_weights(segments, positions_all[k], a.t) for k in keep]
    cache: dict[int, F64] = {}
    for w in weights:
        for label in w:
            if label not in cache:
                cache[label] = _render_label(label, setup)
    ring_img = R.ring_pattern(grid, rings, a.ring, RING_WIDTH_MM) if rings else None
    streak_img: F64 | None = None
    if setup.metals:
        streak_img = R.streak_pattern(
            grid, list(setup.metals), STREAK_HU * a.sc, 9, 0.3, 60.0, METAL_RADIUS_MM
        )
    noise_seeds = s_noise.spawn(len(positions_all))
    hu = np.empty((len(keep), n, n), dtype=np.float32)
    corr_px = a.corr / a.p
    for j, (k, w) in enumerate(zip(keep, weights, strict=True)):
        z = positions_all[k]
        labels = sorted(w)
        if len(labels) == 1:
            acc = cache[labels[0]]  # never modified in place below
        else:
            acc = np.zeros((n, n))
            for label in labels:
                acc += w[label] * cache[label]
        for label in labels:
            if label >= 0 and any(f.kind == "ramp" for f in ph.modules[label].features):
                ramp = _ramps(z, a.sz + ph.modules[label].z_offset_mm, ph.modules[label], setup)
                if ramp is not None:
                    acc = acc + ramp
        if ring_img is not None:
            acc = acc + ring_img
        if streak_img is not None:
            in_phantom = 1.0 - w.get(_AIR, 0.0)
            if in_phantom > 0:
                acc = acc + in_phantom * streak_img
        hu[j] = acc
        if a.noise > 0:
            rng = np.random.default_rng(noise_seeds[k])
            hu[j] += R.correlated_noise(rng, n, a.noise, corr_px)
    return hu


def _module_truth(
    a: _Args,
    setup: _Setup,
    segments: list[tuple[float, float, int]],
    positions: tuple[float, ...],
) -> tuple[list[TruthModule], list[TruthRoi]]:
    """Where each module and ROI is, and what each should read."""
    cal, grid, t = setup.cal, setup.grid, a.t
    pos_arr = np.asarray(positions)
    modules_truth: list[TruthModule] = []
    roi_truth: list[TruthRoi] = []
    for idx, m in enumerate(a.ph.modules):
        zc = a.sz + m.z_offset_mm
        parts = [(lo, hi) for lo, hi, lab in segments if lab == idx]
        z0 = min(lo for lo, _ in parts) if parts else zc
        z1 = max(hi for _, hi in parts) if parts else zc
        within = np.flatnonzero((pos_arr >= z0 - 1e-9) & (pos_arr <= z1 + 1e-9))
        cidx: int | None = None
        cz: float | None = None
        pure = False
        if within.size:
            cidx = int(within[np.argmin(np.abs(pos_arr[within] - zc))])
            cz = float(pos_arr[cidx])
            pure = bool(cz - t / 2 >= z0 - 1e-9 and cz + t / 2 <= z1 + 1e-9)
        bg_true = cal(m.background_hu, m.background_material)
        modules_truth.append(
            TruthModule(
                name=m.name,
                kind=m.kind,
                z_mm=zc,
                z_start_mm=z0,
                z_end_mm=z1,
                thickness_mm=m.thickness_mm,
                background_material=m.background_material,
                background_nominal_hu=m.background_hu,
                background_true_hu=bg_true,
                centre_slice_index=cidx,
                centre_slice_z_mm=cz,
                centre_slice_pure=pure,
            )
        )
        for roi in m.rois:
            rx, ry = roi.position(a.roll)
            x, y = a.sx + rx, a.sy + ry
            row, col = grid.to_pixel(x, y)
            true = cal(_insert_value(m, roi), roi.material) if roi.role == "insert" else bg_true
            roi_truth.append(
                TruthRoi(
                    module=m.name,
                    name=roi.name,
                    material=roi.material,
                    role=roi.role,
                    nominal_hu=roi.nominal_hu,
                    true_hu=true,
                    relative_electron_density=roi.relative_electron_density,
                    radius_mm=roi.radius_mm,
                    insert_radius_mm=roi.reach_mm,
                    x_mm=x,
                    y_mm=y,
                    z_mm=zc,
                    row=row,
                    col=col,
                    slice_index=cidx,
                )
            )
    return modules_truth, roi_truth


def _artifact_truth(
    a: _Args,
    rings: list[float],
    metals: tuple[tuple[float, float], ...],
    cal: _Calibration,
) -> dict[str, Any]:
    return {
        "ring_artifact_hu": a.ring,
        "ring_radii_mm": rings,
        "ring_width_mm": RING_WIDTH_MM if rings else None,
        "metal_streaks": a.metal_streaks,
        "metal_positions_mm": [list(mp) for mp in metals],
        "metal_radius_mm": METAL_RADIUS_MM if metals else None,
        "metal_hu": cal(METAL_HU) if metals else None,
        "couch": a.couch,
    }


# --------------------------------------------------------------------------- writing


def write(series: SyntheticSeries, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write the series as DICOM (``CT00000.dcm`` ...) plus ``ground_truth.json``.

    Parameters
    ----------
    series : SyntheticSeries
    folder : path
        Created if needed.
    overwrite : bool
        Replace an earlier series in ``folder`` (only ``CT*.dcm`` and
        ``ground_truth.json`` are removed; other files are left alone).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    FileExistsError
        ``folder`` already holds a series and ``overwrite`` is false.
    """
    from noctis_lab.dicom import write_series

    out = Path(folder)
    ours = sorted(out.glob("CT*.dcm")) + ([out / TRUTH_FILE] if (out / TRUTH_FILE).exists() else [])
    if ours:
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds a series ({len(ours)} files); pass overwrite=True "
                "to replace it"
            )
        for f in ours:
            f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Z0-9]+", "", series.truth.phantom.upper()) or "PHANTOM"
    write_series(series.volume, out, patient_name=f"NOCTIS^{name}")
    (out / TRUTH_FILE).write_text(series.truth.to_json(), encoding="utf-8")
    return out


def make_series(
    folder: str | Path,
    phantom: str | Path | Phantom = "catphan604",
    *,
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """:func:`generate` then :func:`write`; returns the folder.

    Parameters
    ----------
    folder : str or Path
        Where the series is written.
    phantom : str, Path or Phantom
        The phantom drawn.
    overwrite : bool
        Replace a series already in ``folder``.
    **kwargs
        Passed to :func:`generate`.
    """
    return write(generate(phantom, **kwargs), folder, overwrite=overwrite)
