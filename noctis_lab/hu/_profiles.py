"""Tolerance profiles: versioned data files whose every criterion cites its source.

A profile is a JSON file (schema ``noctis-profile/1``)::

    {"schema": "noctis-profile/1", "name": "seed", "version": "1.0",
     "title": "...", "description": "...", "warning_fraction": 0.8,
     "sources": [{"id": "seed", "citation": "..."}],
     "criteria": [{"id": "water", "kind": "hu", "materials": ["Water"],
                   "expected": 0, "tolerance": 5, "source": "seed"}, ...]}

Criterion kinds
---------------
``hu``
    The mean CT number of every ROI whose material is in ``materials`` (all ROIs
    with a nominal value when ``materials`` is omitted; ``roles`` narrows further).
    Accepted interval: ``expected ± tolerance`` (``expected`` omitted: the ROI's
    nominal), or ``low..high``, or the ROI's ``range_hu`` from the phantom file
    (``use_phantom_range``).
``uniformity``
    Every edge ROI mean minus the centre mean within ``± tolerance`` HU.
``noise``
    Noise (SD in the uniform centre ROI) within ``low..high`` HU.
``linearity``
    ``metric`` ``slope``: least-squares slope of measured vs nominal within
    ``expected ± tolerance`` (the seed's "linearity 2%" is slope 1 ± 0.02);
    ``max_deviation_pct``: largest |measured - fit| as % of the nominal span at most
    ``high``; ``r_squared``: at least ``low``.
``constancy_hu``
    Each ROI mean within ``± tolerance`` HU of the same ROI in the baseline result
    (``nominal_within`` / ``nominal_outside`` select ROIs by nominal HU).
``constancy_noise``
    Noise within ``± tolerance`` (a fraction, 0.10 = 10%) of the baseline noise.

A check is ``warning`` when it passes but uses more than ``warning_fraction`` of
its tolerance (distance from the expected value over the distance to the nearer
limit on that side).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from noctis_lab._errors import ProfileError
from noctis_lab.hu._datafile import builtin_dir, builtin_names, parse_data_file
from noctis_lab.hu._phantoms import RoiRole, Source

__all__ = ["Criterion", "Profile", "list_profiles", "load_profile"]

PROFILE_SCHEMA = "noctis-profile/1"

CriterionKind = Literal["hu", "uniformity", "noise", "linearity", "constancy_hu", "constancy_noise"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Criterion(_Frozen):
    """One pass/fail rule of a profile (see the module docstring for the kinds)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: CriterionKind
    source: str
    description: str | None = None
    materials: tuple[str, ...] | None = None
    roles: tuple[RoiRole, ...] | None = None
    nominal_within: tuple[float, float] | None = None
    nominal_outside: tuple[float, float] | None = None
    expected: float | None = None
    tolerance: Annotated[float, Field(ge=0)] | None = None
    low: float | None = None
    high: float | None = None
    use_phantom_range: bool = False
    metric: Literal["slope", "max_deviation_pct", "r_squared"] | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> Criterion:
        k = self.kind
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"criterion {self.id!r}: low {self.low} is above high {self.high}")
        has_bounds = self.low is not None or self.high is not None
        if k == "hu":
            ways = sum(
                [
                    self.use_phantom_range,
                    self.tolerance is not None,
                    has_bounds and self.tolerance is None,
                ]
            )
            if ways != 1:
                raise ValueError(
                    f"criterion {self.id!r} (hu) needs exactly one of: tolerance (around "
                    "expected, or around each ROI's nominal), low/high, or use_phantom_range"
                )
        elif k in ("uniformity", "constancy_hu", "constancy_noise"):
            if self.tolerance is None:
                raise ValueError(f"criterion {self.id!r} ({k}) needs a tolerance")
        elif k == "noise":
            if not has_bounds:
                raise ValueError(f"criterion {self.id!r} (noise) needs high (and/or low), in HU")
        elif k == "linearity":
            if self.metric is None:
                raise ValueError(
                    f"criterion {self.id!r} (linearity) needs a metric: slope, "
                    "max_deviation_pct or r_squared"
                )
            if self.metric == "slope" and self.tolerance is None and not has_bounds:
                raise ValueError(f"criterion {self.id!r}: a slope criterion needs a tolerance")
            if self.metric == "max_deviation_pct" and self.high is None:
                raise ValueError(f"criterion {self.id!r}: max_deviation_pct needs high")
            if self.metric == "r_squared" and self.low is None:
                raise ValueError(f"criterion {self.id!r}: r_squared needs low")
        return self

    def selects(self, material: str, role: str, nominal: float | None) -> bool:
        """Whether a ROI of this material, role and nominal HU falls under the criterion."""
        if self.materials is not None and material.casefold() not in {
            m.casefold() for m in self.materials
        }:
            return False
        if self.roles is not None and role not in self.roles:
            return False
        if self.nominal_within is not None:
            lo, hi = self.nominal_within
            if nominal is None or not lo <= nominal <= hi:
                return False
        if self.nominal_outside is not None:
            lo, hi = self.nominal_outside
            if nominal is None or lo <= nominal <= hi:
                return False
        return True


class Profile(_Frozen):
    """A named, versioned set of criteria with their sources."""

    schema_: Literal["noctis-profile/1"] = Field(alias="schema")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str = Field(min_length=1)
    title: str
    description: str = ""
    warning_fraction: Annotated[float, Field(gt=0, le=1)] = 0.8
    requires_baseline: bool = False
    sources: tuple[Source, ...] = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_refs(self) -> Profile:
        ids = {s.id for s in self.sources}
        for c in self.criteria:
            if c.source not in ids:
                raise ValueError(
                    f"criterion {c.id!r} cites source {c.source!r}, which is not among the "
                    f"profile's sources {sorted(ids)}"
                )
        names = [c.id for c in self.criteria]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate criterion ids: {', '.join(dupes)}")
        return self

    def source_text(self, source_id: str) -> str:
        """``"<id>: <citation>"`` for a source of this profile."""
        for s in self.sources:
            if s.id == source_id:
                return f"{s.id}: {s.citation}"
        return source_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, as in the data file."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _parse(text: str, where: str) -> Profile:
    return parse_data_file(
        text, where, kind="profile", schema=PROFILE_SCHEMA, model=Profile, error=ProfileError
    )


def list_profiles() -> list[str]:
    """Names of the built-in tolerance profiles."""
    return builtin_names("profiles")


@cache
def _load_builtin(name: str) -> Profile:
    res = builtin_dir("profiles", f"{name}.json")
    return _parse(res.read_text(encoding="utf-8"), f"{name}.json (built-in)")


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """Load a tolerance profile by built-in name (``"seed"``) or from a JSON file.

    Parameters
    ----------
    name_or_path : str, Path or Profile
        ``seed``, ``acr-2017``, ``manufacturer``, ``baseline`` (see
        :func:`list_profiles`), a path to a profile file, or a :class:`Profile`.

    Raises
    ------
    ProfileError
        Unknown name, missing file, bad JSON, or a failed validation; the message
        names the file and the field.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".json") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise ProfileError(f"profile file {path} does not exist")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    key = text.strip().lower().replace("_", "-")
    if key in list_profiles():
        return _load_builtin(key)
    raise ProfileError(
        f"unknown profile {text!r}; built-in profiles are {', '.join(list_profiles())}, "
        "or give the path of a profile JSON file"
    )
