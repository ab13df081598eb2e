"""Evaluation-harness overhead: ``noctis_lab.ai`` evaluation vs a bare loop of forward passes.

Peer: a bare ``for`` loop over the same batches of the same model on the same in-memory
images (``torch.inference_mode``), which is the least any evaluation must do. Ours: the
full harness (batching, post-processing, the task metrics and 1000 bootstrap resamples),
timed without MLflow logging; one logged run is timed separately and reported on its own.

Rows: the tiny demo classifier and segmenter (64x64), a 256x256 classifier (MONAI
``Classifier``, channels 16-256, random weights, on the demo classification set up-sampled
4x), and a clinically sized segmenter at 256x256: a MONAI ``UNet`` (channels 16-256, 4
down-samplings, 2 residual units; random weights) whose cost is the forward pass. Random
weights segment speckle (about 90 times the true edge length), which would inflate the
surface-distance work, so the row's masks come from the trained demo segmenter run on the 4x
down-sampled image and up-sampled back (the UNet output is added with weight 0: computed,
not used). Its test set is the demo segmentation set up-sampled 4x (spacing / 4: the same
anatomy in mm).

A second peer for the segmentation metrics: MONAI's ``compute_hausdorff_distance`` plus
``compute_surface_dice`` (each finds edges and distances itself) vs our one pass per case;
the values must be equal.

Both wall time (min of the repeats, interleaved) and this process's CPU seconds (all
threads) are reported: on a shared machine the wall ratio mostly measures other processes'
load; the load average is printed with each row. The overhead least sensitive to load: the
CPU seconds of the harness run on the model's recorded outputs (a replay module, no forward
pass) over the CPU seconds of the bare loop.

Run: ``.venv/bin/python bench/bench_ai_eval.py [--n 2000] [--n-seg 200] [--n-unet 24]
[--n-cls256 48] [--repeat 3]``
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
    ap.add_argument("--n-unet", type=int, default=24, help="test images (256x256 UNet)")
    ap.add_argument(
        "--n-cls256", type=int, default=48, help="test images (256x256 classifier; 0: skip)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from noctis_lab.ai import ModelSpec, load_test_set, save_model
    from noctis_lab.ai._checks import load_model
    from noctis_lab.ai._demo_data import make_batch, write_test_set
    from noctis_lab.ai._nets import train_network
    from noctis_lab.ai._runners import TorchRunner

    torch.set_num_threads(2)
    print(f"load average at start: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
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
            tmp / f"{task}.safetensors",
            ModelSpec(
                task=task,
                format="safetensors",
                factory=factory,
                output_shape=(1, 1) if task == "classification" else (1, 1, 64, 64),
            ),
        )
        module = load_model(tmp / f"{task}.safetensors", spec)  # in-process weights
        ts = load_test_set(write_test_set(tmp / task, task, n, seed=3))  # type: ignore[arg-type]

        results.append(_measure(task, module, spec, ts, tmp, args.repeat))
        if task == "classification" and args.n_cls256 > 0:
            net256, spec256, ts256 = _classifier_row(spec, ts, args.n_cls256)
            results.append(_measure("cls CNN 256²", net256, spec256, ts256, tmp, args.repeat))
        if task == "segmentation":
            _distance_peer(module, ts)
            assert isinstance(module, TorchRunner)
            unet, spec256, ts256 = _unet_row(module.module, spec, ts, args.n_unet)
            results.append(_measure("seg UNet 256²", unet, spec256, ts256, tmp, args.repeat))
    print(
        f"{'row':15} {'cases':>6} {'bare loop s':>12} {'harness s':>10} {'ratio':>7} "
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


def _classifier_row(spec: Any, ts: Any, n: int) -> tuple[Any, Any, Any]:
    """The 256x256 classification row: a MONAI ``Classifier`` (channels 16-256, 4
    down-samplings, 2 residual units; random weights, sigmoid output) on the demo
    classification set up-sampled 4x (its labels)."""
    import dataclasses

    import numpy as np
    import torch
    from monai.networks.nets import Classifier

    from noctis_lab.ai import TestSet

    torch.manual_seed(0)
    body = Classifier(
        (1, 256, 256), 1, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2
    )
    net = torch.nn.Sequential(body, torch.nn.Sigmoid()).eval()
    up = np.ones((4, 4), np.float32)
    cases = tuple(
        dataclasses.replace(c, image=np.kron(c.image, up), spacing=tuple(v / 4 for v in c.spacing))
        for c in ts.cases[:n]
    )
    ts256 = TestSet(ts.name + "-256", ts.task, cases, ts.sha256, ts.classes, ts.path)
    spec256 = spec.model_copy(update={"input_shape": (1, 1, 256, 256)})
    n_params = sum(p.numel() for p in net.parameters())
    print(f"  cls CNN 256²: MONAI Classifier, {n_params / 1e6:.2f} M parameters, {n} cases")
    return net, spec256, ts256


def _unet_row(demo: Any, spec: Any, ts: Any, n: int) -> tuple[Any, Any, Any]:
    """The 256x256 row: MONAI UNet cost, demo-segmenter masks, the demo set up-sampled 4x."""
    import dataclasses

    import numpy as np
    import torch
    import torch.nn.functional as F
    from monai.networks.nets import UNet

    from noctis_lab.ai import TestSet

    torch.manual_seed(0)
    unet = UNet(2, 1, 1, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
    unet.eval()

    class Realistic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, x: Any) -> Any:
            heavy = self.unet(x)  # the clinically sized forward pass (timed)
            masks = F.interpolate(demo(F.avg_pool2d(x, 4)), scale_factor=4, mode="nearest")
            return masks + 0.0 * heavy

    up = np.ones((4, 4), np.float32)
    cases = tuple(
        dataclasses.replace(
            c,
            image=np.kron(c.image, up),
            mask=np.kron(c.mask, up).astype(bool),
            spacing=tuple(v / 4 for v in c.spacing),
        )
        for c in ts.cases[:n]
    )
    ts256 = TestSet(ts.name + "-256", ts.task, cases, ts.sha256, ts.classes, ts.path)
    spec256 = spec.model_copy(
        update={"input_shape": (1, 1, 256, 256), "output_shape": (1, 1, 256, 256)}
    )
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"  seg UNet 256²: MONAI UNet, {n_params / 1e6:.2f} M parameters, {len(cases)} cases")
    return Realistic().eval(), spec256, ts256


def _distance_peer(module: Any, ts: Any) -> None:
    """MONAI's two distance functions vs our one pass per case, on the demo outputs."""
    import warnings

    import numpy as np
    import torch
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    from noctis_lab.ai._evaluate import predict
    from noctis_lab.ai._metrics import segmentation_metrics

    masks = predict(module, ts.images())[:, 0] >= 0.5
    gts = np.stack([c.mask for c in ts.cases]).astype(bool)
    ok = masks.any(axis=(1, 2)) & gts.any(axis=(1, 2))
    spacing = [list(c.spacing) for c in ts.cases]
    sp_ok = [spacing[j] for j in np.flatnonzero(ok).tolist()]
    yp = torch.from_numpy(masks[ok][:, None].astype(np.float32))
    yt = torch.from_numpy(gts[ok][:, None].astype(np.float32))
    ref: list[Any] = []

    def monai_two() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hd = compute_hausdorff_distance(yp, yt, True, percentile=95, spacing=sp_ok)
            nsd = compute_surface_dice(yp, yt, [1.0], include_background=True, spacing=sp_ok)
        ref[:] = [hd.numpy().ravel(), nsd.numpy().ravel()]

    out: list[Any] = []

    def ours() -> None:
        out[:] = [segmentation_metrics(masks, gts, spacing=spacing, n_boot=0)]

    t_monai = min(_time(monai_two) for _ in range(3))
    t_ours = min(_time(ours) for _ in range(3))  # includes Dice, IoU and the means
    same = np.array_equal(out[0].per_case["hd95_mm"][ok], ref[0]) and np.array_equal(
        out[0].per_case["nsd"][ok], ref[1]
    )
    print(
        f"  segmentation distances, {int(ok.sum())} cases: MONAI compute_hausdorff_distance + "
        f"compute_surface_dice {t_monai:.3f} s; our segmentation_metrics (one pass, + Dice/IoU) "
        f"{t_ours:.3f} s; ratio {t_ours / t_monai:.2f}; values equal: {same}"
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

    with torch.inference_mode():
        recorded = torch.cat([module(x[s : s + 64]) for s in range(0, len(x), 64)])

    class Replay(torch.nn.Module):
        """The model's own outputs, replayed: the harness's work without the forward pass."""

        def __init__(self) -> None:
            super().__init__()
            self.at = 0

        def forward(self, batch: Any) -> Any:
            out = recorded[self.at : self.at + len(batch)]
            self.at = (self.at + len(batch)) % len(recorded)
            return out

    def harness_only() -> None:
        evaluate_loaded(
            Replay(), spec, ts, model_name="bench", model_version="1", log_to_mlflow=False
        )

    bare()
    ours()  # warm-up (imports, first-call costs)
    harness_only()
    t_bare, t_ours, c_bare, c_ours, c_extra = [], [], [], [], []
    for _ in range(repeat):  # interleaved, so both see the same machine load
        t_bare.append(_time(bare))
        t_ours.append(_time(ours))
        c_bare.append(_cpu(bare))
        c_ours.append(_cpu(ours))
        c_extra.append(_cpu(harness_only))
    split = last[0].timings
    print(
        f"  {task}: harness split of the last run: inference {split['inference']:.3f} s, "
        f"metrics+bootstrap {split['metrics']:.3f} s; CPU seconds (all threads, min of "
        f"{repeat}): bare {min(c_bare):.3f}, harness {min(c_ours):.3f} (ratio "
        f"{min(c_ours) / min(c_bare) - 1:+.1%}); harness without the forward pass (outputs "
        f"replayed) {min(c_extra):.3f} = {min(c_extra) / min(c_bare):.1%} of the bare loop; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return task, len(ts), min(t_bare), min(t_ours), _time(logged)


def _time(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def _cpu(fn: object) -> float:
    """CPU seconds of this process (all threads) for one call: on a shared machine it
    counts our work, not the time other processes held the cores."""
    t = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t


if __name__ == "__main__":
    main()
