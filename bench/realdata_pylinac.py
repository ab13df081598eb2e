"""pylinac on the real phantom scans: an independent reference for the HU engine.

Runs INSIDE the pylinac virtual environment (``bash bench/make_pylinac_env.sh`` makes
``.pylinac-env``; pylinac 3.49 needs pydicom<3). It imports nothing from ``noctis_lab``.

For every scan folder under ``--realdata`` (default ``../shared/realdata``) and every
CatPhan class asked for, it runs ``CatPhanXXX(folder).analyze()`` and records, per HU ROI of
CTP404 and CTP486:

* ``median`` - pylinac's reported value (``HUDiskROI.pixel_value`` = ``np.median`` of the
  pixels inside the circle, pylinac/core/roi.py ``DiskROI.pixel_value``), and also the ROI
  ``mean`` and ``std`` (population SD, ``np.std``) of the same pixels;
* the ROI radius in mm (pylinac: 5 mm for CTP404 inserts, 10 mm for CTP486), the ROI
  centre in pixels and in mm from the phantom centre, the slice index and its z (mm);
* the phantom centre, roll (``catphan_roll``, degrees) and origin slice pylinac found.

pylinac analyses a single slice per module (``num_slices = 0`` for CTP404 and CTP486).
When pylinac refuses a scan, the exception class and message are recorded instead: a
refusal is a result too. A second attempt with pylinac's minimum image count lowered
(``min_num_images = 1``; pylinac refuses fewer than 39 images) is recorded separately,
marked ``"min_num_images_lowered": true``.

Usage (from the repository root)::

    .pylinac-env/bin/python bench/realdata_pylinac.py --out /tmp/pylinac_realdata.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pylinac
from pylinac import CatPhan503, CatPhan504, CatPhan600, CatPhan604

CLASSES = {
    "CatPhan503": CatPhan503,
    "CatPhan504": CatPhan504,
    "CatPhan600": CatPhan600,
    "CatPhan604": CatPhan604,
}

#: what to try on each scan folder (the issue's task list)
PLAN = {
    "catphan_mft_cbct_head": ["CatPhan604", "CatPhan504"],
    "xvi_catphan_3slices": ["CatPhan503", "CatPhan504", "CatPhan600", "CatPhan604"],
    "imageqc_ctp404_fov150": ["CatPhan503", "CatPhan504", "CatPhan600", "CatPhan604"],
}


def _roi_record(roi: Any, centre: Any, mm_per_px: float, slice_index: int, z: float) -> dict:
    px = np.asarray(roi.circle_mask(), dtype=float)
    dx = (float(roi.center.x) - float(centre.x)) * mm_per_px
    dy = (float(roi.center.y) - float(centre.y)) * mm_per_px
    return {
        "median": float(roi.pixel_value),
        "mean": float(np.mean(px)),
        "std": float(np.std(px)),
        "n_pixels": int(px.size),
        "radius_mm": float(roi.radius) * mm_per_px,
        "centre_px": [float(roi.center.x), float(roi.center.y)],
        "position_mm": [round(dx, 2), round(dy, 2)],
        "distance_mm": round(math.hypot(dx, dy), 2),
        "angle_deg": round(math.degrees(math.atan2(dy, dx)), 1),
        "slice_index": slice_index,
        "slice_z_mm": z,
        "nominal_hu": None if roi.nominal_val is None else float(roi.nominal_val),
    }


def _module_record(ct: Any, module: Any) -> dict:
    idx = int(module.slice_num)
    z = float(ct.dicom_stack[idx].metadata.ImagePositionPatient[-1])
    centre = module.phan_center
    mm = float(ct.mm_per_pixel)
    rois = {name: _roi_record(roi, centre, mm, idx, z) for name, roi in module.rois.items()}
    return {
        "slice_index": idx,
        "slice_z_mm": z,
        "phantom_centre_px": [float(centre.x), float(centre.y)],
        "rois": rois,
    }


def run_one(folder: Path, cls_name: str, lowered: bool) -> dict:
    base = CLASSES[cls_name]
    cls = type(f"{cls_name}Min1", (base,), {"min_num_images": 1}) if lowered else base
    rec: dict[str, Any] = {
        "class": cls_name,
        "min_num_images_lowered": lowered,
    }
    t0 = time.perf_counter()
    try:
        ct = cls(str(folder))
        ct.analyze()
    except Exception as exc:  # a refusal is a result: record it
        rec["refused"] = f"{type(exc).__name__}: {exc}"
        rec["traceback_tail"] = traceback.format_exc().strip().splitlines()[-3:]
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        return rec
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    rec["n_images"] = len(ct.dicom_stack)
    rec["mm_per_pixel"] = float(ct.mm_per_pixel)
    rec["origin_slice"] = int(ct.origin_slice)
    rec["origin_z_mm"] = float(
        ct.dicom_stack[int(ct.origin_slice)].metadata.ImagePositionPatient[-1]
    )
    rec["roll_deg"] = float(ct.catphan_roll)
    rec["ctp404"] = _module_record(ct, ct.ctp404)
    rec["ctp486"] = _module_record(ct, ct.ctp486)
    rec["ctp486"]["uniformity_index"] = float(ct.ctp486.uniformity_index)
    rec["hu_passed"] = bool(ct.ctp404.passed_hu)
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = Path(__file__).resolve().parent
    ap.add_argument("--realdata", type=Path, default=here.parent.parent / "shared" / "realdata")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    out: dict[str, Any] = {
        "pylinac_version": pylinac.__version__,
        "statistic": "median of the pixels inside the circular ROI (DiskROI.pixel_value); "
        "mean and std (np.std) of the same pixels also given",
        "scans": {},
    }
    for scan, classes in PLAN.items():
        folder = args.realdata / scan
        runs = []
        for cls_name in classes:
            r = run_one(folder, cls_name, lowered=False)
            runs.append(r)
            print(f"{scan:24} {cls_name:11} {r.get('refused', 'ran')[:150]}", flush=True)
            if "refused" in r and "images" in r["refused"].lower():
                r2 = run_one(folder, cls_name, lowered=True)
                runs.append(r2)
                print(
                    f"{scan:24} {cls_name:11} (min_num_images=1) {r2.get('refused', 'ran')[:150]}",
                    flush=True,
                )
        out["scans"][scan] = runs
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
