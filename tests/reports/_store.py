"""Build a SMALL real store for the report and dashboard tests (and the benchmarks).

HU: six synthetic CatPhan series of two demo scanners (the HU helper's demo plan: one
stable, one failing on its last dates), written as DICOM, analysed and recorded in the
calibration history. AI: one tiny classifier trained briefly on synthetic slices,
registered in MLflow, evaluated on four test sets of rising noise (so degradation is
real), a dozen analyses recorded and two feedback entries. All through the owning
subsystems' public functions.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

HU_SCANNERS = ("ct-onc-1", "ct-rt-4")
AI_MODEL = "tiny-artifact-classifier"


def build_store(home: Path, *, ai: bool = True) -> dict[str, object]:
    """Write the store under ``home`` (``data/``, ``mlflow/``, ``series/``); return facts."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "data").mkdir(exist_ok=True)
    (home / "mlflow").mkdir(exist_ok=True)
    old = {k: os.environ.get(k) for k in ("NOCTIS_HOME", "NOCTIS_DB_URL", "MLFLOW_TRACKING_URI")}
    os.environ["NOCTIS_HOME"] = str(home)
    os.environ.pop("NOCTIS_DB_URL", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        facts: dict[str, object] = {"hu": _build_hu(home)}
        if ai:
            facts["ai"] = _build_ai(home)
        return facts
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _build_hu(home: Path) -> dict[str, str]:
    from noctis_lab.dicom import load_series
    from noctis_lab.hu import analyze
    from noctis_lab.hu._demo_set import demo_plan
    from noctis_lab.hu.history import CalibrationHistory
    from noctis_lab.hu.synthetic import generate, write

    plan = [
        p
        for p in demo_plan()
        if p["slug"] in HU_SCANNERS
        and p["scenario"] != "reference"
        and p["date"].isoformat() >= "2026-09-01"
    ]
    history = CalibrationHistory()
    statuses: dict[str, str] = {}
    for p in plan:
        series = generate(p["phantom"], **p["kwargs"])
        folder = write(series, home / "series" / p["slug"] / p["date"].isoformat(), overwrite=True)
        result = analyze(load_series(folder), phantom=p["phantom"], profile="seed")
        history.record(result, operator="test")
        statuses[result.scanner.key] = result.status
    history.close()
    return statuses


def _build_ai(home: Path) -> dict[str, object]:
    import numpy as np
    import torch

    from noctis_lab.ai import (
        Analyzer,
        ModelSpec,
        evaluate,
        load_test_set,
        record_feedback,
        register_model,
        save_model,
    )
    from noctis_lab.ai._demo_data import PIXEL_SPACING_MM, make_batch, write_test_set
    from noctis_lab.ai._nets import train_network
    from noctis_lab.ai._store import utcnow

    torch.set_num_threads(1)
    root = home / "ai"
    train = make_batch(192, seed=1)
    net = train_network(
        "noctis.tiny_classifier",
        train.images,
        train.artifact[:, None].astype(np.float32),
        epochs=4,
        seed=7,
        lr=3e-3,
        batch_size=32,
    )
    spec = ModelSpec(
        task="classification",
        format="safetensors",
        factory="noctis.tiny_classifier",
        modality="CT",
        body_part="phantom",
        version="1.0.0",
        output_shape=(1, 1),
        classes=("no_artifact", "artifact"),
        threshold=0.5,
        description="Test classifier trained briefly on synthetic 64x64 slices.",
    )
    save_model(net, root / "model.safetensors", spec)
    mv = register_model(root / "model.safetensors", AI_MODEL)
    runs = []
    for period, noise in enumerate((0.05, 0.05, 0.25, 0.4)):
        manifest = write_test_set(
            root / f"set-{period}",
            "classification",
            60,
            seed=100 + period,
            noise=noise,
            fmt="json",
            name="ai-monitoring",  # fresh draws of one monitoring set: one history
        )
        res = evaluate(
            AI_MODEL,
            load_test_set(manifest),
            n_boot=50,
            seed=period,
            plots=False,
            run_name=f"period {period + 1}",
            tags={"noctis.period": str(period + 1), "noctis.baseline": str(period == 0).lower()},
        )
        runs.append(res.run_id)
    studies = make_batch(10, seed=77)
    analyzer = Analyzer.open(AI_MODEL)
    now = utcnow()
    ids = []
    for i in range(len(studies.images)):
        img = studies.images[i]
        if i == 4:
            img = img.copy()
            img[5:9, 5:9] = np.nan  # a broken study: the failure is recorded
        rec = analyzer.analyze(
            img,
            study_uid=f"1.2.826.0.1.3680043.10.99.{i}",
            spacing=PIXEL_SPACING_MM,
            created_at=now - timedelta(hours=3 * (10 - i)),
        )
        ids.append(rec.id)
    record_feedback(AI_MODEL, mv.version, "agree", rating=5, analysis_id=ids[0], user="test")
    record_feedback(
        AI_MODEL, mv.version, "false_positive", rating=2, analysis_id=ids[1], user="test"
    )
    return {"model": AI_MODEL, "version": mv.version, "runs": runs, "analyses": ids}
