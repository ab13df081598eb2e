"""Tiny demo networks, their named factories, and seeded training on synthetic images.

The factories are what a state-dict model file names (``factory`` in its spec): loading
builds the network from our own code and fills it with
``torch.load(weights_only=True)`` + ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["ENTRY_POINT_GROUP", "FACTORIES", "build_network", "detection_target", "train_network"]


def _classifier() -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 1),
        nn.Sigmoid(),
    )


def _dense() -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=4, dilation=4),
        nn.ReLU(),
        nn.Conv2d(16, 1, 1),
        nn.Sigmoid(),
    )


def _dense_bn() -> Any:
    import torch.nn as nn

    layers: list[Any] = []
    for c_in, dil in ((1, 1), (8, 2), (8, 4)):
        layers += [nn.Conv2d(c_in, 8, 3, padding=dil, dilation=dil), nn.BatchNorm2d(8), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(8, 1, 1), nn.Sigmoid())


#: name -> function building an untrained network (read-only: no module state to mutate)
FACTORIES: Mapping[str, Callable[[], Any]] = MappingProxyType(
    {
        "noctis.tiny_classifier": _classifier,
        "noctis.heatmap_detector": _dense,
        "noctis.tiny_segmenter": _dense_bn,
    }
)


#: Entry-point group under which installed packages can name their architectures.
ENTRY_POINT_GROUP = "noctis_lab.architectures"


def build_network(factory: str) -> Any:
    """Build the untrained network that ``factory`` names, from trusted code only.

    ``factory`` is one of :data:`FACTORIES`, an importable ``package.module:callable`` (code
    the user installed; it is imported anew in every process that loads the model), or the
    name of an entry point in the ``noctis_lab.architectures`` group. Files are never
    imported by path: the architecture comes from the environment, the weights from the file.

    Raises
    ------
    ModelCheckError
        The name cannot be resolved or the callable does not build a ``torch.nn.Module``.
    """
    import importlib
    from importlib.metadata import entry_points

    import torch

    from noctis_lab._errors import ModelCheckError

    fn: Callable[[], Any] | None = FACTORIES.get(factory)
    if fn is None and ":" in factory:
        mod_name, _, attr = factory.partition(":")
        try:
            obj: Any = importlib.import_module(mod_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ModelCheckError(
                f"architecture {factory!r} cannot be imported: {type(exc).__name__}: {exc}"
            ) from None
        fn = obj
    if fn is None:
        eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == factory]
        if eps:
            fn = eps[0].load()
    if fn is None or not callable(fn):
        raise ModelCheckError(
            f"unknown model architecture {factory!r}: give a built-in factory "
            f"({', '.join(sorted(FACTORIES))}), an importable 'package.module:callable', or "
            f"an entry point of group {ENTRY_POINT_GROUP!r}"
        )
    net = fn()
    if not isinstance(net, torch.nn.Module):
        raise ModelCheckError(
            f"architecture {factory!r} returned {type(net).__name__}, not a torch.nn.Module"
        )
    return net


def detection_target(centres: tuple[np.ndarray, ...], size: int, sigma: float = 2.0) -> np.ndarray:
    """Gaussian heatmaps (n, 1, size, size) with a peak of 1 at every centre."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((len(centres), 1, size, size), np.float32)
    for i, pts in enumerate(centres):
        for cy, cx in pts:
            g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
            out[i, 0] = np.maximum(out[i, 0], g)
    return out


def train_network(
    factory: str,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    epochs: int,
    seed: int,
    lr: float = 3e-3,
    batch_size: int = 32,
    pos_weight: float = 1.0,
    dice_loss: bool = False,
) -> Any:
    """Train a fresh network from ``factory`` with binary cross-entropy; seeded, CPU.

    ``targets`` has the network's output shape; ``pos_weight`` up-weights positive pixels
    (heatmaps, masks); ``dice_loss`` adds a soft Dice term (segmentation). Returns the
    trained network in eval mode.
    """
    import torch

    torch.manual_seed(seed)
    torch.set_flush_denormal(True)
    net = build_network(factory)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_all = torch.from_numpy(np.ascontiguousarray(images[:, None], dtype=np.float32))
    y_all = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            pred = net(x_all[idx]).clamp(1e-6, 1 - 1e-6)
            y = y_all[idx]
            w = 1.0 + (pos_weight - 1.0) * y
            loss = torch.nn.functional.binary_cross_entropy(pred, y, weight=w)
            if dice_loss:
                loss = loss + 1 - (2 * (pred * y).sum() + 1) / (pred.sum() + y.sum() + 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    return net
