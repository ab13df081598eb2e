"""The declared facts of a model file: task, modality, input/output spec, hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ModelSpec", "Task", "sha256_file", "spec_sidecar"]

Task = Literal["classification", "detection", "segmentation"]
ModelFormat = Literal["torchscript", "export", "state_dict"]


class ModelSpec(BaseModel):
    """What a model declares about itself; stored as registry tags and a JSON sidecar.

    Attributes
    ----------
    task : {"classification", "detection", "segmentation"}
    format : {"export", "torchscript", "state_dict"}
        How the file is stored (default ``export``: a ``torch.export`` ``.pt2`` archive).
        ``state_dict`` needs ``factory``, the name of a network
        builder in :data:`noctis_lab.ai.FACTORIES`.
    input_shape, output_shape : tuple of int
        Shapes for a dummy batch of one.
    output_range : (float, float) or None
        Where outputs must lie (``(0, 1)`` for probabilities); ``None`` for logits.
    sha256 : str or None
        Hash of the file, filled in when the model is saved or registered.
    classes : tuple of str
        Class names (classification: index = label).
    threshold : float
        Decision threshold on the output probability.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Task
    format: ModelFormat = "export"
    factory: str | None = None
    modality: str = "CT"
    body_part: str = "phantom"
    version: str = "1.0.0"
    input_shape: tuple[int, ...] = (1, 1, 64, 64)
    input_dtype: str = "float32"
    output_shape: tuple[int, ...] = (1, 1)
    output_dtype: str = "float32"
    output_range: tuple[float, float] | None = (0.0, 1.0)
    sha256: str | None = None
    classes: tuple[str, ...] = ()
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    description: str = ""

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v)):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return v

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-compatible)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """JSON text."""
        return self.model_dump_json()

    def to_tags(self) -> dict[str, str]:
        """Registry tags: text fields as they are, others JSON-encoded; ``None`` left out."""
        out: dict[str, str] = {}
        for key, value in self.to_dict().items():
            if value is None:
                continue
            out[f"noctis.{key}"] = value if key in _TEXT_FIELDS else json.dumps(value)
        return out

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ModelSpec:
        """Rebuild a spec from registry tags written by :meth:`to_tags`."""
        data: dict[str, Any] = {}
        for key in cls.model_fields:
            raw = tags.get(f"noctis.{key}")
            if raw is not None:
                data[key] = raw if key in _TEXT_FIELDS else json.loads(raw)
        return cls.model_validate(data)


_TEXT_FIELDS = frozenset(
    {
        "task",
        "format",
        "factory",
        "modality",
        "body_part",
        "version",
        "input_dtype",
        "output_dtype",
        "sha256",
        "description",
    }
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def spec_sidecar(path: str | Path) -> Path:
    """Path of a model file's JSON spec sidecar: ``<file>.spec.json``."""
    p = Path(path)
    return p.with_name(p.name + ".spec.json")
