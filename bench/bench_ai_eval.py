"""Evaluation-harness overhead: ``noctis_lab.ai`` evaluation vs a bare loop of forward passes.

Peer: a bare ``for`` loop over the same batches of the same model on the same in-memory
images (``torch.inference_mode``), which is the least any evaluation must do. Ours: the
full harness (batching, post-processing, the task metrics and 1000 bootstrap resamples),
timed without MLflow logging; one logged run is timed separately and reported on its own.

Run: ``.venv/bin/python bench/bench_ai_eval.py [--n 2000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000, help="test images (classification)")
    ap.add_argument("--n-seg", type=int, default=200, help="test images (segmentation)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from noctis_lab.ai import ModelSpec, load_model, load_test_set, save_model
    from noctis_lab.ai._demo_data import make_batch, write_test_set
    from noctis_lab.ai._nets import train_network

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ai-"))
    train = make_batch(192, seed=1)
    results = []
    for task, factory, n in (
        ("classification", "noctis.tiny_classifier", args.n),
        ("segmentation", "noctis.tiny_segmenter", args.n_seg),
    ):
        target = train.artifact[:, None] if task == "classification" else train.masks[:, None]
        net = train_network(factory, train.images, target.astype(np.float32), epochs=1, seed=0)
        spec = save_model(
            net,
            tmp / f"{task}.pt2",
            ModelSpec(
                task=task,
                factory=factory,
                output_shape=(1, 1) if task == "classification" else (1, 1, 64, 64),
            ),
        )
        module = load_model(tmp / f"{task}.pt2", spec)
        ts = load_test_set(write_test_set(tmp / task, task, n, seed=3))  # type: ignore[arg-type]

        results.append(_measure(task, module, spec, ts, tmp, args.repeat))
    print(
        f"{'task':15} {'cases':>6} {'bare loop s':>12} {'harness s':>10} {'ratio':>7} "
        f"{'overhead':>9} {'+MLflow run s':>14}"
    )
    for task, n, tb, to, tl in results:
        print(
            f"{task:15} {n:6d} {tb:12.3f} {to:10.3f} {to / tb:7.3f} {(to / tb - 1):9.1%} {tl:14.3f}"
        )
    print(
        "harness = forward passes + post-processing + metrics + 1000 bootstrap resamples, "
        "no MLflow; '+MLflow run' = the same with run logging and plots."
    )


def _measure(
    task: str, module: Any, spec: Any, ts: Any, tmp: Path, repeat: int
) -> tuple[str, int, float, float, float]:
    import torch

    from noctis_lab.ai._evaluate import evaluate_loaded

    x = torch.from_numpy(ts.images()).unsqueeze(1)

    def bare() -> None:
        with torch.inference_mode():
            for s in range(0, len(x), 64):
                module(x[s : s + 64])

    last: list[Any] = []

    def ours() -> None:
        last[:] = [
            evaluate_loaded(
                module,
                spec,
                ts,
                model_name="bench",
                model_version="1",
                n_boot=1000,
                log_to_mlflow=False,
            )
        ]

    def logged() -> None:
        evaluate_loaded(
            module,
            spec,
            ts,
            model_name="bench",
            model_version="1",
            n_boot=1000,
            tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        )

    bare()
    ours()  # warm-up (imports, first-call costs)
    t_bare, t_ours = [], []
    for _ in range(repeat):  # interleaved, so both see the same machine load
        t_bare.append(_time(bare))
        t_ours.append(_time(ours))
    split = last[0].timings
    print(
        f"  {task}: harness split of the last run: inference {split['inference']:.3f} s, "
        f"metrics+bootstrap {split['metrics']:.3f} s"
    )
    return task, len(ts), min(t_bare), min(t_ours), _time(logged)


def _time(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
