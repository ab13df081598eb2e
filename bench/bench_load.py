"""Benchmark: ``noctis_lab.dicom.load_series`` against plain sequential pydicom.

Writes a 300-slice 512x512 uncompressed int16 CT series (a minimal valid CT
dataset per slice, made here with pydicom) into a temporary folder, then times,
in the same run and on the same warm page cache:

* the peer: ``pydicom.dcmread(path).pixel_array * slope + intercept`` per file,
  sequentially, then sorted by ImagePositionPatient z and stacked (float32);
* ours: ``load_series(folder)`` with its default thread pool;
* ours with ``workers=1`` (to separate the per-slice work from the parallelism);
* a process-pool variant of our per-slice work (to justify threads over processes).

A second, smaller JPEG 2000 lossless series (``--j2k-slices``, 0 to skip) shows
the compressed path, where the codec holds the GIL: peer, ours (worker
processes), ours ``workers=1``, and a thread pool doing the peer's per-slice work.

Usage::

    .venv/bin/python bench/bench_load.py [--slices 300] [--size 512] [--repeat 3] [--j2k-slices 48]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

from noctis_lab.dicom import load_series


def make_series(folder: Path, n_slices: int, size: int, compress: bool = False) -> list[Path]:
    """Write a minimal valid CT series (shuffled file names) with pydicom."""
    rng = np.random.default_rng(0)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    base = rng.integers(-1024, 1500, size=(size, size), dtype=np.int16)
    order = rng.permutation(n_slices)
    paths = []
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName = "BENCH^LOAD"
        ds.PatientID = "BENCH"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-250.0, -250.0, 1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.9765625, 0.9765625]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        pixels = np.roll(base, k, axis=0)
        ds.PixelData = pixels.tobytes()
        if compress:
            ds.compress(JPEG2000Lossless, pixels)
        path = folder / f"IM{order[k]:05d}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _peer_slice(path: Path) -> tuple[float, np.ndarray]:
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return float(ds.ImagePositionPatient[2]), hu.astype(np.float32)


def peer_load(folder: Path, threads: int = 0) -> np.ndarray:
    """Plain pydicom: read every file fully, pixel_array, rescale, sort, stack.

    ``threads`` > 0 runs the same per-slice work in a thread pool.
    """
    paths = sorted(folder.iterdir())
    if threads:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            slices = list(pool.map(_peer_slice, paths))
    else:
        slices = [_peer_slice(p) for p in paths]
    slices.sort(key=lambda s: s[0])
    return np.stack([s[1] for s in slices])


def _process_slice(path: str) -> tuple[float, np.ndarray]:
    ds = pydicom.dcmread(path)
    raw = np.frombuffer(ds.PixelData, dtype="<i2").reshape(ds.Rows, ds.Columns)
    hu = raw.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return float(ds.ImagePositionPatient[2]), hu


def process_pool_load(folder: Path, workers: int) -> np.ndarray:
    """Same per-slice work as ours, but in a process pool (slices pickled back)."""
    paths = [str(p) for p in sorted(folder.iterdir())]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        slices = list(pool.map(_process_slice, paths, chunksize=8))
    slices.sort(key=lambda s: s[0])
    out = np.empty((len(slices), *slices[0][1].shape), dtype=np.float32)
    for k, (_, hu) in enumerate(slices):
        out[k] = hu
    return out


def best_of(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), np.empty(0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def report(title: str, n: int, rows: list[tuple[str, float]]) -> None:
    print(title)
    t_peer = rows[0][1]
    for name, t in rows:
        print(f"  {name:<38s} {t:7.3f} s  {n / t:8.1f} slices/s  x{t_peer / t:5.2f} vs peer")
    print(f"  ratio ours/peer (slices/s): {t_peer / rows[1][1]:.2f}")


def check(ref: np.ndarray, **results: np.ndarray) -> None:
    for name, arr in results.items():
        if not np.array_equal(arr, ref):
            raise SystemExit(f"{name} differs from the pydicom peer")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--j2k-slices", type=int, default=48)
    args = parser.parse_args()
    n, size, rep = args.slices, args.size, args.repeat
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    print(f"cores available: {cores}; best of {rep}; every result is checked equal to the peer")
    with tempfile.TemporaryDirectory(prefix="noctis-bench-") as tmp:
        folder = Path(tmp) / "native"
        folder.mkdir()
        make_series(folder, n, size)
        peer_load(folder)  # warm the page cache (and this process's memory) for everyone
        t_peer, ref = best_of(lambda: peer_load(folder), rep)
        t_ours, ours = best_of(lambda: load_series(folder).hu, rep)
        t_seq, seq = best_of(lambda: load_series(folder, workers=1).hu, rep)
        t_proc, proc = best_of(lambda: process_pool_load(folder, cores), rep)
        check(ref, ours=ours, sequential=seq, processes=proc)
        report(
            f"{n} slices {size}x{size} int16, explicit VR little endian:",
            n,
            [
                ("pydicom sequential (peer)", t_peer),
                ("noctis load_series (default)", t_ours),
                ("noctis load_series workers=1", t_seq),
                ("process pool, our per-slice work", t_proc),
            ],
        )
        if args.j2k_slices:
            m = args.j2k_slices
            j2k = Path(tmp) / "j2k"
            j2k.mkdir()
            make_series(j2k, m, size, compress=True)
            t_peer, ref = best_of(lambda: peer_load(j2k), rep)
            t_ours, ours = best_of(lambda: load_series(j2k).hu, rep)
            t_seq, seq = best_of(lambda: load_series(j2k, workers=1).hu, rep)
            t_thr, thr = best_of(lambda: peer_load(j2k, threads=cores), rep)
            check(ref, ours=ours, sequential=seq, threads=thr)
            report(
                f"{m} slices {size}x{size} JPEG 2000 lossless:",
                m,
                [
                    ("pydicom sequential (peer)", t_peer),
                    ("noctis load_series (default)", t_ours),
                    ("noctis load_series workers=1", t_seq),
                    ("thread pool, peer per-slice work", t_thr),
                ],
            )


if __name__ == "__main__":
    main()
