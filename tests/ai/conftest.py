"""Fixtures of the AI tests: a real MLflow SQLite store, a real analyses database, models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


@pytest.fixture(scope="session")
def ai_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ai")


@pytest.fixture(scope="session")
def tracking(ai_root: Path) -> str:
    """A real MLflow tracking store (SQLite + local artifacts) shared by the session."""
    (ai_root / "mlflow").mkdir()
    return f"sqlite:///{ai_root / 'mlflow' / 'mlflow.db'}"


@pytest.fixture()
def db(tmp_path: Path) -> str:
    """A fresh analyses/feedback database per test."""
    return f"sqlite:///{tmp_path / 'noctis.db'}"


@pytest.fixture(scope="session")
def model_files(ai_root: Path) -> dict[str, Path]:
    """Small (briefly trained or untrained, seeded) models of each task, saved with specs."""
    import numpy as np
    import torch

    from noctis_lab.ai import ModelSpec, save_model
    from noctis_lab.ai._demo_data import make_batch
    from noctis_lab.ai._nets import build_network, train_network

    torch.manual_seed(0)
    batch = make_batch(96, seed=5)
    cls = train_network(
        "noctis.tiny_classifier",
        batch.images,
        batch.artifact[:, None].astype(np.float32),
        epochs=2,
        seed=0,
    )
    out = {}
    out["classification"] = ai_root / "models" / "cls.safetensors"
    save_model(
        cls,
        out["classification"],
        ModelSpec(
            task="classification",
            format="safetensors",
            factory="noctis.tiny_classifier",
            classes=("no_artifact", "artifact"),
        ),
    )
    for task, factory in (
        ("detection", "noctis.heatmap_detector"),
        ("segmentation", "noctis.tiny_segmenter"),
    ):
        torch.manual_seed(1)
        net = build_network(factory)
        out[task] = ai_root / "models" / f"{task}.safetensors"
        save_model(
            net,
            out[task],
            ModelSpec(
                task=task, format="safetensors", factory=factory, output_shape=(1, 1, 64, 64)
            ),
        )
    sd = ai_root / "models" / "cls_state.pt"
    save_model(
        cls,
        sd,
        ModelSpec(task="classification", format="state_dict", factory="noctis.tiny_classifier"),
    )
    out["state_dict"] = sd
    onnx_file = ai_root / "models" / "cls.onnx"
    save_model(
        cls,
        onnx_file,
        ModelSpec(task="classification", format="onnx", classes=("no_artifact", "artifact")),
    )
    out["onnx"] = onnx_file
    ts = ai_root / "models" / "cls_script.pt"
    save_model(cls, ts, ModelSpec(task="classification", format="torchscript"))
    out["torchscript"] = ts
    ex = ai_root / "models" / "cls.pt2"
    save_model(
        cls,
        ex,
        ModelSpec(
            task="classification",
            format="export",
            factory="noctis.tiny_classifier",
            classes=("no_artifact", "artifact"),
        ),
    )
    out["export"] = ex
    return out


@pytest.fixture(scope="session")
def test_sets(ai_root: Path) -> dict[str, Path]:
    """Demo test-set manifests of each task (small)."""
    from noctis_lab.ai._demo_data import write_test_set

    return {
        "classification": write_test_set(ai_root / "ts-cls", "classification", 40, seed=11),
        "detection": write_test_set(ai_root / "ts-det", "detection", 16, seed=12, fmt="json"),
        "segmentation": write_test_set(ai_root / "ts-seg", "segmentation", 16, seed=13),
    }
