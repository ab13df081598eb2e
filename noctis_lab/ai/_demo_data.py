"""Small synthetic phantom-like 2-D images with known ground truth, for the demo models.

Each image is a 64x64 slice of a water disc (0) in air (-1) holding round inserts of
other densities, with Gaussian noise. Ground truth is known by construction:

- classification: whether a ring or streak artifact was drawn (label 1) or not (0);
- detection: the centres (row, col) of the inserts;
- segmentation: the binary mask of the inserts.

This generator is private to :mod:`noctis_lab.ai`; the full CT phantom generator lives in
:mod:`noctis_lab.hu`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from noctis_lab.ai._spec import Task

__all__ = ["IMAGE_SIZE", "PIXEL_SPACING_MM", "DemoBatch", "make_batch", "write_test_set"]

IMAGE_SIZE = 64
#: Pixel spacing (row, col) in mm that the demo images stand for.
PIXEL_SPACING_MM = (1.0, 1.0)
_BODY_RADIUS = 27.0


@dataclass(frozen=True)
class DemoBatch:
    """Images and their ground truth.

    Attributes
    ----------
    images : ndarray, float32, (n, 64, 64)
    artifact : ndarray, int64, (n,)
        1 where a ring/streak artifact was drawn.
    centres : tuple of ndarray (k_i, 2)
        Insert centres (row, col) in pixels, per image.
    masks : ndarray, uint8, (n, 64, 64)
        Insert masks.
    """

    images: npt.NDArray[np.float32]
    artifact: npt.NDArray[np.int64]
    centres: tuple[npt.NDArray[np.float64], ...]
    masks: npt.NDArray[np.uint8]


def make_batch(n: int, *, seed: int, noise: float = 0.05, artifact_rate: float = 0.5) -> DemoBatch:
    """Draw ``n`` synthetic slices.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Seed of the random generator (same seed, same images).
    noise : float
        Standard deviation of the added Gaussian noise (the water/air contrast is 1).
    artifact_rate : float
        Probability that an image carries a ring or streak artifact.
    """
    rng = np.random.default_rng(seed)
    size = IMAGE_SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((n, size, size), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    artifact = (rng.random(n) < artifact_rate).astype(np.int64)
    centres: list[npt.NDArray[np.float64]] = []
    for i in range(n):
        cy, cx = size / 2 + rng.normal(0, 1.0, 2)
        r_body = _BODY_RADIUS + rng.normal(0, 0.8)
        dist = np.hypot(yy - cy, xx - cx)
        img = np.where(dist <= r_body, 0.0, -1.0)
        k = int(rng.integers(1, 5))
        pts: list[tuple[float, float]] = []
        for _ in range(60):
            if len(pts) == k:
                break
            ang = rng.uniform(0, 2 * np.pi)
            rad = rng.uniform(4.0, r_body - 8.0)
            p = (cy + rad * np.sin(ang), cx + rad * np.cos(ang))
            if all(np.hypot(p[0] - q[0], p[1] - q[1]) > 11.0 for q in pts):
                pts.append(p)
        for py, px in pts:
            r_ins = rng.uniform(3.0, 4.5)
            inside = np.hypot(yy - py, xx - px) <= r_ins
            img[inside] = rng.choice([-0.5, 0.5, 1.0])
            masks[i][inside] = 1
        centres.append(np.asarray(pts, np.float64).reshape(-1, 2))
        if artifact[i]:
            amp = rng.uniform(0.3, 0.6)
            if rng.random() < 0.5:  # ring artifact around the rotation centre
                r0 = rng.uniform(6.0, 20.0)
                img += amp * np.exp(-0.5 * ((dist - r0) / 1.0) ** 2)
            else:  # streaks through a dense point
                ang = rng.uniform(0, np.pi)
                d_line = np.abs((yy - cy) * np.cos(ang) - (xx - cx) * np.sin(ang))
                img += amp * np.exp(-0.5 * (d_line / 0.8) ** 2)
        img += rng.normal(0.0, noise, img.shape)
        images[i] = img
    return DemoBatch(images=images, artifact=artifact, centres=tuple(centres), masks=masks)


def write_test_set(
    folder: str | Path,
    task: Task,
    n: int,
    *,
    seed: int,
    noise: float = 0.05,
    fmt: Literal["csv", "json"] = "csv",
    name: str | None = None,
) -> Path:
    """Write a demo test set (``.npy`` images and labels) with its manifest; return the manifest.

    The manifest follows :func:`noctis_lab.ai.load_test_set`'s format: ``case_id``, ``image``
    and ``label`` (class), ``centres`` (JSON list of [row, col]) or ``mask`` (a ``.npy`` path),
    plus ``spacing`` in mm. ``name`` (JSON only) names the test set in ``meta.name``, so
    fresh draws of one monitoring set share one name (and one history).
    """
    if name is not None and fmt != "json":
        raise ValueError("a test-set name is written in a JSON manifest's meta (fmt='json')")
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    batch = make_batch(n, seed=seed, noise=noise)
    rows: list[dict[str, object]] = []
    for i in range(n):
        case = f"case{i:04d}"
        img_path = folder / "images" / f"{case}.npy"
        np.save(img_path, batch.images[i])
        row: dict[str, object] = {"case_id": case, "image": f"images/{case}.npy"}
        if task == "classification":
            row["label"] = int(batch.artifact[i])
        elif task == "detection":
            row["centres"] = json.dumps(np.round(batch.centres[i], 2).tolist())
        else:
            (folder / "masks").mkdir(exist_ok=True)
            np.save(folder / "masks" / f"{case}.npy", batch.masks[i])
            row["mask"] = f"masks/{case}.npy"
        row["spacing"] = json.dumps(list(PIXEL_SPACING_MM))
        rows.append(row)
    if fmt == "json":
        path = folder / "manifest.json"
        meta: dict[str, object] = {"task": task, "seed": seed, "noise": noise}
        if name is not None:
            meta["name"] = name
        if task == "classification":
            meta["classes"] = ["no_artifact", "artifact"]
        path.write_text(json.dumps({"meta": meta, "cases": rows}, indent=1))
    else:
        import csv

        path = folder / "manifest.csv"
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path
