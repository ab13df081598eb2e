"""Model file checks and the safe loader.

Order (each step reported): the file exists and is not empty; its SHA-256 matches the
registered one; it opens without running code in our process (safetensors or
``torch.load(weights_only=True)`` + ``load_state_dict(strict=True)`` into a network built
from trusted code named at registration; ONNX through onnxruntime; TorchScript and
``torch.export`` files only inside the sandboxed worker); a dummy input gives the declared
output shape and dtype with finite values in the declared range; two runs agree.

A file whose hash does not match is never loaded.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from noctis_lab._errors import ModelCheckError
from noctis_lab.ai._runners import ModelRunner, SandboxRunner, TorchRunner, onnx_runner
from noctis_lab.ai._spec import ModelSpec, sha256_file, spec_sidecar
from noctis_lab.ai._types import Issue, Status, worst_status

__all__ = [
    "FORMAT_HANDLING",
    "CheckItem",
    "CheckReport",
    "check_model_file",
    "load_model",
    "sniff_format",
]

CheckState = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class CheckItem:
    """One check: ``name``, ``state`` (pass / fail / skipped) and a plain-words ``detail``."""

    name: str
    state: CheckState
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return {"name": self.name, "state": self.state, "detail": self.detail}


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`check_model_file`.

    Attributes
    ----------
    target : str
        The file path (and registered name/version when checked through the registry).
    status : {"excellent", "good", "warning", "error"}
        ``error`` when any check failed; ``warning`` when a check had to be skipped for want
        of a declared spec or hash; else ``excellent``.
    checks : tuple of CheckItem
    issues : tuple of Issue
    sha256 : str or None
        Hash of the file as found (``None`` when it could not be read).
    spec : ModelSpec or None
        The spec the file was checked against.
    """

    target: str
    status: Status
    checks: tuple[CheckItem, ...]
    issues: tuple[Issue, ...]
    sha256: str | None = None
    spec: ModelSpec | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return self.status != "error"

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (what ``noctis-lab ai check --json`` prints)."""
        return {
            "target": self.target,
            "status": self.status,
            "sha256": self.sha256,
            "checks": [c.to_dict() for c in self.checks],
            "issues": [i.to_dict() for i in self.issues],
            "spec": None if self.spec is None else self.spec.to_dict(),
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2)


def _is_safetensors(p: Path) -> bool:
    """A safetensors file: 8-byte little-endian header length, then a JSON object."""
    with p.open("rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < n <= p.stat().st_size - 8


def sniff_format(path: str | Path) -> str:
    """Guess how a model file is stored without loading it.

    Returns ``"safetensors"``, ``"onnx"`` (by its ``.onnx`` suffix), ``"torchscript"`` (zip
    with ``code/``), ``"export"`` (a ``.pt2`` archive), ``"state_dict"`` (a ``torch.save``
    zip) or ``"legacy"`` (not a zip: a bare pickle stream, which only
    ``torch.load(weights_only=True)`` may touch).
    """
    p = Path(path)
    if _is_safetensors(p):
        return "safetensors"
    if p.suffix.lower() == ".onnx":
        return "onnx"
    if not zipfile.is_zipfile(p):
        return "legacy"
    with zipfile.ZipFile(p) as zf:
        names = zf.namelist()
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("archive_format") or "/models/" in n for n in names):
        return "export"
    return "state_dict"


#: Where each format is loaded: weights and graphs here, files that may carry code only in
#: the sandboxed worker.
FORMAT_HANDLING: dict[str, str] = {
    "safetensors": "accepted: tensors only (safetensors), architecture from trusted code",
    "state_dict": "accepted: torch.load(weights_only=True), architecture from trusted code",
    "onnx": "accepted: graph only, run by onnxruntime",
    "torchscript": "sandboxed: loaded and run only in the bubblewrap worker",
    "export": "sandboxed: loaded and run only in the bubblewrap worker",
    "legacy": "refused unless a tensor-only state dict (torch.load weights_only=True)",
}


def load_model(path: str | Path, spec: ModelSpec | None = None) -> ModelRunner:
    """Open a model file safely and return a runner (callable like a module).

    Parameters
    ----------
    path : str or Path
        A weights file (``safetensors`` / ``state_dict``, with the architecture named in
        ``spec.factory``), an ONNX file, or a TorchScript / ``torch.export`` file.
    spec : ModelSpec, optional
        Declared format (and ``factory`` for weights); without it the format is sniffed.

    Returns
    -------
    ModelRunner
        :class:`TorchRunner` or :class:`OnnxRunner` (in our process), or
        :class:`SandboxRunner` for TorchScript / ``torch.export``: those files are never
        loaded in this process, only in the sandboxed worker when the runner is run.

    Raises
    ------
    ModelCheckError
        The file cannot be opened safely; the message says why. Nothing in the file is
        executed by Python's unpickler in this process.
    """
    p = Path(path)
    found = sniff_format(p)
    fmt = spec.format if spec is not None else ("state_dict" if found == "legacy" else found)
    if found == "legacy" and fmt != "state_dict":
        raise ModelCheckError(f"{p}: not a {fmt} file (a bare pickle stream or unknown bytes)")
    if fmt in ("torchscript", "export"):
        if found != fmt:
            raise ModelCheckError(f"{p}: declared {fmt} but the file is a {found} file")
        return SandboxRunner(p, fmt)
    if fmt == "onnx":
        return onnx_runner(p)
    if fmt == "safetensors" and found != "safetensors":
        raise ModelCheckError(f"{p}: declared safetensors but the file is a {found} file")
    state = _read_tensors(p, fmt)
    if spec is None or spec.factory is None:
        raise ModelCheckError(
            f"{p}: a weights file needs its architecture (ModelSpec.factory: a built-in "
            "name, 'package.module:callable' or an entry point); none given"
        )
    from noctis_lab.ai._nets import build_network

    module = build_network(spec.factory)
    try:
        module.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelCheckError(f"{p}: weights do not fit {spec.factory}: {_short(exc)}") from exc
    module.eval()
    return TorchRunner(module)


def _read_tensors(p: Path, fmt: str) -> dict[str, Any]:
    import torch

    try:
        if fmt == "safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p), device="cpu")
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelCheckError(
            f"{p}: refused by the safe loader "
            f"({'safetensors' if fmt == 'safetensors' else 'torch.load weights_only=True'}): "
            f"{_short(exc)}"
        ) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelCheckError(f"{p}: not a state dict (a mapping of names to tensors)")
    return state


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dummy_input(spec: ModelSpec) -> Any:
    import torch

    gen = torch.Generator().manual_seed(0)
    dtype = getattr(torch, spec.input_dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise ModelCheckError(f"unknown input dtype {spec.input_dtype!r} in the model spec")
    return torch.randn(spec.input_shape, generator=gen).to(dtype)


def check_model_file(
    path: str | Path,
    spec: ModelSpec | None = None,
    *,
    target: str | None = None,
) -> CheckReport:
    """Run every file check on a model file and report each one; never raises for bad files.

    Parameters
    ----------
    path : str or Path
        The model file.
    spec : ModelSpec, optional
        The registered spec (hash, shapes). Without it, the ``<file>.spec.json`` sidecar is
        used when present; otherwise hash and output checks are skipped (status ``warning``).
    target : str, optional
        Label for the report (default: the path).
    """
    run = _CheckRun(Path(path), target or str(path), spec)
    for step in (_check_exists, _read_sidecar, _check_hash):
        failed = step(run)
        if failed is not None:
            return failed
    loaded = _load_and_run(run)
    if isinstance(loaded, CheckReport):
        return loaded
    runner, x, outs = loaded
    if run.spec is None or x is None:
        return _without_spec(run)
    failed = _check_output(run, runner, x, outs)
    return failed if failed is not None else run.report()


@dataclass
class _CheckRun:
    """The checks and issues of one :func:`check_model_file` call, as its steps add them."""

    path: Path
    label: str
    spec: ModelSpec | None
    checks: list[CheckItem] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    digest: str | None = None

    def passed(self, name: str, detail: str) -> None:
        """Record check ``name`` as passed."""
        self.checks.append(CheckItem(name, "pass", detail))

    def fail(self, name: str, code: str, detail: str, message: str) -> CheckReport:
        """The report of a run stopped by check ``name``; the later checks are skipped."""
        self.checks.append(CheckItem(name, "fail", detail))
        self.issues.append(Issue(code, Status.ERROR, message, "file"))
        for later in _ORDER[_ORDER.index(name) + 1 :]:
            self.checks.append(CheckItem(later, "skipped", f"not run: {name} failed"))
        return CheckReport(
            self.label, Status.ERROR, tuple(self.checks), tuple(self.issues), self.digest, self.spec
        )

    def report(self) -> CheckReport:
        """The report of a run that went to its end: the worst of its issues."""
        status = worst_status(*(i.severity for i in self.issues))
        return CheckReport(
            self.label, status, tuple(self.checks), tuple(self.issues), self.digest, self.spec
        )


def _check_exists(run: _CheckRun) -> CheckReport | None:
    """Check 1: the file exists, is a file and is not empty; its digest is taken."""
    p = run.path
    if not p.exists():
        return run.fail(
            "exists", "missing_file", f"{p} does not exist", f"Model file {p} is missing."
        )
    if not p.is_file():
        return run.fail(
            "exists", "missing_file", f"{p} is not a file", f"Model path {p} is not a file."
        )
    size = p.stat().st_size
    if size == 0:
        return run.fail(
            "exists", "empty_file", f"{p} is empty (0 bytes)", f"Model file {p} is empty."
        )
    run.passed("exists", f"{size} bytes")
    run.digest = sha256_file(p)
    return None


def _read_sidecar(run: _CheckRun) -> CheckReport | None:
    """Without a given spec, the ``<file>.spec.json`` sidecar's, when there is one."""
    if run.spec is not None:
        return None
    side = spec_sidecar(run.path)
    if not side.is_file():
        return None
    try:
        run.spec = ModelSpec.model_validate_json(side.read_text())
    except Exception as exc:
        return run.fail(
            "sha256",
            "bad_spec",
            f"spec sidecar {side} is invalid: {_short(exc)}",
            f"The spec file next to the model ({side.name}) cannot be read.",
        )
    return None


def _check_hash(run: _CheckRun) -> CheckReport | None:
    """Check 2: the file's digest is the registered one (a warning when none is)."""
    spec = run.spec
    if spec is None or spec.sha256 is None:
        run.checks.append(
            CheckItem("sha256", "skipped", f"no registered hash; file has {run.digest}")
        )
        run.issues.append(
            Issue(
                "unverified_hash",
                Status.WARNING,
                "The file could not be compared with a registered hash, so tampering cannot be "
                "ruled out.",
                "file",
            )
        )
        return None
    if spec.sha256 != run.digest:
        return run.fail(
            "sha256",
            "hash_mismatch",
            f"expected {spec.sha256}, found {run.digest}",
            "The model file differs from the registered one (hash mismatch): it may be "
            "corrupt or tampered with, so it was not loaded.",
        )
    run.passed("sha256", spec.sha256)
    return None


def _load_and_run(run: _CheckRun) -> tuple[ModelRunner, Any, tuple[Any, ...]] | CheckReport:
    """Check 3: the safe load.

    A sandboxed format is loaded and run (dummy input, twice) in one worker.
    """
    p, spec = run.path, run.spec
    x = None
    outs: tuple[Any, ...] = ()
    try:
        runner = load_model(p, spec)
        if spec is not None:
            x = _dummy_input(spec).numpy()
        if isinstance(runner, SandboxRunner):
            import numpy as np

            outs = runner.run(
                x if x is not None else np.zeros((0,), np.float32), repeat=2 * (x is not None)
            )
    except ModelCheckError as exc:
        return run.fail(
            "load",
            "unsafe_or_corrupt",
            str(exc),
            "The model file cannot be loaded safely: it is corrupt, truncated, not a model, "
            "refused by the safe loader, or failed inside the sandbox.",
        )
    run.passed("load", _load_detail(runner, p, spec))
    if runner.where == "sandbox":
        run.issues.append(
            Issue(
                "sandboxed_format",
                Status.GOOD,
                f"The file is {sniff_format(p)}, a format that can carry code; it is only "
                "ever loaded and run in the sandboxed worker. Safer: safetensors weights with "
                "an installed architecture, or ONNX.",
                "file",
            )
        )
    return runner, x, outs


def _without_spec(run: _CheckRun) -> CheckReport:
    """Checks 4 and 5 skipped: no declared input/output spec to run the model on."""
    run.checks.append(CheckItem("output", "skipped", "no declared input/output spec"))
    run.checks.append(CheckItem("determinism", "skipped", "no declared input spec"))
    run.issues.append(
        Issue(
            "no_spec",
            Status.WARNING,
            "The model has no declared input/output spec, so its outputs were not checked.",
            "file",
        )
    )
    return run.report()


def _check_output(
    run: _CheckRun, runner: ModelRunner, x: Any, outs: tuple[Any, ...]
) -> CheckReport | None:
    """Checks 4 and 5: the declared output for a dummy input, twice the same."""
    spec = run.spec
    assert spec is not None
    if not outs:
        try:
            outs = runner.run(x, repeat=2, batch_size=len(x))
        except Exception as exc:
            return run.fail(
                "output",
                "forward_failed",
                f"forward pass on a dummy {tuple(spec.input_shape)} input failed: {_short(exc)}",
                "The model fails on an input of its declared shape.",
            )
    problems = output_problems(outs[0], spec)
    if problems:
        return run.fail(
            "output",
            "bad_output",
            "; ".join(problems),
            "The model's output does not match its declared shape, type or range.",
        )
    run.passed("output", f"shape {tuple(outs[0].shape)}, {spec.output_dtype}, finite")
    y1, y2 = outs[0], outs[1]
    if y1.shape != y2.shape or not (y1 == y2).all():
        diff = float(abs(y1 - y2).max()) if y1.shape == y2.shape else float("inf")
        return run.fail(
            "determinism",
            "nondeterministic",
            f"two runs differ by up to {diff:.3g}",
            "The model gives different outputs for the same input.",
        )
    run.passed("determinism", "two runs identical")
    return None


def _load_detail(runner: ModelRunner, p: Path, spec: ModelSpec | None) -> str:
    if isinstance(runner, SandboxRunner):
        return (
            f"{runner.format} file opened only in the sandboxed worker (no network, read-only "
            "files, writes to a scratch folder only, memory and time limits): any code in it "
            "was confined, not trusted"
        )
    if isinstance(runner, TorchRunner):
        kind = (
            "safetensors" if sniff_format(p) == "safetensors" else "torch.load(weights_only=True)"
        )
        arch = spec.factory if spec is not None else "?"
        return f"tensors read with {kind} into the trusted architecture {arch}"
    return "ONNX graph opened by onnxruntime (standard operators, no external data)"


def output_problems(y: Any, spec: ModelSpec, *, batch: int | None = None) -> list[str]:
    """What is wrong with an output batch ``y`` against ``spec`` (empty: nothing).

    With ``batch``, the expected shape is the declared one with that many rows.
    """
    import numpy as np

    problems = []
    want = tuple(spec.output_shape) if batch is None else (batch, *spec.output_shape[1:])
    if tuple(y.shape) != want:
        problems.append(f"shape {tuple(y.shape)} != declared {want}")
    if str(y.dtype) != spec.output_dtype:
        problems.append(f"dtype {y.dtype} != declared {spec.output_dtype}")
    if not np.issubdtype(y.dtype, np.number) or not bool(np.isfinite(y).all()):
        problems.append("non-finite values (NaN or inf)")
    elif spec.output_range is not None and spec.scores_of(y).size:
        lo, hi = spec.output_range
        v = spec.scores_of(y)
        if float(v.min()) < lo or float(v.max()) > hi:
            problems.append(
                f"values {float(v.min()):.3g}..{float(v.max()):.3g} outside [{lo}, {hi}]"
            )
    return problems


_ORDER = ["exists", "sha256", "load", "output", "determinism"]
