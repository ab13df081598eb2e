"""The MLflow ``pyfunc`` flavour of a registered model: safe formats only, no pickle.

A registered version's MLflow model names this module as its ``loader_module``; the model
directory holds the model file and its ``.spec.json`` in ``noctis/``. Nothing is pickled:
MLflow imports this (installed, trusted) module and calls :func:`_load_pyfunc`, which
checks the file's SHA-256 against the spec and opens it through
:func:`noctis_lab.ai.load_model` (safetensors / weights-only state dicts into the
registered architecture, ONNX through onnxruntime, TorchScript and ``torch.export`` only
in the sandboxed worker). So ``mlflow.pyfunc.load_model("models:/NAME@champion")``
predicts in any process that has ``noctis_lab`` (and the architecture's package) installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noctis_lab._errors import ModelCheckError

__all__ = ["DATA_DIR", "NoctisPyfunc", "save_pyfunc_model"]

#: Folder of the MLflow model directory that holds the model file and its spec.
DATA_DIR = "noctis"


@dataclass(frozen=True)
class NoctisPyfunc:
    """What :func:`_load_pyfunc` returns: ``predict`` on images or batches."""

    runner: Any
    spec: Any

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        """Model outputs for a batch of images.

        The batch is (n, C, H, W), or (n, H, W) images (a channel axis is added), as
        NumPy or a pandas DataFrame of flattened images.
        """
        x = np.asarray(getattr(model_input, "values", model_input), dtype=np.float32)
        per_case = tuple(self.spec.input_shape[1:])
        if x.shape[1:] != per_case:
            try:
                x = x.reshape((len(x), *per_case))
            except ValueError:
                raise ModelCheckError(
                    f"input of shape {x.shape} does not fit the declared {per_case} per case"
                ) from None
        return np.asarray(self.runner.run(x)[0])


def _load_pyfunc(data_path: str) -> NoctisPyfunc:
    """MLflow's entry point: open the model in ``data_path`` after verifying its hash."""
    from noctis_lab.ai._checks import load_model
    from noctis_lab.ai._spec import ModelSpec, sha256_file

    folder = Path(data_path)
    specs = sorted(folder.glob("*.spec.json"))
    if len(specs) != 1:
        raise ModelCheckError(f"{folder}: expected one model spec, found {len(specs)}")
    spec = ModelSpec.model_validate_json(specs[0].read_text())
    model = specs[0].with_name(specs[0].name.removesuffix(".spec.json"))
    digest = sha256_file(model)
    if spec.sha256 is not None and digest != spec.sha256:
        raise ModelCheckError(
            f"{model}: hash {digest} differs from the registered {spec.sha256}; not loaded"
        )
    return NoctisPyfunc(load_model(model, spec), spec)


def save_pyfunc_model(model_file: Path, spec: Any, out_dir: Path) -> Path:
    """Write an MLflow model directory for ``model_file`` at ``out_dir`` (no pickles)."""
    import shutil
    import tempfile

    from noctis_lab.ai._config import import_mlflow
    from noctis_lab.ai._spec import spec_sidecar

    mlflow = import_mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / DATA_DIR
        data.mkdir()
        shutil.copy2(model_file, data / model_file.name)
        spec_sidecar(data / model_file.name).write_text(spec.model_dump_json(indent=1))
        mlflow.pyfunc.save_model(
            str(out_dir),
            loader_module="noctis_lab.ai._pyfunc",
            data_path=str(data),
            pip_requirements=["noctis-lab"],
            metadata={"noctis.task": spec.task.value, "noctis.format": spec.format},
        )
    return out_dir
