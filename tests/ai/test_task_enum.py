"""A model's task stays an enum in specs, test sets and metrics, and serialises as text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from noctis_lab.ai._demo_data import write_test_set
from noctis_lab.ai._manifest import load_test_set
from noctis_lab.ai._metrics import classification_metrics
from noctis_lab.ai._spec import ModelSpec, Task


def test_task_is_an_enum_that_serialises_as_text(tmp_path: Path) -> None:
    spec = ModelSpec(task="detection", format="onnx")
    assert spec.task is Task.DETECTION and spec.task == "detection"
    assert json.loads(spec.model_dump_json())["task"] == "detection"
    ts = load_test_set(write_test_set(tmp_path / "ts", Task.CLASSIFICATION, 6, seed=3))
    assert ts.task is Task.CLASSIFICATION
    y = np.array([0, 1, 0, 1, 1, 0])
    m = classification_metrics(y, np.linspace(0.1, 0.9, 6), n_boot=10)
    assert m.task is Task.CLASSIFICATION
    task = m.to_dict()["task"]
    assert type(task) is str and json.dumps(task) == '"classification"'
