"""Loaded models behind one interface, whatever the file format.

A runner takes a float batch (n, ...) as a NumPy array and returns the model's outputs.

- :class:`TorchRunner`: a network built from trusted code (the registered architecture)
  and filled with tensors from a ``safetensors`` or ``torch.load(weights_only=True)`` file;
  runs in our process.
- :class:`OnnxRunner`: an ONNX graph run by onnxruntime in our process (a graph of
  standard operators; no Python code, no custom-operator libraries, no external data).
- :class:`SandboxRunner`: a TorchScript or ``torch.export`` file, loaded and run only in the
  sandboxed worker (:mod:`noctis_lab.ai._sandbox`); nothing of the file is loaded here.

Each also accepts a ``torch.Tensor`` when called (``runner(x)``), like a module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noctis_lab._errors import ModelCheckError

__all__ = ["ModelRunner", "OnnxRunner", "SandboxRunner", "TorchRunner", "run_batches"]


def run_batches(fn: Any, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, bool]:
    """``fn`` over ``x`` in chunks; when a chunk of several cases fails, every case alone.

    Returns the stacked outputs and whether the cases ran one at a time (a static batch of
    one, as ``torch.export`` makes by default).
    """
    outs = []
    try:
        for start in range(0, len(x), batch_size):
            outs.append(fn(x[start : start + batch_size]))
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32), False
    except Exception:
        if len(x) <= 1 or batch_size <= 1:
            raise
    return np.concatenate([fn(x[i : i + 1]) for i in range(len(x))]), True


class ModelRunner:
    """Common base: ``run`` (NumPy in, NumPy out) and ``__call__`` (torch in, torch out)."""

    #: where the model runs: ``"in-process"``, ``"onnxruntime"`` or ``"sandbox"``
    where: str = "in-process"
    #: True once a batch of several cases failed and cases ran one at a time
    per_case: bool = False

    def run(
        self, x: np.ndarray, *, repeat: int = 1, batch_size: int = 64
    ) -> tuple[np.ndarray, ...]:
        """Outputs for every row of ``x``; ``repeat`` full passes (for determinism)."""
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        import torch

        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return torch.from_numpy(np.ascontiguousarray(self.run(arr, batch_size=len(arr))[0]))


@dataclass
class TorchRunner(ModelRunner):
    """A trusted-architecture ``torch.nn.Module`` (weights from a tensor-only file)."""

    module: Any
    where: str = "in-process"
    per_case: bool = False

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        y = self.module(torch.from_numpy(np.ascontiguousarray(x)))
        if not isinstance(y, torch.Tensor):
            raise ModelCheckError(f"model output is {type(y).__name__}, not a tensor")
        return np.asarray(y.detach().numpy())

    def run(
        self, x: np.ndarray, *, repeat: int = 1, batch_size: int = 64
    ) -> tuple[np.ndarray, ...]:
        """Forward passes under ``torch.inference_mode``."""
        import torch

        outs = []
        with torch.inference_mode():
            for _ in range(repeat):
                y, per_case = run_batches(self._forward, x, batch_size)
                self.per_case = self.per_case or per_case
                outs.append(y)
        return tuple(outs)

    def __call__(self, x: Any) -> Any:
        return self.module(x)

    def eval(self) -> TorchRunner:
        """The module is already in eval mode; kept for module-like use."""
        self.module.eval()
        return self


@dataclass
class OnnxRunner(ModelRunner):
    """An ONNX graph in an onnxruntime CPU session."""

    session: Any
    input_name: str
    where: str = "onnxruntime"
    per_case: bool = False

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0])

    def run(
        self, x: np.ndarray, *, repeat: int = 1, batch_size: int = 64
    ) -> tuple[np.ndarray, ...]:
        """Session runs; a graph with a fixed batch of one runs case by case."""
        outs = []
        for _ in range(repeat):
            y, per_case = run_batches(self._forward, x, batch_size)
            self.per_case = self.per_case or per_case
            outs.append(y)
        return tuple(outs)


@dataclass
class SandboxRunner(ModelRunner):
    """A TorchScript / ``torch.export`` file, run only in the sandboxed worker."""

    path: Path
    format: str
    where: str = "sandbox"
    per_case: bool = False

    def run(
        self, x: np.ndarray, *, repeat: int = 1, batch_size: int = 64
    ) -> tuple[np.ndarray, ...]:
        """One sandboxed worker for all passes (raises ModelCheckError on any failure)."""
        from noctis_lab.ai._sandbox import run_in_sandbox

        res = run_in_sandbox(
            self.path,
            self.format,
            x.astype(np.float32, copy=False),
            repeat=repeat,
            batch_size=batch_size,
        )
        self.per_case = self.per_case or res.per_case
        return res.outputs


def onnx_runner(path: Path) -> OnnxRunner:
    """Open an ONNX file with onnxruntime after checking it holds only a standard graph.

    Refused: external tensor data (a path the graph could point anywhere), operators of
    non-standard domains (they would need a custom-operator library), several inputs.
    """
    import onnx
    import onnxruntime as ort

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelCheckError(f"{path}: not a readable ONNX file: {_short(exc)}") from exc
    for init in proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelCheckError(
                f"{path}: ONNX tensor {init.name!r} refers to external data; only "
                "self-contained ONNX files are accepted"
            )
    domains = {n.domain for n in proto.graph.node} - {"", "ai.onnx", "ai.onnx.ml"}
    if domains:
        raise ModelCheckError(
            f"{path}: ONNX graph uses custom operator domains {sorted(domains)}; refused"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(
            proto.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelCheckError(f"{path}: onnxruntime cannot open it: {_short(exc)}") from exc
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ModelCheckError(f"{path}: the ONNX graph has {len(inputs)} inputs; expected one")
    return OnnxRunner(sess, inputs[0].name)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
