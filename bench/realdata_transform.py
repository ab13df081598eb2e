"""Transformed copies of the real scans, and our engine on them against the references.

Issue 12 judges the HU engine also on transformed copies of real scans: HU offsets of
+/-30, an in-plane rotation by 90 deg, reversed slice order, and modules split into one-slice
series. This script writes such copies (pydicom only; nothing from ``noctis_lab`` is
imported) to ``--out`` (default ``bench/results/realdata_transformed/``, not committed),
runs ``.venv/bin/noctis-lab hu analyze COPY --json`` with and without ``--phantom`` on each,
and compares every ROI mean with the reference of ``tests/realdata_reference/<scan>.json``
(plus the offset for the offset copies: the others leave the values unchanged).

Transforms (each file gets a new SOP Instance UID; each copy a new Series Instance UID):

* ``offset+30`` / ``offset-30``: stored pixel values shifted by 30 HU / RescaleSlope;
* ``rot90``: pixel array turned 90 deg (``np.rot90``: the phantom rolled by 90 deg);
* ``reversed_z``: z positions negated (ImagePositionPatient, SliceLocation), so the
  modules follow in the opposite order;
* ``split``: one single-slice series per module slice, same study and frame of reference
  (3-slice scans: every slice; the 93-slice CBCT: the slices nearest z -80, -40, 0, +40 mm).

Usage::

    .venv/bin/python bench/realdata_transform.py [--scan NAME] [--transform NAME] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REF_DIR = REPO / "tests" / "realdata_reference"
CLI = REPO / ".venv" / "bin" / "noctis-lab"
REALDATA = REPO.parent / "shared" / "realdata"

#: scan -> (phantom for --phantom, CBCT?)
SCANS = {
    "catphan_mft_cbct_head": ("catphan604", True),
    "xvi_catphan_3slices": ("catphan503", True),
    "imageqc_ctp404_fov150": ("catphan600", False),
    "imageqc_water_head": ("water", False),
}
SPLIT_Z_CBCT = (-80.0, -40.0, 0.0, 40.0)

Datasets = list[pydicom.Dataset]


def read(folder: Path) -> Datasets:
    out = [pydicom.dcmread(str(p)) for p in sorted(folder.glob("*.dcm"))]
    out.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return out


def _set_pixels(ds: pydicom.Dataset, arr: np.ndarray) -> None:
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])


def offset(hu: float) -> Callable[[Datasets], list[Datasets]]:
    def f(dss: Datasets) -> list[Datasets]:
        for ds in dss:
            arr = ds.pixel_array
            shift = round(hu / float(ds.RescaleSlope))
            new = arr.astype(np.int64) + shift
            dtype = arr.dtype
            if new.min() < np.iinfo(dtype).min:  # e.g. air at stored 0 of an unsigned image
                dtype = np.dtype(np.int16)
                ds.PixelRepresentation = 1
                ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            info = np.iinfo(dtype)
            if new.min() < info.min or new.max() > info.max:
                raise ValueError(f"{ds.SOPInstanceUID}: an offset of {hu} HU does not fit {dtype}")
            for tag in ("SmallestImagePixelValue", "LargestImagePixelValue"):
                if tag in ds:
                    del ds[tag]  # stale after the shift (and typed by PixelRepresentation)
            _set_pixels(ds, new.astype(dtype))
        return [dss]

    return f


def rot90(dss: Datasets) -> list[Datasets]:
    for ds in dss:
        _set_pixels(ds, np.rot90(ds.pixel_array))
    return [dss]


def reversed_z(dss: Datasets) -> list[Datasets]:
    for ds in dss:
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1], -ipp[2]]
        if "SliceLocation" in ds:
            ds.SliceLocation = -float(ds.SliceLocation)
    return [dss]


def split(dss: Datasets) -> list[Datasets]:
    if len(dss) <= 5:
        return [[d] for d in dss]
    zs = np.array([float(d.ImagePositionPatient[2]) for d in dss])
    return [[dss[int(np.argmin(np.abs(zs - z)))]] for z in SPLIT_Z_CBCT]


TRANSFORMS: dict[str, tuple[Callable[[Datasets], list[Datasets]], float]] = {
    "offset+30": (offset(30.0), 30.0),
    "offset-30": (offset(-30.0), -30.0),
    "rot90": (rot90, 0.0),
    "reversed_z": (reversed_z, 0.0),
    "split": (split, 0.0),
}


def write_copy(scan: str, name: str, out: Path) -> Path:
    fn, _ = TRANSFORMS[name]
    folder = out / f"{scan}__{name}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    series_list = fn(read(REALDATA / scan))
    for k, series in enumerate(series_list):
        uid = generate_uid()
        for i, ds in enumerate(series):
            ds.SeriesInstanceUID = uid
            if len(series_list) > 1:
                ds.SeriesNumber = 100 + k
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(str(folder / f"s{k:02d}_{i:03d}.dcm"))
    return folder


def reference_means(scan: str) -> dict[str, float]:
    doc = json.loads((REF_DIR / f"{scan}.json").read_text())
    out: dict[str, float] = {}
    for mod in doc["circular_roi"]["modules"].values():
        for name, r in mod["rois"].items():
            out[name] = r["mean"]
    return out


def edge_distances(phantom: str) -> dict[tuple[str, str], float]:
    path = REPO / "noctis_lab" / "hu" / "data" / "phantoms" / f"{phantom}.json"
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {
        (m["name"], r["name"]): float(r["distance_mm"])
        for m in doc["modules"]
        for r in m["rois"]
        if r.get("role") == "uniformity_edge" and r.get("distance_mm") is not None
    }


def judge(scan: str, folder: Path, phantom: str | None, shift: float, cbct: bool) -> dict:
    cmd = [str(CLI), "hu", "analyze", str(folder), "--json"]
    if phantom:
        cmd += ["--phantom", phantom]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    rec: dict[str, Any] = {"phantom_option": phantom, "tolerance_hu": 6 if cbct else 3}
    if p.returncode != 0:
        rec["refused"] = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return rec
    res = json.loads(p.stdout)
    refs = reference_means(scan)
    dist = edge_distances(res["phantom"])
    diffs = {}
    for r in res["rois"]:
        key = r["name"]
        d = dist.get((r["module"], r["name"]))
        if d is not None and round(d) != 55:
            key = f"{key}_{round(d)}mm"
        if key in refs:
            diffs[f"{r['module']}/{r['name']}"] = round(r["mean"] - (refs[key] + shift), 1)
    worst = max(diffs.items(), key=lambda kv: abs(kv[1])) if diffs else ("-", float("nan"))
    rec.update(
        phantom=res["phantom"],
        status=res["status"],
        roll_deg=round(res["localisation"]["roll_deg"], 2),
        n_rois=len(res["rois"]),
        n_compared=len(diffs),
        worst=worst,
        within=all(abs(v) <= rec["tolerance_hu"] for v in diffs.values()) and bool(diffs),
        diffs=diffs,
    )
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "realdata_transformed")
    ap.add_argument("--scan", action="append", choices=sorted(SCANS))
    ap.add_argument("--transform", action="append", choices=sorted(TRANSFORMS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    for scan, (phantom, cbct) in SCANS.items():
        if args.scan and scan not in args.scan:
            continue
        for name, (_, shift) in TRANSFORMS.items():
            if args.transform and name not in args.transform:
                continue
            folder = write_copy(scan, name, args.out)
            for ph in (None, phantom):
                rec = {"scan": scan, "transform": name, **judge(scan, folder, ph, shift, cbct)}
                results.append(rec)
                opt = f"--phantom {ph}" if ph else "no --phantom"
                if "refused" in rec:
                    print(f"{scan:22} {name:10} {opt:22} REFUSED: {rec['refused'][:110]}")
                else:
                    w = rec["worst"]
                    print(
                        f"{scan:22} {name:10} {opt:22} as {rec['phantom']:10} {rec['status']:7} "
                        f"roll {rec['roll_deg']:+8.2f}  {rec['n_compared']:2d} ROIs, worst "
                        f"{w[0]} {w[1]:+.1f} HU -> "
                        f"{'within' if rec['within'] else 'OUTSIDE'} {rec['tolerance_hu']} HU"
                    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
