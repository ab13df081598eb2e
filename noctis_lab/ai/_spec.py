"""The declared facts of a model file: task, modality, input/output spec, hash."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ModelSpec", "Task", "sha256_file", "spec_sidecar"]


class Task(StrEnum):
    """What a model does: its kind (results keep the member; JSON gives the text)."""

    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"


ModelFormat = Literal["safetensors", "state_dict", "onnx", "torchscript", "export"]
Activation = Literal["none", "sigmoid", "softmax"]
DetectionOutput = Literal["heatmap", "boxes"]


class ModelSpec(BaseModel):
    """What a model declares about itself; stored as registry tags and a JSON sidecar.

    Attributes
    ----------
    task : {"classification", "detection", "segmentation"}
    format : {"safetensors", "state_dict", "onnx", "torchscript", "export"}
        How the file is stored. ``safetensors`` and ``state_dict`` (tensors only, read with
        ``torch.load(weights_only=True)``) hold weights; the architecture comes from
        ``factory``, trusted code named at registration. ``onnx`` is run by onnxruntime
        (a graph, no code). ``torchscript`` and ``export`` (``torch.export`` ``.pt2``) files
        may carry code: they are only loaded and run in the sandboxed worker.
    factory : str or None
        The architecture of a weights file: a built-in name of
        :data:`noctis_lab.ai._nets.FACTORIES`, an importable ``package.module:callable``, or an
        entry point of group ``noctis_lab.architectures``.
    input_shape, output_shape : tuple of int
        Shapes for a dummy batch of one.
    output_range : (float, float) or None
        Where outputs must lie (``(0, 1)`` for probabilities); ``None`` for logits.
    activation : {"none", "sigmoid", "softmax"}
        Applied to the outputs before metrics: ``none`` for probabilities, ``sigmoid`` or
        ``softmax`` (over the class axis) for logits.
    sha256 : str or None
        Hash of the file, filled in when the model is saved or registered.
    classes : tuple of str
        Class names (classification: index = label).
    detection_output : {"heatmap", "boxes"}
        What a detector outputs: a heatmap with the image's shape (its local maxima are the
        detections, matched to target centres by distance), or ``boxes``, a fixed number
        of slots ``(n, K, 2 * ndim + 1)``: ``[row0, col0, row1, col1, score]`` per slot
        (3-D: ``[z0, r0, c0, z1, r1, c1, score]``), matched to target boxes by IoU; an
        all-zero slot is empty. ``output_range`` and ``activation`` (``sigmoid``) apply to
        the score.
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
    activation: Activation = "none"
    sha256: str | None = None
    classes: tuple[str, ...] = ()
    detection_output: DetectionOutput = "heatmap"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    description: str = ""

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v)):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return v

    def scores_of(self, outputs: Any) -> Any:
        """The part of an output batch that ``output_range`` and ``activation`` apply to.

        That is the score column of box outputs, else all of it.
        """
        if self.task == "detection" and self.detection_output == "boxes":
            return outputs[..., -1]
        return outputs

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-compatible)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """JSON text."""
        return self.model_dump_json()

    def to_tags(self) -> dict[str, str]:
        """Registry tags: text fields as they are, others JSON-encoded.

        ``None`` of a text field is left out (its default is ``None``); ``None`` of another
        field is written as ``null`` so that, e.g., ``output_range=None`` (logits) survives.
        """
        out: dict[str, str] = {}
        for key, value in self.to_dict().items():
            if value is None and key in _TEXT_FIELDS:
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
        "activation",
        "detection_output",
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
