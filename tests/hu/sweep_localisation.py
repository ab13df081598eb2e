"""Wide localisation sweep against ground truth (a script, not collected by pytest).

Random geometry and image conditions per case: roll ±24 deg, shift ±20 mm in x/y
and ±3 mm in z, noise SD 0-40 HU with 0-1.6 mm correlation, blur, slice thickness
1-10 mm, pixel size 0.5-1 mm, miscalibration, ring artefacts, metal streaks, couch.
Prints the largest roll and centre errors (overall and without a couch, which
pulls the body-based centre a little).

Run: ``.venv/bin/python tests/hu/sweep_localisation.py --cases 400 --phantom catphan604``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from tqdm import tqdm

from noctis_lab.hu import load_phantom
from noctis_lab.hu._locate import locate
from noctis_lab.hu.synthetic import generate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phantom", default="catphan604")
    args = ap.parse_args()
    ph = load_phantom(args.phantom)
    rng = np.random.default_rng(args.seed)
    rows = []
    t0 = time.perf_counter()
    for _ in tqdm(range(args.cases), desc=f"{args.phantom} localisation sweep"):
        px = float(rng.choice([0.5, 0.75, 1.0]))
        kw = {
            "matrix": round(256 / px),
            "pixel_size_mm": px,
            "seed": int(rng.integers(0, 1_000_000)),
            "roll_deg": float(rng.uniform(-24.0, 24.0)),
            "shift_mm": (
                float(rng.uniform(-20, 20)),
                float(rng.uniform(-20, 20)),
                float(rng.uniform(-3, 3)),
            ),
            "noise_sd_hu": float(rng.uniform(0.0, 40.0)),
            "noise_correlation_mm": float(rng.choice([0.0, 0.8, 1.2, 1.6])),
            "blur_mm": float(rng.choice([0.0, 0.0, 0.5, 1.0, 1.5])),
            "slice_thickness_mm": float(rng.choice([1.0, 2.0, 3.0, 5.0, 10.0])),
            "scale": float(rng.uniform(0.95, 1.05)),
            "offset_hu": float(rng.uniform(-20.0, 20.0)),
            "ring_artifact_hu": float(rng.choice([0.0, 0.0, 10.0, 30.0])),
            "metal_streaks": bool(rng.random() < 0.15),
            "couch": bool(rng.random() < 0.25),
            "z_range_mm": (-20.0, 20.0),
        }
        s = generate(args.phantom, **kw)
        try:
            p = locate(s.volume, ph)
        except Exception as exc:  # a sweep reports, it does not stop
            tqdm.write(f"NOT FOUND {kw}: {exc}")
            rows.append((math.inf, math.inf, kw["couch"]))
            continue
        row, col = s.truth.centre_pixel
        c = p.localisation.centre_px
        roll_err = abs(p.roll_deg - kw["roll_deg"])
        centre_err = math.hypot(c[0] - col, c[1] - row)
        rows.append((roll_err, centre_err, kw["couch"]))
        if roll_err >= 0.5 or centre_err >= 0.5:
            tqdm.write(f"roll err {roll_err:.3f} deg, centre err {centre_err:.3f} px: {kw}")
    a = np.array([(r, c) for r, c, _ in rows])
    nc = np.array([(r, c) for r, c, couch in rows if not couch])
    print(
        f"{args.phantom}: {len(rows)} cases in {time.perf_counter() - t0:.0f} s; "
        f"roll error max {a[:, 0].max():.3f} deg (p99 {np.percentile(a[:, 0], 99):.3f}); "
        f"centre error max {a[:, 1].max():.3f} px, without couch {nc[:, 1].max():.3f} px"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
