"""The sandboxed model worker: load one untrusted model file and run it on given inputs.

This file is run *inside* the bubblewrap sandbox by :mod:`noctis_lab.ai._sandbox` as a
plain script (it imports nothing from ``noctis_lab``). It sees the model file and the
inputs read-only under ``/sandbox/in`` and may write only to ``/sandbox/out``. Whatever the
file's code does (unpickling payloads, ``torch.from_file(..., shared=True)``) happens here,
without network, without the host's files and under memory and CPU limits.

Job (``/sandbox/in/job.json``): ``format`` (``torchscript`` / ``export``), ``model`` (its
path in the sandbox), ``inputs`` (an ``.npy`` batch), ``repeat`` (forward passes over the
whole batch), ``batch_size``. Result (``/sandbox/out/result.json``): ``ok``, ``error``,
``outputs`` (``.npy`` files, one per repeat), ``per_case`` (true when the model only took a
batch of one), ``dtype``.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

IN = "/sandbox/in"
OUT = "/sandbox/out"


def _load(fmt: str, path: str) -> Any:
    import torch

    if fmt == "torchscript":
        return torch.jit.load(path, map_location="cpu")
    if fmt == "export":
        return torch.export.load(path).module()
    raise ValueError(f"the sandbox runs torchscript or export files, not {fmt!r}")


def _forward(module: Any, x: Any) -> Any:
    import torch

    y = module(x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"model output is {type(y).__name__}, not a tensor")
    return y.detach()


def _run_all(module: Any, x_all: Any, batch_size: int) -> tuple[Any, bool]:
    """Outputs for every row of ``x_all``; falls back to one case at a time (static batch)."""
    import torch

    outs = []
    try:
        for start in range(0, len(x_all), batch_size):
            outs.append(_forward(module, x_all[start : start + batch_size]))
        return torch.cat(outs), False
    except Exception:
        if len(x_all) <= 1 or batch_size <= 1:
            raise
    outs = [_forward(module, x_all[i : i + 1]) for i in range(len(x_all))]
    return torch.cat(outs), True


def main() -> int:
    """Run the job; always write ``result.json`` (the host reads nothing else on failure)."""
    result: dict[str, Any] = {"ok": False, "error": "", "outputs": [], "per_case": False}
    try:
        import numpy as np
        import torch

        torch.set_num_threads(1)
        with open(f"{IN}/job.json", encoding="utf-8") as fh:
            job = json.load(fh)
        module = _load(str(job["format"]), str(job["model"]))
        if job["format"] == "torchscript":
            module.eval()  # an exported program's module is already in inference form
        x_all = torch.from_numpy(np.load(f"{IN}/{job['inputs']}", allow_pickle=False))
        with torch.inference_mode():
            for r in range(int(job.get("repeat", 1))):
                y, per_case = _run_all(module, x_all, int(job.get("batch_size", 64)))
                name = f"out{r}.npy"
                np.save(f"{OUT}/{name}", np.ascontiguousarray(y.numpy()), allow_pickle=False)
                result["outputs"].append(name)
                result["per_case"] = per_case
                result["dtype"] = str(y.dtype).removeprefix("torch.")
        result["ok"] = True
    except BaseException as exc:  # everything goes back as text, never as an object
        lines = traceback.format_exception_only(type(exc), exc)
        result["error"] = " ".join("".join(lines).split())[:2000]
    with open(f"{OUT}/result.json", "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
