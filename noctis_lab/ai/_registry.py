"""Saving model files and the MLflow model registry (aliases and tags, no stages).

A registered version's source is a run artifact folder ``model/`` holding the model file
and its ``.spec.json``; the version carries the spec as ``noctis.*`` tags (task, modality,
body part, version, input/output spec, SHA-256). Loading always goes through
:func:`noctis_lab.ai.check_model_file`'s safe loader.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from noctis_lab._errors import ModelCheckError
from noctis_lab.ai._checks import CheckReport, check_model_file
from noctis_lab.ai._config import EXPERIMENT_PREFIX, artifact_root, import_mlflow
from noctis_lab.ai._config import tracking_uri as _resolve_uri
from noctis_lab.ai._spec import ModelSpec, sha256_file, spec_sidecar

__all__ = [
    "ModelInfo",
    "RegisteredModelVersion",
    "check_model",
    "ensure_experiment",
    "list_models",
    "register_model",
    "resolve_model",
    "save_model",
]


@dataclass(frozen=True)
class RegisteredModelVersion:
    """One registered model version, resolved to a local file.

    Attributes
    ----------
    name, version : str
        Registered name and version number (as text).
    spec : ModelSpec
    path : Path
        Local path of the model file (inside the artifact store for local stores).
    aliases : tuple of str
    run_id : str
        The run that holds the file.
    model_id : str
        The version's MLflow (logged) model, loadable with ``mlflow.pyfunc.load_model``.
    """

    name: str
    version: str
    spec: ModelSpec
    path: Path
    aliases: tuple[str, ...]
    run_id: str
    model_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["path"] = str(self.path)
        d["aliases"] = list(self.aliases)
        return d


@dataclass(frozen=True)
class ModelInfo:
    """A registered model as listed by :func:`list_models`."""

    name: str
    task: str
    modality: str
    body_part: str
    latest_version: str
    aliases: dict[str, str]
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def save_model(module: Any, path: str | Path, spec: ModelSpec) -> ModelSpec:
    """Write ``module`` in ``spec.format`` with a ``.spec.json`` sidecar; return spec + hash.

    ``safetensors`` and ``state_dict`` files hold tensors only (the architecture is
    ``spec.factory``); ``onnx`` graphs are exported with a dynamic batch axis; ``export``
    archives (``.pt2``) are made with ``torch.export.export`` with a dynamic batch dimension;
    TorchScript files are scripted (``torch.jit.script``, deprecated by torch but still
    supported). The last two can carry code, so they are only ever run in the sandbox.
    """
    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    example = torch.zeros(spec.input_shape, dtype=getattr(torch, spec.input_dtype))
    if spec.format in ("safetensors", "state_dict") and spec.factory is None:
        raise ModelCheckError(f"{p}: a weights file needs ModelSpec.factory (its architecture)")
    if spec.format == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(p))
    elif spec.format == "state_dict":
        torch.save(module.state_dict(), str(p))
    elif spec.format == "onnx":
        with warnings.catch_warnings():  # the TorchScript-based exporter: no extra packages
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(p),
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )
    elif spec.format == "torchscript":
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, still read
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(module), str(p))
    else:
        batch = example.expand(2, *spec.input_shape[1:]).contiguous()
        program = torch.export.export(
            module, (batch,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)
        )
        torch.export.save(program, str(p))
    final = spec.model_copy(update={"sha256": sha256_file(p)})
    spec_sidecar(p).write_text(final.model_dump_json(indent=1))
    return final


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Experiment id for ``name``, created (with our artifact folder) when missing."""
    mlflow = import_mlflow()
    client = mlflow.MlflowClient(tracking_uri=_resolve_uri(uri))
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_root(_resolve_uri(uri))))


def register_model(
    path: str | Path,
    name: str,
    spec: ModelSpec | None = None,
    *,
    alias: str | None = "champion",
    tags: dict[str, str] | None = None,
    tracking_uri: str | None = None,
) -> RegisteredModelVersion:
    """Check a model file and register it as a new version of ``name`` in the MLflow registry.

    Parameters
    ----------
    path : str or Path
        The model file; its spec comes from ``spec`` or the ``.spec.json`` sidecar.
    name : str
        Registered model name.
    spec : ModelSpec, optional
        Declared spec; its ``sha256`` is filled in (or must match) the file.
    alias : str or None
        Alias to point at the new version (``"champion"``, ``"candidate"``); ``None``: none.
    tags : dict, optional
        Extra version tags.
    tracking_uri : str, optional
        MLflow tracking URI (default: :func:`noctis_lab.ai.tracking_uri`).

    Raises
    ------
    ModelCheckError
        The file fails a check (missing, hash mismatch, unsafe, wrong output...).
    """
    p = Path(path)
    if spec is None:
        side = spec_sidecar(p)
        if not side.is_file():
            raise ModelCheckError(f"{p}: no ModelSpec given and no sidecar {side.name}")
        spec = ModelSpec.model_validate_json(side.read_text())
    if not p.is_file():
        raise ModelCheckError(f"{p}: model file does not exist")
    digest = sha256_file(p)
    if spec.sha256 is None:
        spec = spec.model_copy(update={"sha256": digest})
    report = check_model_file(p, spec)
    if report.status == "error":
        reasons = "; ".join(c.detail for c in report.checks if c.state == "fail")
        raise ModelCheckError(f"{p}: refused for registration: {reasons}")
    mlflow = import_mlflow()
    uri = _resolve_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = ensure_experiment(EXPERIMENT_PREFIX + name, uri)
    run = client.create_run(
        exp_id, run_name=f"register {name}", tags={"noctis.kind": "registration"}
    )
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        shutil.copy2(p, folder / p.name)
        spec_sidecar(folder / p.name).write_text(spec.model_dump_json(indent=1))
        client.log_artifacts(run_id, str(folder), artifact_path="model")
    client.log_param(run_id, "sha256", spec.sha256)
    client.log_param(run_id, "file", p.name)
    model_id, model_source = _log_pyfunc_model(client, exp_id, run_id, name, p, spec)
    client.set_terminated(run_id)
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(
            name,
            tags={
                "noctis.task": spec.task.value,
                "noctis.modality": spec.modality,
                "noctis.body_part": spec.body_part,
            },
            description=spec.description or None,
        )
    version_tags = {**spec.to_tags(), "noctis.file": p.name, **(tags or {})}
    mv = client.create_model_version(
        name,
        source=model_source,
        run_id=run_id,
        tags={**version_tags, "noctis.model_id": model_id},
        description=spec.description or None,
        model_id=model_id,
    )
    if alias is not None:
        client.set_registered_model_alias(name, alias, mv.version)
    return resolve_model(f"{name}/{mv.version}", tracking_uri=uri)


def _log_pyfunc_model(
    client: Any, exp_id: str, run_id: str, name: str, path: Path, spec: ModelSpec
) -> tuple[str, str]:
    """Log the file as an MLflow (pyfunc) model of the registration run.

    Returns its id and artifact location (the version's source: the registry need not
    resolve the id).

    The MLflow model loads through :mod:`noctis_lab.ai._pyfunc` (safe formats, hash
    verified, no pickle), so ``mlflow.pyfunc.load_model("models:/NAME@alias")`` predicts.
    """
    from noctis_lab.ai._pyfunc import save_pyfunc_model

    logged = client.create_logged_model(
        exp_id,
        name=name,
        source_run_id=run_id,
        tags={"noctis.task": spec.task.value, "noctis.format": spec.format},
        model_type=f"noctis-{spec.task.value}",
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = save_pyfunc_model(path, spec, Path(tmp) / "mlflow-model")
            client.log_model_artifacts(logged.model_id, str(out))
    except Exception:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    client.finalize_logged_model(logged.model_id, "READY")
    return str(logged.model_id), str(logged.artifact_location)


def _parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    ref = ref.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.rsplit("@", 1)
        return name, None, alias
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        if version.isdigit():
            return name, version, None
    return ref, None, None


def resolve_model(ref: str, *, tracking_uri: str | None = None) -> RegisteredModelVersion:
    """Find a registered version: ``name`` (@champion, else latest), ``name@alias``, ``name/3``.

    The model file is located in the run's artifacts (directly for local stores, downloaded
    to a temporary folder otherwise). Nothing is loaded.

    Raises
    ------
    ModelCheckError
        No such model, alias or version.
    """
    mlflow = import_mlflow()
    uri = _resolve_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name, version, alias = _parse_ref(ref)
    try:
        rm = client.get_registered_model(name)
    except Exception:
        raise ModelCheckError(f"no registered model named {name!r} in {uri}") from None
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        elif version is not None:
            mv = client.get_model_version(name, version)
        elif "champion" in (rm.aliases or {}):
            mv = client.get_model_version_by_alias(name, "champion")
        else:
            versions = client.search_model_versions(f"name='{name}'")
            mv = max(versions, key=lambda v: int(v.version))
    except Exception:
        what = f"alias @{alias}" if alias else f"version {version}"
        raise ModelCheckError(f"registered model {name!r} has no {what}") from None
    tags = dict(mv.tags or {})
    spec = ModelSpec.from_tags(tags)
    fname = tags.get("noctis.file", "model.pt")
    run_id = str(mv.run_id)
    art = client.get_run(run_id).info.artifact_uri
    parsed = urlparse(art)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path)) / "model" / fname
    else:  # remote artifact store: download to a temporary folder
        dst = tempfile.mkdtemp(prefix="noctis-model-")
        path = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"model/{fname}", dst_path=dst, tracking_uri=uri
            )
        )
    aliases = tuple(a for a, v in (rm.aliases or {}).items() if str(v) == str(mv.version))
    model_id = str(getattr(mv, "model_id", None) or tags.get("noctis.model_id", ""))
    return RegisteredModelVersion(name, str(mv.version), spec, path, aliases, run_id, model_id)


def check_model(path_or_name: str | Path, *, tracking_uri: str | None = None) -> CheckReport:
    """Check a model file path, or a registered model (``name``, ``name@alias``, ``name/3``).

    For a registered model the registered spec (hash, shapes) is used. A reference that is
    neither an existing path nor a registered model gives an ``error`` report naming it;
    this function does not raise for bad files or names.
    """
    p = Path(path_or_name)
    if p.exists() or p.suffix in (".pt", ".pt2", ".pth", ".ts", ".pkl", ".onnx", ".safetensors"):
        return check_model_file(p)
    try:
        mv = resolve_model(str(path_or_name), tracking_uri=tracking_uri)
    except ModelCheckError as exc:
        return check_model_file(p, target=f"{path_or_name} ({exc})")
    report = check_model_file(mv.path, mv.spec, target=f"{mv.name}/{mv.version} ({mv.path})")
    return replace(report, extra={**report.extra, "registered": f"{mv.name}/{mv.version}"})


def list_models(*, tracking_uri: str | None = None) -> tuple[ModelInfo, ...]:
    """All registered models (an empty tuple for an empty store), sorted by name."""
    mlflow = import_mlflow()
    client = mlflow.MlflowClient(tracking_uri=_resolve_uri(tracking_uri))
    out = []
    for rm in client.search_registered_models(max_results=1000):
        tags = dict(rm.tags or {})
        versions = [int(v.version) for v in (rm.latest_versions or [])]
        out.append(
            ModelInfo(
                name=rm.name,
                task=tags.get("noctis.task", ""),
                modality=tags.get("noctis.modality", ""),
                body_part=tags.get("noctis.body_part", ""),
                latest_version=str(max(versions)) if versions else "",
                aliases={a: str(v) for a, v in (rm.aliases or {}).items()},
                description=rm.description or "",
            )
        )
    return tuple(sorted(out, key=lambda m: m.name))
