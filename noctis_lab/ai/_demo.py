"""The AI part of the demo: train three tiny models, register, evaluate, build a history.

Everything is real and seeded: the models are trained here on synthetic images, evaluated
on fresh synthetic test sets, and the classifier's later test sets carry more noise, so its
degradation in the run history is true. Analyses run the models on studies (some of them
broken on purpose: NaN pixels, wrong size) and feedback compares results with the known
ground truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from noctis_lab import _paths

if TYPE_CHECKING:
    from noctis_lab.ai._analysis import AnalysisRecord, Analyzer
    from noctis_lab.ai._demo_data import DemoBatch

__all__ = ["DEMO_MODELS", "DemoResult", "build_demo"]

#: registered name -> (task, factory, training epochs)
DEMO_MODELS: dict[str, tuple[str, str, int]] = {
    "artifact-classifier": ("classification", "noctis.tiny_classifier", 10),
    "insert-detector": ("detection", "noctis.heatmap_detector", 5),
    "insert-segmenter": ("segmentation", "noctis.tiny_segmenter", 4),
}
#: noise of the classifier's successive monitoring test sets (the degradation)
CLASSIFIER_NOISE = (0.05, 0.05, 0.08, 0.15, 0.25, 0.35)


@dataclass(frozen=True)
class DemoResult:
    """What :func:`build_demo` made."""

    out_dir: Path
    tracking_uri: str
    db_url: str
    models: dict[str, str]  # name -> registered version
    runs: dict[str, list[str]]  # name -> evaluation run ids, oldest first
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return {
            "out_dir": str(self.out_dir),
            "tracking_uri": self.tracking_uri,
            "db_url": self.db_url,
            "models": dict(self.models),
            "runs": {k: list(v) for k, v in self.runs.items()},
            "seconds": dict(self.seconds),
        }


def build_demo(
    out_dir: str | Path,
    *,
    tracking_uri: str | None = None,
    db_url: str | None = None,
    progress: bool = True,
    n_boot: int = 1000,
    cache_dir: str | Path | None = None,
) -> DemoResult:
    """Train, register and evaluate the three demo models and record a history.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the model files and test sets (``<out_dir>/ai/...``).
    tracking_uri : str, optional
        MLflow store (default: :func:`noctis_lab.ai.tracking_uri`).
    db_url : str, optional
        Analyses/feedback database (default: :func:`noctis_lab.ai.db_url`).
    progress : bool
        Show a tqdm progress bar.
    n_boot : int
        Bootstrap resamples per evaluation.
    cache_dir : str or Path, optional
        Where trained demo weights are kept (safetensors, keyed by the training inputs, the
        training code and the torch version; default ``<home>/data/cache``): a second demo
        build skips the training, which is seeded and gives the same weights anyway.
    """
    import torch
    from tqdm.auto import tqdm

    from noctis_lab.ai._config import db_url as resolve_db
    from noctis_lab.ai._config import tracking_uri as resolve_uri

    cache = Path(cache_dir) if cache_dir is not None else _paths.home() / "data" / "cache"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    root = Path(out_dir) / "ai"
    root.mkdir(parents=True, exist_ok=True)
    steps = 3 + 3 + len(CLASSIFIER_NOISE) + 2 * 3 + 1
    bar = tqdm(total=steps, desc="AI demo", disable=not progress)
    ctx = _DemoRun(root, resolve_uri(tracking_uri), resolve_db(db_url), bar)
    secs: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        _train_models(ctx, cache)
        secs["training"] = time.perf_counter() - t0
        models = _register_models(ctx)
        t0 = time.perf_counter()
        runs = _baseline_evaluations(ctx, n_boot)
        secs["evaluation"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _record_analyses(ctx)
        secs["analyses"] = time.perf_counter() - t0
        bar.update()
    finally:
        bar.close()
        torch.set_num_threads(threads)
    return DemoResult(Path(out_dir), ctx.uri, ctx.db_url, models, runs, secs)


@dataclass(frozen=True)
class _DemoRun:
    """Where one demo build writes: its folder, MLflow store, database and progress bar."""

    root: Path
    uri: str
    db_url: str
    bar: Any


def _training_target(
    task: str, train: DemoBatch, n: int
) -> tuple[npt.NDArray[np.float32], tuple[int, ...], dict[str, Any]]:
    """The training target, output shape and training options of a demo task."""
    from noctis_lab.ai._nets import detection_target

    if task == "classification":
        target = train.artifact[:n, None].astype(np.float32)
        return target, (1, 1), {"lr": 3e-3, "batch_size": 32}
    if task == "detection":
        target = detection_target(train.centres[:n], train.images.shape[-1])
        return target, (1, 1, 64, 64), {"lr": 3e-3, "batch_size": 8, "pos_weight": 20.0}
    target = train.masks[:n, None].astype(np.float32)
    return target, (1, 1, 64, 64), {"lr": 1e-2, "batch_size": 8, "dice_loss": True}


def _train_models(ctx: _DemoRun, cache: Path) -> None:
    """Step 1: train (or take from the cache) and save the three demo models with specs."""
    from noctis_lab.ai._demo_data import make_batch
    from noctis_lab.ai._registry import save_model
    from noctis_lab.ai._spec import ModelSpec

    train = make_batch(384, seed=1)
    for name, (task, factory, epochs) in DEMO_MODELS.items():
        ctx.bar.set_postfix_str(f"training {name}")
        n = 384 if task == "classification" else 192
        target, out_shape, kw = _training_target(task, train, n)
        net = _trained(factory, train.images[:n], target, epochs, kw, cache)
        spec = ModelSpec(
            task=task,
            format="safetensors",
            factory=factory,
            modality="CT",
            body_part="phantom",
            version="1.0.0",
            output_shape=out_shape,
            classes=("no_artifact", "artifact") if task == "classification" else (),
            threshold=0.3 if task == "detection" else 0.5,
            description=f"Demo {task} model trained on synthetic 64x64 phantom slices.",
        )
        save_model(net, ctx.root / "models" / f"{name}.safetensors", spec)
        ctx.bar.update()


def _register_models(ctx: _DemoRun) -> dict[str, str]:
    """Step 2: register each saved model; its registered version by name."""
    from noctis_lab.ai._registry import register_model

    models: dict[str, str] = {}
    for name in DEMO_MODELS:
        path = ctx.root / "models" / f"{name}.safetensors"
        models[name] = register_model(path, name, tracking_uri=ctx.uri).version
        ctx.bar.update()
    return models


def _baseline_evaluations(ctx: _DemoRun, n_boot: int) -> dict[str, list[str]]:
    """Step 3: evaluate each model on a test set per period (the history); run ids by name."""
    from noctis_lab.ai._demo_data import write_test_set
    from noctis_lab.ai._evaluate import evaluate
    from noctis_lab.ai._manifest import load_test_set

    runs: dict[str, list[str]] = {name: [] for name in DEMO_MODELS}
    sets = ctx.root / "testsets"
    for name, (task, _, _) in DEMO_MODELS.items():
        noises = CLASSIFIER_NOISE if task == "classification" else (0.05,) * 3
        for period, noise in enumerate(noises):
            ctx.bar.set_postfix_str(f"evaluating {name} #{period + 1}")
            manifest = write_test_set(
                sets / f"{task}-{period + 1:02d}",
                task,  # type: ignore[arg-type]
                120 if task != "classification" else 200,
                seed=1000 + 10 * period,
                noise=noise,
                fmt="json",
                name=f"{task}-monitoring",
            )
            res = evaluate(
                name,
                load_test_set(manifest),
                tracking_uri=ctx.uri,
                n_boot=n_boot,
                seed=period,
                run_name=f"{name} period {period + 1}",
                tags={
                    "noctis.period": f"{period + 1}",
                    "noctis.noise": f"{noise:g}",
                    "noctis.baseline": "true" if period == 0 else "false",
                },
            )
            runs[name].append(str(res.run_id))
            ctx.bar.update()
    return runs


def _record_analyses(ctx: _DemoRun) -> None:
    """Step 4: analyses of studies, feedback against the ground truth, a reviewed report."""
    from noctis_lab.ai._analysis import Analyzer
    from noctis_lab.ai._demo_data import make_batch
    from noctis_lab.ai._store import utcnow

    now = utcnow()
    studies = make_batch(24, seed=77)
    for name, (task, _, _) in DEMO_MODELS.items():
        an = Analyzer.open(name, tracking_uri=ctx.uri)
        for i in range(len(studies.images)):
            created = now - timedelta(hours=6 * (len(studies.images) - i))
            _analyze_study(ctx, an, name, task, studies, i, created)
        ctx.bar.update()


def _analyze_study(
    ctx: _DemoRun,
    an: Analyzer,
    name: str,
    task: str,
    studies: DemoBatch,
    i: int,
    created: datetime,
) -> None:
    """One study analysed, with feedback on every third and a report on the first.

    Parameters
    ----------
    ctx : _DemoRun
        The demo build.
    an : Analyzer
        The model's analyzer.
    name, task : str
        The model's name and task.
    studies : DemoBatch
        The studies, with their ground truth.
    i : int
        The study's index (studies 5 and 17 of the detector and 9 of the segmenter are
        broken on purpose: their failures are recorded too).
    created : datetime
        When the analysis is recorded as made.
    """
    from noctis_lab.ai._analysis import record_feedback
    from noctis_lab.ai._demo_data import PIXEL_SPACING_MM

    img = studies.images[i]
    if task == "detection" and i in (5, 17):
        img = img.copy()
        img[10:20, 10:20] = np.nan  # a broken study: fails, and is recorded
    if task == "segmentation" and i == 9:
        img = img[:32]  # a truncated study
    rec = an.analyze(
        img,
        study_uid=f"1.2.826.0.1.3680043.10.1.{i}",
        spacing=PIXEL_SPACING_MM,
        created_at=created,
        db_url=ctx.db_url,
    )
    if rec.status != "success" or i % 3:
        return
    verdict = _verdict(task, rec.findings, studies, i)
    record_feedback(
        name,
        an.version,
        verdict,
        rating=5 if verdict == "agree" else 2,
        comment="demo feedback from ground truth",
        analysis_id=rec.id,
        user="demo-clinician",
        db_url=ctx.db_url,
    )
    if i == 0:
        _reviewed_report(ctx, an, name, task, rec)


def _reviewed_report(
    ctx: _DemoRun, an: Analyzer, name: str, task: str, rec: AnalysisRecord
) -> None:
    """A report of an analysis, submitted and approved by the demo physicist."""
    from noctis_lab.ai._report import render_report, review_report, submit_report

    text = render_report(
        task, rec.findings, confidence=rec.confidence, model=f"{name} v{an.version}"
    )
    rep = submit_report(
        text, model_name=name, model_version=an.version, analysis_id=rec.id, db_url=ctx.db_url
    )
    review_report(
        rep.report_id,
        "approved",
        reviewer="demo-physicist",
        note="checked against the phantom map",
        db_url=ctx.db_url,
    )


def _trained(
    factory: str,
    images: np.ndarray,
    target: np.ndarray,
    epochs: int,
    kw: dict[str, Any],
    cache: Path,
) -> Any:
    """The demo network, trained with seed 7.

    Taken from the weights cache when the same training (inputs, code, torch version)
    was done before; loaded as tensors only.
    """
    import hashlib
    import json

    import torch
    from safetensors.torch import load_file, save_file

    from noctis_lab.ai import _demo_data, _nets
    from noctis_lab.ai._nets import build_network, train_network

    h = hashlib.sha256()
    h.update(json.dumps([factory, epochs, kw, torch.__version__], sort_keys=True).encode())
    for module in (_nets, _demo_data):
        h.update(Path(str(module.__file__)).read_bytes())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(target).tobytes())
    path = cache / f"ai-demo-{factory}-{h.hexdigest()[:20]}.safetensors"
    if path.is_file():
        net = build_network(factory)
        try:
            net.load_state_dict(load_file(str(path)), strict=True)
            return net.eval()
        except Exception:  # a damaged cache entry: train again and replace it
            path.unlink(missing_ok=True)
    net = train_network(factory, images, target, epochs=epochs, seed=7, **kw)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(path)
    return net


def _verdict(task: str, findings: dict[str, Any], truth: Any, i: int) -> Any:
    if task == "classification":
        pos, true = bool(findings["positive"]), bool(truth.artifact[i])
        return "agree" if pos == true else ("false_positive" if pos else "false_negative")
    if task == "detection":
        n_true = len(truth.centres[i])
        n = int(findings["count"])
        return "agree" if n == n_true else ("false_positive" if n > n_true else "false_negative")
    px, true_px = int(findings["pixels"]), int(truth.masks[i].sum())
    if abs(px - true_px) <= 0.2 * max(true_px, 1):
        return "agree"
    return "false_positive" if px > true_px else "false_negative"
