"""Reference CT numbers of tissues and materials: ranges with sources, not points.

The seed's single-number table is kept by name (``seed_hu``); each entry adds the
range the tissue really spans, a typical value where the seed's number misleads,
whether it is a calibration ``target`` or a ``flag`` (metal: saturation), and a
source.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from noctis_lab._errors import ProfileError
from noctis_lab.hu._datafile import builtin_dir, parse_data_file
from noctis_lab.hu._phantoms import Source

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ReferenceEntry", "ReferenceTable", "load_references"]

REFERENCES_SCHEMA = "noctis-references/1"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReferenceEntry(_Frozen):
    """One tissue or material."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    seed_hu: float
    typical_hu: float | None = None
    range_hu: tuple[float, float | None]
    kind: Literal["target", "flag"] = "target"
    source: str
    note: str = ""

    @model_validator(mode="after")
    def _check_range(self) -> ReferenceEntry:
        lo, hi = self.range_hu
        if hi is not None and lo > hi:
            raise ValueError(f"{self.name}: range low {lo} is above high {hi}")
        return self

    @property
    def value_hu(self) -> float:
        """The best single value: ``typical_hu`` where given, else ``seed_hu``."""
        return self.typical_hu if self.typical_hu is not None else self.seed_hu

    def contains(self, hu: float) -> bool:
        """Whether ``hu`` lies in the entry's range (open above when ``high`` is None)."""
        lo, hi = self.range_hu
        return lo <= hu and (hi is None or hu <= hi)


class ReferenceTable(_Frozen):
    """The validated reference table (``load_references()``)."""

    schema_: Literal["noctis-references/1"] = Field(alias="schema")
    version: str
    title: str
    description: str = ""
    sources: tuple[Source, ...] = Field(min_length=1)
    entries: tuple[ReferenceEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_refs(self) -> ReferenceTable:
        ids = {s.id for s in self.sources}
        for e in self.entries:
            if e.source not in ids:
                raise ValueError(f"entry {e.name!r} cites unknown source {e.source!r}")
        names = [e.name for e in self.entries]
        if len(set(names)) != len(names):
            raise ValueError("duplicate entry names")
        return self

    def __getitem__(self, name: str) -> ReferenceEntry:
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        for e in self.entries:
            if e.name == key:
                return e
        raise KeyError(f"no reference entry {name!r}; entries: {[e.name for e in self.entries]}")

    def names(self) -> list[str]:
        """Entry names in table order."""
        return [e.name for e in self.entries]

    def seed_values(self) -> dict[str, float]:
        """The seed's original ``{name: HU}`` table."""
        return {e.name: e.seed_hu for e in self.entries}

    def source_text(self, source_id: str) -> str:
        """``"<id>: <citation>"``."""
        for s in self.sources:
            if s.id == source_id:
                return f"{s.id}: {s.citation}"
        return source_id

    def to_dataframe(self) -> pd.DataFrame:
        """One row per entry: name, seed_hu, typical_hu, low_hu, high_hu, kind, note, source."""
        import pandas as pd

        rows = [
            {
                "name": e.name,
                "seed_hu": e.seed_hu,
                "typical_hu": e.typical_hu,
                "low_hu": e.range_hu[0],
                "high_hu": e.range_hu[1],
                "kind": e.kind,
                "note": e.note,
                "source": self.source_text(e.source),
            }
            for e in self.entries
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, as in the data file."""
        return self.model_dump(mode="json", by_alias=True)


def _parse(text: str, where: str) -> ReferenceTable:
    return parse_data_file(
        text,
        where,
        kind="reference",
        schema=REFERENCES_SCHEMA,
        model=ReferenceTable,
        error=ProfileError,
    )


@cache
def _load_builtin() -> ReferenceTable:
    res = builtin_dir("references.json")
    return _parse(res.read_text(encoding="utf-8"), "references.json (built-in)")


def load_references(path: str | Path | None = None) -> ReferenceTable:
    """The reference table: the built-in one, or a user's file of the same schema.

    Raises
    ------
    ProfileError
        The file is missing, not JSON or invalid (the message names the field).
    """
    if path is None:
        return _load_builtin()
    p = Path(path)
    if not p.is_file():
        raise ProfileError(f"reference file {p} does not exist")
    return _parse(p.read_text(encoding="utf-8"), str(p))
