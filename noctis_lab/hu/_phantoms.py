"""Phantom definitions: validated data files with their sources.

A phantom file (JSON) describes the phantom's body and its modules along z. Each
module holds regions of interest (ROIs) in the *phantom frame*: millimetres from
the phantom centre, ``x`` to the image right and ``y`` to the image bottom (so an
angle of -90 degrees is the top of the image, as pylinac writes it). A ROI may be
given in polar form (``distance_mm`` + ``angle_deg``) or Cartesian (``x_mm`` +
``y_mm``); both are stored. A phantom rolled by ``roll_deg`` shows a ROI of angle
``a`` at angle ``a + roll_deg``.

Built-in phantoms live in ``noctis_lab/hu/data/phantoms/``; a user adds their own
with :func:`load_phantom`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from noctis_lab._errors import PhantomDefinitionError
from noctis_lab.hu._datafile import builtin_dir, builtin_names, parse_data_file
from noctis_lab.hu._kinds import RoiRole

__all__ = [
    "Feature",
    "Module",
    "Phantom",
    "Roi",
    "RoiRole",
    "Source",
    "list_phantoms",
    "load_phantom",
]

SCHEMA = "noctis-phantom/1"

ModuleKind = Literal[
    "sensitometry",
    "uniformity",
    "low_contrast",
    "resolution",
    "electron_density",
    "acr_module1",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """A citation for the values in a data file."""

    id: str
    citation: str
    url: str | None = None


class Roi(_Frozen):
    """A circular region of interest in the phantom frame (mm)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    material: str
    role: RoiRole = RoiRole.INSERT
    radius_mm: Annotated[float, Field(gt=0)]
    insert_radius_mm: Annotated[float, Field(gt=0)] | None = None
    distance_mm: Annotated[float, Field(ge=0)] | None = None
    angle_deg: float | None = None
    x_mm: float | None = None
    y_mm: float | None = None
    nominal_hu: float | None = None
    range_hu: tuple[float, float] | None = None
    relative_electron_density: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _polar_or_cartesian(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        d = dict(data)
        polar = d.get("distance_mm") is not None and d.get("angle_deg") is not None
        cart = d.get("x_mm") is not None and d.get("y_mm") is not None
        if not polar and not cart:
            raise ValueError("give a position: distance_mm and angle_deg, or x_mm and y_mm")
        if polar:
            a = math.radians(float(d["angle_deg"]))
            x = float(d["distance_mm"]) * math.cos(a)
            y = float(d["distance_mm"]) * math.sin(a)
            if cart and (abs(x - float(d["x_mm"])) > 0.01 or abs(y - float(d["y_mm"])) > 0.01):
                raise ValueError("polar and Cartesian positions disagree")
            d["x_mm"], d["y_mm"] = round(x, 6), round(y, 6)
        else:
            x, y = float(d["x_mm"]), float(d["y_mm"])
            d["distance_mm"] = round(math.hypot(x, y), 6)
            d["angle_deg"] = round(math.degrees(math.atan2(y, x)), 6)
        return d

    @model_validator(mode="after")
    def _check_values(self) -> Roi:
        if self.insert_radius_mm is not None and self.insert_radius_mm < self.radius_mm:
            raise ValueError(
                f"ROI radius {self.radius_mm} mm is larger than its insert "
                f"({self.insert_radius_mm} mm)"
            )
        if self.range_hu is not None:
            lo, hi = self.range_hu
            if lo > hi:
                raise ValueError(f"range_hu low {lo} is above high {hi}")
            if self.nominal_hu is not None and not lo <= self.nominal_hu <= hi:
                raise ValueError(f"nominal_hu {self.nominal_hu} is outside range_hu {lo}..{hi}")
        return self

    @property
    def reach_mm(self) -> float:
        """Radius of the physical insert: ``insert_radius_mm``, else the ROI's own radius."""
        return self.insert_radius_mm if self.insert_radius_mm is not None else self.radius_mm

    @property
    def xy_mm(self) -> tuple[float, float]:
        """``(x, y)`` position in the phantom frame, mm."""
        assert self.x_mm is not None and self.y_mm is not None  # set by the validator
        return self.x_mm, self.y_mm

    def position(self, roll_deg: float = 0.0) -> tuple[float, float]:
        """``(x, y)`` in mm after rolling the phantom by ``roll_deg`` (clockwise on screen)."""
        x, y = self.xy_mm
        a = math.radians(roll_deg)
        c, s = math.cos(a), math.sin(a)
        return x * c - y * s, x * s + y * c


class Feature(_Frozen):
    """A structure drawn by the synthetic generator but not measured as a ROI.

    ``disk``: a cylinder of ``hu`` (low-contrast targets, holes, wires seen end-on).
    ``line_pairs``: ``n_bars`` bars of ``hu`` at ``lp_per_cm`` along the radial direction.
    ``ramp``: a thin wire inclined to the slice (slice-thickness ramp), ``length_mm`` long.
    """

    kind: Literal["disk", "line_pairs", "ramp"]
    distance_mm: Annotated[float, Field(ge=0)]
    angle_deg: float
    hu: float
    radius_mm: Annotated[float, Field(gt=0)] | None = None
    lp_per_cm: Annotated[float, Field(gt=0)] | None = None
    n_bars: Annotated[int, Field(gt=0)] | None = None
    length_mm: Annotated[float, Field(gt=0)] | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> Feature:
        need = {
            "disk": ("radius_mm",),
            "line_pairs": ("lp_per_cm", "n_bars", "length_mm"),
            "ramp": ("length_mm",),
        }[self.kind]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"a {self.kind} feature needs {', '.join(missing)}")
        return self


class Module(_Frozen):
    """A slab of the phantom at ``z_offset_mm`` from the reference module."""

    name: str
    kind: ModuleKind
    z_offset_mm: float = 0.0
    thickness_mm: Annotated[float, Field(gt=0)]
    background_material: str
    background_hu: float
    rois: tuple[Roi, ...] = ()
    features: tuple[Feature, ...] = ()

    @model_validator(mode="after")
    def _check_rois(self) -> Module:
        names = [r.name for r in self.rois]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate ROI names: {', '.join(dupes)}")
        return self

    def roi(self, name: str) -> Roi:
        """The ROI called ``name`` (raises ``KeyError`` naming the choices)."""
        for r in self.rois:
            if r.name == name:
                return r
        raise KeyError(
            f"module {self.name} has no ROI {name!r}; it has {[r.name for r in self.rois]}"
        )

    @property
    def inserts(self) -> tuple[Roi, ...]:
        """The ROIs with role ``insert``."""
        return tuple(r for r in self.rois if r.role == "insert")


class Body(_Frozen):
    """The phantom's outer shape in the axial plane: a circle or an ellipse."""

    shape: Literal["circle", "ellipse"]
    radius_mm: Annotated[float, Field(gt=0)] | None = None
    semi_axes_mm: tuple[float, float] | None = None
    material: str
    hu: float
    shell_mm: Annotated[float, Field(ge=0)] = 0.0
    shell_hu: float | None = None

    @model_validator(mode="after")
    def _check_shape(self) -> Body:
        if self.shape == "circle" and self.radius_mm is None:
            raise ValueError("a circular body needs radius_mm")
        if self.shape == "ellipse" and self.semi_axes_mm is None:
            raise ValueError("an elliptical body needs semi_axes_mm (x, y)")
        return self

    @property
    def half_axes_mm(self) -> tuple[float, float]:
        """``(a_x, a_y)`` semi-axes in mm (equal for a circle)."""
        if self.shape == "circle":
            assert self.radius_mm is not None
            return self.radius_mm, self.radius_mm
        assert self.semi_axes_mm is not None
        return self.semi_axes_mm


class Phantom(_Frozen):
    """A QA phantom: body, modules along z, and the sources of its values."""

    schema_: Literal["noctis-phantom/1"] = Field(alias="schema")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    manufacturer: str
    description: str
    sources: tuple[Source, ...] = Field(min_length=1)
    body: Body
    modules: tuple[Module, ...] = Field(min_length=1)
    reference_module: str

    @model_validator(mode="after")
    def _check_geometry(self) -> Phantom:
        names = [m.name for m in self.modules]
        if self.reference_module not in names:
            raise ValueError(
                f"reference_module {self.reference_module!r} is not one of the modules {names}"
            )
        ax, ay = self.body.half_axes_mm
        for m in self.modules:
            for r in m.rois:
                x, y = r.xy_mm
                reach = r.reach_mm
                if (
                    (abs(x) + reach) > ax
                    or (abs(y) + reach) > ay
                    or ((x / ax) ** 2 + (y / ay) ** 2 > 1.0)
                ):
                    raise ValueError(f"ROI {m.name}.{r.name} lies outside the phantom body")
            for i, a in enumerate(m.rois):
                for b in m.rois[i + 1 :]:
                    if a.role != "insert" or b.role != "insert":
                        continue
                    ra = a.reach_mm
                    rb = b.reach_mm
                    d = math.dist(a.xy_mm, b.xy_mm)
                    if d < ra + rb:
                        raise ValueError(
                            f"inserts {m.name}.{a.name} and {m.name}.{b.name} overlap "
                            f"({d:.1f} mm apart, radii {ra} and {rb} mm)"
                        )
        return self

    def module(self, name: str | None = None) -> Module:
        """The module called ``name`` (default: the reference module)."""
        want = self.reference_module if name is None else name
        for m in self.modules:
            if m.name == want:
                return m
        raise PhantomDefinitionError(
            f"phantom {self.name!r} has no module {want!r}; it has "
            f"{', '.join(m.name for m in self.modules)}"
        )

    def modules_of_kind(self, kind: str) -> tuple[Module, ...]:
        """Every module of the given kind."""
        return tuple(m for m in self.modules if m.kind == kind)

    def iter_rois(self) -> Iterator[tuple[Module, Roi]]:
        """Every ``(module, roi)`` pair."""
        for m in self.modules:
            for r in m.rois:
                yield m, r

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, as in the data file."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _parse(text: str, where: str) -> Phantom:
    return parse_data_file(
        text, where, kind="phantom", schema=SCHEMA, model=Phantom, error=PhantomDefinitionError
    )


def list_phantoms() -> list[str]:
    """Names of the built-in phantoms."""
    return builtin_names("phantoms")


@cache
def _load_builtin(name: str) -> Phantom:
    res = builtin_dir("phantoms", f"{name}.json")
    return _parse(res.read_text(encoding="utf-8"), f"{name}.json (built-in)")


def load_phantom(name_or_path: str | Path | Phantom) -> Phantom:
    """Load a phantom by built-in name (``"catphan604"``) or from a JSON file.

    Parameters
    ----------
    name_or_path : str, Path or Phantom
        A built-in name (see :func:`list_phantoms`), a path to a phantom file, or
        an already loaded :class:`Phantom` (returned as is).

    Raises
    ------
    PhantomDefinitionError
        The name is unknown, or the file is missing, not JSON, or fails validation;
        the message names the file and the field.
    """
    if isinstance(name_or_path, Phantom):
        return name_or_path
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".json") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise PhantomDefinitionError(f"phantom file {path} does not exist")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    key = text.lower().replace(" ", "").replace("-", "")
    aliases = {n.replace("-", "").replace("_", ""): n for n in list_phantoms()}
    if key.replace("_", "") in aliases:
        return _load_builtin(aliases[key.replace("_", "")])
    raise PhantomDefinitionError(
        f"unknown phantom {text!r}; built-in phantoms are {', '.join(list_phantoms())}, "
        "or give the path of a phantom JSON file"
    )
