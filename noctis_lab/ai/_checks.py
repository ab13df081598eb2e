"""Model file checks and the safe loader.

Order (each step reported): the file exists and is not empty; its SHA-256 matches the
registered one; it loads without unpickling arbitrary code (``torch.jit.load``,
``torch.export.load``, or ``torch.load(weights_only=True)`` + ``load_state_dict(strict=True)``
into a network built by our own named factory); a dummy input gives the declared output
shape and dtype with finite values in the declared range; two runs agree.

A file whose hash does not match is never loaded.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from noctis_lab._errors import ModelCheckError
from noctis_lab.ai._spec import ModelSpec, sha256_file, spec_sidecar
from noctis_lab.ai._types import Issue, Status, worst_status

__all__ = ["CheckItem", "CheckReport", "check_model_file", "load_model", "sniff_format"]

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


def sniff_format(path: str | Path) -> str:
    """Guess how a model file is stored without loading it.

    Returns ``"torchscript"`` (zip with ``code/``), ``"export"`` (a ``.pt2`` archive),
    ``"state_dict"`` (a ``torch.save`` zip) or ``"legacy"`` (not a zip: a bare pickle stream,
    which only ``torch.load(weights_only=True)`` may touch).
    """
    p = Path(path)
    if not zipfile.is_zipfile(p):
        return "legacy"
    with zipfile.ZipFile(p) as zf:
        names = zf.namelist()
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("archive_format") or "/models/" in n for n in names):
        return "export"
    return "state_dict"


def load_model(path: str | Path, spec: ModelSpec | None = None) -> Any:
    """Load a model file safely and return a callable module in eval mode.

    Parameters
    ----------
    path : str or Path
        TorchScript file, ``torch.export`` archive, or ``torch.save`` state dict.
    spec : ModelSpec, optional
        Declared format (and ``factory`` for state dicts); without it the format is sniffed.

    Raises
    ------
    ModelCheckError
        The file cannot be loaded safely; the message says why. Nothing in the file is
        executed by Python's unpickler.
    """
    import torch

    p = Path(path)
    found = sniff_format(p)
    fmt = spec.format if spec is not None else ("state_dict" if found == "legacy" else found)
    if found == "legacy" and fmt != "state_dict":
        raise ModelCheckError(f"{p}: not a {fmt} archive (not a zip file)")
    if fmt == "torchscript":
        if found != "torchscript":
            raise ModelCheckError(f"{p}: declared TorchScript but the file is a {found} archive")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(p), map_location="cpu")
        except Exception as exc:
            raise ModelCheckError(f"{p}: TorchScript load failed: {_short(exc)}") from exc
    elif fmt == "export":
        try:
            module = torch.export.load(str(p)).module()
        except Exception as exc:
            raise ModelCheckError(f"{p}: torch.export load failed: {_short(exc)}") from exc
        return module
    else:
        try:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelCheckError(
                f"{p}: refused by the safe loader (torch.load weights_only=True): {_short(exc)}"
            ) from exc
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            raise ModelCheckError(f"{p}: not a state dict (a mapping of names to tensors)")
        if spec is None or spec.factory is None:
            raise ModelCheckError(
                f"{p}: a state dict needs a declared factory (ModelSpec.factory) to build the "
                "network; none given"
            )
        from noctis_lab.ai._nets import build_network

        module = build_network(spec.factory)
        try:
            module.load_state_dict(state, strict=True)
        except Exception as exc:
            raise ModelCheckError(
                f"{p}: state dict does not fit {spec.factory}: {_short(exc)}"
            ) from exc
    module.eval()
    return module


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
    p = Path(path)
    label = target or str(p)
    checks: list[CheckItem] = []
    issues: list[Issue] = []

    def fail(name: str, code: str, detail: str, message: str) -> CheckReport:
        checks.append(CheckItem(name, "fail", detail))
        issues.append(Issue(code, "error", message, "file"))
        for later in _ORDER[_ORDER.index(name) + 1 :]:
            checks.append(CheckItem(later, "skipped", f"not run: {name} failed"))
        return CheckReport(label, "error", tuple(checks), tuple(issues), digest, spec)

    digest: str | None = None
    # 1. exists and not empty
    if not p.exists():
        return fail("exists", "missing_file", f"{p} does not exist", f"Model file {p} is missing.")
    if not p.is_file():
        return fail(
            "exists", "missing_file", f"{p} is not a file", f"Model path {p} is not a file."
        )
    size = p.stat().st_size
    if size == 0:
        return fail("exists", "empty_file", f"{p} is empty (0 bytes)", f"Model file {p} is empty.")
    checks.append(CheckItem("exists", "pass", f"{size} bytes"))
    digest = sha256_file(p)
    # spec: given, or the sidecar
    if spec is None:
        side = spec_sidecar(p)
        if side.is_file():
            try:
                spec = ModelSpec.model_validate_json(side.read_text())
            except Exception as exc:
                return fail(
                    "sha256",
                    "bad_spec",
                    f"spec sidecar {side} is invalid: {_short(exc)}",
                    f"The spec file next to the model ({side.name}) cannot be read.",
                )
    # 2. hash
    if spec is None or spec.sha256 is None:
        checks.append(CheckItem("sha256", "skipped", f"no registered hash; file has {digest}"))
        issues.append(
            Issue(
                "unverified_hash",
                "warning",
                "The file could not be compared with a registered hash, so tampering cannot be "
                "ruled out.",
                "file",
            )
        )
    elif spec.sha256 != digest:
        return fail(
            "sha256",
            "hash_mismatch",
            f"expected {spec.sha256}, found {digest}",
            "The model file differs from the registered one (hash mismatch): it may be "
            "corrupt or tampered with, so it was not loaded.",
        )
    else:
        checks.append(CheckItem("sha256", "pass", digest))
    # 3. safe load
    try:
        module = load_model(p, spec)
    except ModelCheckError as exc:
        return fail(
            "load",
            "unsafe_or_corrupt",
            str(exc),
            "The model file cannot be loaded safely: it is corrupt, truncated, not a model, "
            "or contains code the safe loader refuses to run.",
        )
    checks.append(CheckItem("load", "pass", f"loaded as {sniff_format(p)}"))
    # 4. dummy input
    if spec is None:
        checks.append(CheckItem("output", "skipped", "no declared input/output spec"))
        checks.append(CheckItem("determinism", "skipped", "no declared input spec"))
        issues.append(
            Issue(
                "no_spec",
                "warning",
                "The model has no declared input/output spec, so its outputs were not checked.",
                "file",
            )
        )
        return CheckReport(
            label,
            worst_status(*(i.severity for i in issues)),
            tuple(checks),
            tuple(issues),
            digest,
            spec,
        )
    import torch

    try:
        x = _dummy_input(spec)
        with torch.inference_mode():
            y1 = module(x)
            y2 = module(x)
    except Exception as exc:
        return fail(
            "output",
            "forward_failed",
            f"forward pass on a dummy {tuple(spec.input_shape)} input failed: {_short(exc)}",
            "The model fails on an input of its declared shape.",
        )
    problems = []
    if not isinstance(y1, torch.Tensor):
        problems.append(f"output is {type(y1).__name__}, not a tensor")
    else:
        if tuple(y1.shape) != tuple(spec.output_shape):
            problems.append(f"shape {tuple(y1.shape)} != declared {tuple(spec.output_shape)}")
        if str(y1.dtype).removeprefix("torch.") != spec.output_dtype:
            problems.append(f"dtype {y1.dtype} != declared {spec.output_dtype}")
        if not bool(torch.isfinite(y1).all()):
            problems.append("non-finite values (NaN or inf)")
        elif spec.output_range is not None:
            lo, hi = spec.output_range
            if float(y1.min()) < lo or float(y1.max()) > hi:
                problems.append(
                    f"values {float(y1.min()):.3g}..{float(y1.max()):.3g} outside [{lo}, {hi}]"
                )
    if problems:
        return fail(
            "output",
            "bad_output",
            "; ".join(problems),
            "The model's output does not match its declared shape, type or range.",
        )
    checks.append(
        CheckItem("output", "pass", f"shape {tuple(y1.shape)}, {spec.output_dtype}, finite")
    )
    # 5. determinism
    if not torch.equal(y1, y2):
        diff = float((y1 - y2).abs().max())
        return fail(
            "determinism",
            "nondeterministic",
            f"two runs differ by up to {diff:.3g}",
            "The model gives different outputs for the same input.",
        )
    checks.append(CheckItem("determinism", "pass", "two runs identical"))
    status = worst_status(*(i.severity for i in issues))
    return CheckReport(label, status, tuple(checks), tuple(issues), digest, spec)


_ORDER = ["exists", "sha256", "load", "output", "determinism"]
