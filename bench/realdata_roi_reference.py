"""Plain circular-ROI reference values for the real phantom scans, written from scratch.

Independent of ``noctis_lab`` (nothing is imported from it) and of pylinac: numpy, pydicom
and matplotlib only. Runs in any environment with those (we use the pylinac venv,
``.pylinac-env``, made by ``bash bench/make_pylinac_env.sh``; pydicom 2 or 3 both work).

For each scan in :data:`SCANS` it

1. reads the DICOM slices of the folder (HU = stored value x RescaleSlope + RescaleIntercept);
2. finds the phantom centre in each measured slice, by one of two plain methods written here:
   ``edge`` - a least-squares circle through the phantom's outer edge (rays from the
   centroid of the pixels above -500 HU; outliers beyond 2 mm of the first fit dropped) -
   or ``holes`` - the mean of the four 3 mm air holes of the CTP404 module, which sit on a
   50 mm square around the centre (The Phantom Laboratory, Catphan 500/600 manuals, CTP404
   "spatial linearity"; also pylinac ct.py ``CTP404CP504.geometry_roi_settings``); the holes
   also give the roll;
3. places circular ROIs at the positions of :data:`LAYOUTS` (mm in the phantom frame,
   x to the image right, y to the image bottom, angle -90 = image top; a roll ``r`` shows a
   ROI of angle ``a`` at ``a + r``) and measures mean, median, SD (ddof=1) over the pixels
   whose centres lie inside the circle, pooled over the listed slices (and per slice);
4. renders every measured slice with the ROI circles drawn to
   ``bench/results/realdata_render/<scan>_<module>.png`` (not committed: bench/results is
   ignored). The ROI positions were checked by LOOKING at these renders; the checks and any
   manual settings are recorded in :data:`SCANS` (``checked``) and copied to the JSON.

The results go to ``tests/realdata_reference/<scan>.json`` (``--write``), merged with the
pylinac results of ``bench/realdata_pylinac.py`` when ``--pylinac JSON`` is given.

Usage (from the repository root)::

    .pylinac-env/bin/python bench/realdata_pylinac.py --out /tmp/pylinac_realdata.json
    .pylinac-env/bin/python bench/realdata_roi_reference.py \\
        --pylinac /tmp/pylinac_realdata.json --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT_DIR = REPO / "tests" / "realdata_reference"
RENDER_DIR = HERE / "results" / "realdata_render"
SCRIPT = "bench/realdata_roi_reference.py"

# ---------------------------------------------------------------------------------------
# Layouts (phantom frame, mm). Sources in the ``source`` strings; they are copied to the JSON.
# ---------------------------------------------------------------------------------------

#: CTP404 insert ring radius and insert diameter: Catphan 500/600 manuals (CTP404 drawing,
#: 12 mm inserts on a ~117 mm circle); pylinac 3.49 ct.py CTP404CP504.roi_dist_mm = 58.7.
RING_MM = 58.7
INSERT_ROI_MM = (
    3.5  # ROI radius: 2.6 mm inside the 6.1 mm insert radius (margin for position error)
)

CTP404_504_ANGLES = {  # CatPhan 503/504 (pylinac ct.py CTP404CP504.roi_settings)
    "air_top": -90, "pmp": -120, "ldpe": 180, "polystyrene": 120,
    "acrylic": 60, "delrin": 0, "teflon": -60,
}  # fmt: skip
CTP404_604_ANGLES = {  # CatPhan 604 (pylinac ct.py CTP404CP604.roi_settings) + bottom air
    **CTP404_504_ANGLES, "bone50": -150, "bone20": 30, "air_bottom": 90,
}  # fmt: skip
CTP404_600_ANGLES = {  # CatPhan 600 (pylinac ct.py CTP404CP600.roi_settings): 504 turned 180 deg
    "air": 90, "pmp": 60, "ldpe": 0, "polystyrene": -60, "acrylic": -120,
    "delrin": 180, "teflon": 120, "water_vial": -90,
}  # fmt: skip

#: uniformity ROIs: centre + 12/3/6/9 o'clock, radius 10 mm. Two edge distances are measured:
#: 55 mm (imageQCpy's CT homogeneity default, hom_roi_size 10 mm radius, hom_roi_distance
#: 55 mm: EllenWasbo/imageQCpy src/imageQC/config/config_classes.py ParamSetCT, the tool the
#: water scan and the FOV150 scan come from; pylinac uses 53 mm, ct.py CTP486.roi_dist_mm) and
#: 70 mm (the distance in our phantom files before this check, kept to show what it reads).
UNIF_ROI_MM = 10.0
EDGE_DISTANCES_MM = (55.0, 70.0)
EDGE_ANGLES = {"top": -90, "right": 0, "bottom": 90, "left": 180}


def uniformity_rois() -> dict[str, tuple[float, float, float]]:
    """name -> (distance_mm, angle_deg, radius_mm) for centre + edge ROIs at both distances."""
    rois: dict[str, tuple[float, float, float]] = {"centre": (0.0, 0.0, UNIF_ROI_MM)}
    for d in EDGE_DISTANCES_MM:
        suffix = "" if d == EDGE_DISTANCES_MM[0] else f"_{int(d)}mm"
        for name, a in EDGE_ANGLES.items():
            rois[f"{name}{suffix}"] = (d, float(a), UNIF_ROI_MM)
    return rois


def insert_rois(angles: dict[str, float]) -> dict[str, tuple[float, float, float]]:
    rois = {n: (RING_MM, float(a), INSERT_ROI_MM) for n, a in angles.items()}
    rois["background"] = (0.0, 0.0, 10.0)  # module base material at the centre
    return rois


@dataclass(frozen=True)
class Module:
    name: str  # CTP404 / CTP486 / water
    z_mm: tuple[float, ...]  # slice positions used (ImagePositionPatient z), nearest slice taken
    rois: dict[str, tuple[float, float, float]]
    centre_method: str  # "edge" or "holes"
    roll_deg: float = 0.0  # used when centre_method == "edge" (no holes to measure roll)


@dataclass(frozen=True)
class Scan:
    folder: str
    phantom: str
    layout_source: str
    modules: tuple[Module, ...]
    checked: str  # what the rendered image showed (filled in after looking at the renders)


SCANS: dict[str, Scan] = {
    "catphan_mft_cbct_head": Scan(
        folder="catphan_mft_cbct_head",
        phantom="CatPhan 604",
        layout_source="CTP404: CatPhan 604 layout (pylinac 3.49 ct.py CTP404CP604, 58.7 mm ring) "
        "plus the second air hole at +90 deg seen on the image; CTP486 at -80 mm from CTP404 "
        "(pylinac ct.py CatPhan604.modules; the scan's uniform section spans z -92..-68).",
        modules=(
            Module("CTP404", (-2.0, 0.0, 2.0), insert_rois(CTP404_604_ANGLES), "holes"),
            Module("CTP486", (-82.0, -80.0, -78.0), uniformity_rois(), "edge"),
        ),
        checked=(
            "2026-12-01, renders catphan_mft_cbct_head_CTP404_z{-2,0,+2}.png and "
            "_CTP486_z{-81.83,-79.83,-77.84}.png looked at: every CTP404 circle inside its "
            "insert (10 inserts incl. both air holes and both bone inserts, at the 604 "
            "positions, roll ~0); the four 3 mm holes give a 50.0 +/- 0.06 mm square. The "
            "CTP404 z extent from the Teflon insert is z -11..+13 mm (module centre ~+1 mm), "
            "so z -2..+2 are central slices. CTP486: uniform region to r = 74 mm, housing "
            "step (+8 HU) from r = 76 mm (radial_profile_hu); the 55 mm edge ROIs end at 65 "
            "mm, the 70 mm ones reach 80 mm, i.e. into the housing. Uniform section spans z "
            "-88..-62 (end of reconstructed volume at -89)."
        ),
    ),
    "xvi_catphan_3slices": Scan(
        folder="xvi_catphan_3slices",
        phantom="CatPhan 503 (Elekta XVI; model not stated in the data: the CTP528 slice lies "
        "33 mm and the CTP486 slice 91.5 mm on the same side of CTP404, as in the 503, not "
        "the 504/604 whose CTP528 and CTP486 lie on opposite sides)",
        layout_source="CTP404: CatPhan 503/504 layout (pylinac ct.py CTP404CP504, = CTP404CP503) "
        "plus the hole at +90 deg seen on the image (reads air); CTP486: the uniformity.dcm slice.",
        modules=(
            Module(
                "CTP404",
                (72.25,),
                insert_rois({**CTP404_504_ANGLES, "air_bottom": 90}),
                "holes",
            ),
            Module("CTP486", (-19.25,), uniformity_rois(), "edge"),
        ),
        checked=(
            "2026-12-01, renders xvi_catphan_3slices_CTP404_z+72.25.png and "
            "_CTP486_z-19.25.png looked at (and a 2x zoom of the CTP404): every circle inside"
            " its insert, roll ~0; acrylic is faint on this CBCT but the circle sits on it. "
            "One of the four 50 mm-square markers is a Teflon pin (bright), the others air "
            "holes. An eighth hole at +90 deg (air_bottom) reads air (-803). The HU scale "
            "is compressed "
            "(air -800, Teflon 662: uncalibrated XVI CBCT) and the CTP486 slice shows strong "
            "cupping (centre -79, 55 mm edges -54..-60)."
        ),
    ),
    "imageqc_ctp404_fov150": Scan(
        folder="imageqc_ctp404_fov150",
        phantom="CatPhan 600 (CTP404 only; model not stated in the data: eight insert "
        "positions, the one at -90 deg empty (air) - the 600's water-vial slot - and the "
        "materials where pylinac's CTP404CP600 puts them, i.e. the 504 layout turned 180 deg)",
        layout_source="CTP404: CatPhan 600 layout (pylinac 3.49 ct.py CTP404CP600).",
        modules=(Module("CTP404", (270.7, 275.5, 280.3), insert_rois(CTP404_600_ANGLES), "holes"),),
        checked=(
            "2026-12-01, renders imageqc_ctp404_fov150_CTP404_z{+270.70,+275.50,+280.30}.png "
            "looked at (and a 2x zoom): every circle inside its insert at the CatPhan 600 "
            "positions with roll ~0 (LDPE right, Delrin left, Teflon lower left, PMP lower "
            "right, polystyrene upper right, acrylic upper left, air at +90 deg, empty "
            "water-vial slot at -90 deg reads air). The phantom's outer edge is outside the "
            "150 mm FOV; centre and roll come from the four 50 mm-square markers (one a "
            "Teflon pin), consistent to 0.2 mm between the three slices."
        ),
    ),
    "imageqc_water_head": Scan(
        folder="imageqc_water_head",
        phantom="water cylinder, 200 mm",
        layout_source="centre + 4 edge ROIs at 12/3/6/9 o'clock, radius 10 mm, at 55 mm "
        "(imageQCpy CT homogeneity default, the tool this scan comes from) and at 70 mm.",
        modules=(Module("water", (-59.3, -54.5, -49.7), uniformity_rois(), "edge"),),
        checked=(
            "2026-12-01, renders imageqc_water_head_water_z{-59.30,-54.50,-49.70}.png looked "
            "at: centre on the phantom centre, all ROIs in water; water to r = 92 mm, shell "
            "(+120..130 HU) from r = 94 mm (radial_profile_hu)."
        ),
    ),
}

# ---------------------------------------------------------------------------------------
# DICOM reading and plain image geometry
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    path: str
    z: float
    hu: np.ndarray  # float32 (rows, cols)
    spacing: tuple[float, float]  # (row, col) mm


def read_folder(folder: Path) -> list[Slice]:
    out = []
    for p in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(str(p))
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        sp = (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]))
        out.append(Slice(p.name, float(ds.ImagePositionPatient[2]), hu, sp))
    out.sort(key=lambda s: s.z)
    return out


def nearest(slices: list[Slice], z: float) -> Slice:
    s = min(slices, key=lambda s: abs(s.z - z))
    if abs(s.z - z) > 1.0:
        raise ValueError(f"no slice within 1 mm of z={z}")
    return s


def fit_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through points: (cx, cy, r)."""
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x**2 + y**2
    c, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = c[0] / 2, c[1] / 2
    return float(cx), float(cy), float(math.sqrt(c[2] + cx**2 + cy**2))


def edge_centre(img: np.ndarray, px_mm: float, threshold: float = -500.0) -> dict[str, float]:
    """Circle through the outer edge of the object above ``threshold`` HU (pixels)."""
    rows, cols = np.nonzero(img > threshold)
    cy0, cx0 = float(rows.mean()), float(cols.mean())
    xs, ys = [], []
    rmax = int(math.hypot(*img.shape))
    t = np.arange(rmax, dtype=float)
    for ang in np.radians(np.arange(0.0, 360.0, 0.5)):
        px = cx0 + t * math.cos(ang)
        py = cy0 + t * math.sin(ang)
        ok = (px >= 0) & (px < img.shape[1] - 1) & (py >= 0) & (py < img.shape[0] - 1)
        vals = img[py[ok].round().astype(int), px[ok].round().astype(int)]
        above = np.nonzero(vals > threshold)[0]
        if above.size == 0 or above[-1] >= vals.size - 2:
            continue  # ray leaves the image inside the object (FOV cut): no edge here
        i = int(above[-1])
        # sub-pixel crossing between sample i (above) and i+1 (below)
        v0, v1 = float(vals[i]), float(vals[i + 1])
        f = (v0 - threshold) / (v0 - v1) if v0 != v1 else 0.5
        xs.append(px[ok][i] + f * math.cos(ang))
        ys.append(py[ok][i] + f * math.sin(ang))
    x, y = np.array(xs), np.array(ys)
    cx, cy, r = fit_circle(x, y)
    resid = np.abs(np.hypot(x - cx, y - cy) - r) * px_mm
    keep = resid < 2.0
    cx, cy, r = fit_circle(x[keep], y[keep])
    return {
        "cx": cx,
        "cy": cy,
        "radius_mm": r * px_mm,
        "edge_points": int(keep.sum()),
        "edge_points_dropped": int((~keep).sum()),
    }


def holes_centre(
    img: np.ndarray, px_mm: float, guess: tuple[float, float], roll_guess: float = 0.0
) -> dict[str, float]:
    """Centre and roll from the four 3 mm holes/pins on the CTP404's 50 mm square."""
    found = []
    r_search = 6.0 / px_mm
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    for k in range(4):
        a = math.radians(45.0 + 90.0 * k + roll_guess)
        ex = guess[0] + 35.355 / px_mm * math.cos(a)
        ey = guess[1] + 35.355 / px_mm * math.sin(a)
        win = (xx - ex) ** 2 + (yy - ey) ** 2 <= r_search**2
        local = img[win]
        bg = float(np.median(local))
        # one of the four is a Teflon pin (bright) on some CTP404s, the others air holes
        # (dark): take the strongest deviation from the local background, either sign
        dev = np.abs(img - bg) * win
        peak = float(dev.max())
        w = np.where(dev > peak / 2, dev, 0.0)
        if w.sum() == 0:
            raise ValueError("geometry hole not found")
        found.append((float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())))
    pts = np.array(found)
    cx, cy = pts.mean(axis=0)
    rolls = []
    for k, (hx, hy) in enumerate(pts):
        ang = math.degrees(math.atan2(hy - cy, hx - cx)) - (45.0 + 90.0 * k)
        rolls.append((ang + 180.0) % 360.0 - 180.0)
    side = [math.dist(pts[k], pts[(k + 1) % 4]) * px_mm for k in range(4)]
    return {
        "cx": float(cx),
        "cy": float(cy),
        "roll_deg": float(np.mean(rolls)),
        "hole_side_mm": [round(s, 2) for s in side],
    }


def roi_mask(shape: tuple[int, int], cx: float, cy: float, r_px: float) -> np.ndarray:
    yy, xx = np.ogrid[0 : shape[0], 0 : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r_px**2


# ---------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------


def measure_module(slices: list[Slice], mod: Module) -> dict[str, Any]:
    used = [nearest(slices, z) for z in mod.z_mm]
    per_slice_geo = []
    for s in used:
        px = s.spacing[1]
        e = edge_centre(s.hu, px)
        geo: dict[str, Any] = {"z_mm": s.z, "file": s.path, "edge_fit": e}
        if mod.centre_method == "holes":
            h = holes_centre(s.hu, px, (e["cx"], e["cy"]))
            h = holes_centre(s.hu, px, (h["cx"], h["cy"]), h["roll_deg"])  # refine once
            geo["holes_fit"] = h
            geo["cx"], geo["cy"], geo["roll_deg"] = h["cx"], h["cy"], h["roll_deg"]
        else:
            geo["cx"], geo["cy"], geo["roll_deg"] = e["cx"], e["cy"], mod.roll_deg
        per_slice_geo.append(geo)
    rois: dict[str, Any] = {}
    for name, (dist, ang, rad) in mod.rois.items():
        pooled = []
        per_slice = []
        for s, g in zip(used, per_slice_geo, strict=True):
            px = s.spacing[1]
            a = math.radians(ang + g["roll_deg"])
            cx = g["cx"] + dist / px * math.cos(a)
            cy = g["cy"] + dist / px * math.sin(a)
            v = s.hu[roi_mask(s.hu.shape, cx, cy, rad / px)]
            pooled.append(v)
            per_slice.append(
                {"z_mm": s.z, "mean": round(float(v.mean()), 2), "n_pixels": int(v.size)}
            )
        allv = np.concatenate(pooled)
        x_mm = dist * math.cos(math.radians(ang))
        y_mm = dist * math.sin(math.radians(ang))
        rois[name] = {
            "mean": round(float(allv.mean()), 2),
            "median": round(float(np.median(allv)), 2),
            "sd": round(float(allv.std(ddof=1)), 2),
            "sem": round(float(allv.std(ddof=1) / math.sqrt(allv.size)), 2),
            "n_pixels": int(allv.size),
            "radius_mm": rad,
            "position_mm": [round(x_mm, 2), round(y_mm, 2)],
            "distance_mm": dist,
            "angle_deg": ang,
            "slices_z_mm": [s.z for s in used],
            "per_slice": per_slice,
        }
    out: dict[str, Any] = {"geometry": per_slice_geo, "rois": rois}
    if mod.centre_method == "edge":
        out["radial_profile_hu"] = radial_profile(
            used[len(used) // 2], per_slice_geo[len(used) // 2]
        )
    return out


def radial_profile(s: Slice, g: dict[str, Any], step_mm: float = 2.0) -> list[list[float]]:
    """[r_mm, mean, sd] of the annuli [r, r + step) around the centre: where the uniform
    region ends (housing, shell) shows as a step; recorded so ROI distances can be judged."""
    px = s.spacing[1]
    yy, xx = np.mgrid[0 : s.hu.shape[0], 0 : s.hu.shape[1]]
    r = np.hypot(xx - g["cx"], yy - g["cy"]) * px
    prof = []
    for k in np.arange(0.0, 104.0, step_mm):
        v = s.hu[(r >= k) & (r < k + step_mm)]
        if v.size:
            prof.append([float(k), round(float(v.mean()), 1), round(float(v.std()), 1)])
    return prof


def render(scan: str, slices: list[Slice], mod: Module, res: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    RENDER_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for g in res["geometry"]:
        s = nearest(slices, g["z_mm"])
        px = s.spacing[1]
        fig, axes = plt.subplots(1, 2, figsize=(16, 8))
        windows = (
            [(-1000, 1000), (-150, 150)] if mod.name != "CTP404" else [(-1000, 1000), (-250, 250)]
        )
        for ax, (lo, hi) in zip(axes, windows, strict=True):
            ax.imshow(s.hu, cmap="gray", vmin=lo, vmax=hi)
            ax.plot([g["cx"]], [g["cy"]], "c+", ms=12)
            for name, (dist, ang, rad) in mod.rois.items():
                a = math.radians(ang + g["roll_deg"])
                cx = g["cx"] + dist / px * math.cos(a)
                cy = g["cy"] + dist / px * math.sin(a)
                ax.add_patch(Circle((cx, cy), rad / px, fill=False, color="r", lw=0.8))
                if ax is axes[1]:
                    m = res["rois"][name]["mean"]
                    ax.text(
                        cx, cy - rad / px - 3, f"{name} {m:.0f}", color="y", fontsize=7, ha="center"
                    )
            ax.set_title(
                f"{scan} {mod.name} z={s.z:g} window {lo}..{hi}; centre "
                f"({g['cx']:.1f},{g['cy']:.1f}) px, roll {g['roll_deg']:+.2f} deg",
                fontsize=8,
            )
        fig.tight_layout()
        out = RENDER_DIR / f"{scan}_{mod.name}_z{s.z:+.2f}.png"
        fig.savefig(out, dpi=80)
        plt.close(fig)
        paths.append(str(out.relative_to(REPO)))
    return paths


def pylinac_section(pyl: dict[str, Any] | None, scan: str) -> dict[str, Any] | None:
    if pyl is None or scan not in pyl.get("scans", {}):
        return None
    return {
        "version": pyl["pylinac_version"],
        "statistic": pyl["statistic"],
        "script": "bench/realdata_pylinac.py",
        "runs": pyl["scans"][scan],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared" / "realdata")
    ap.add_argument("--pylinac", type=Path, help="JSON written by bench/realdata_pylinac.py")
    ap.add_argument("--write", action="store_true", help=f"write {OUT_DIR}/<scan>.json")
    ap.add_argument("--scan", action="append", help="only these scans")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    pyl = json.loads(args.pylinac.read_text()) if args.pylinac else None
    for name, scan in SCANS.items():
        if args.scan and name not in args.scan:
            continue
        folder = args.realdata / scan.folder
        slices = read_folder(folder)
        modules = {}
        for mod in scan.modules:
            res = measure_module(slices, mod)
            res["renders"] = render(name, slices, mod, res)
            modules[mod.name] = res
            print(f"\n{name} {mod.name}")
            for g in res["geometry"]:
                print(
                    f"  z {g['z_mm']:8.2f} centre ({g['cx']:.2f}, {g['cy']:.2f}) px "
                    f"roll {g['roll_deg']:+.2f}  edge r {g['edge_fit']['radius_mm']:.1f} mm "
                    f"{g.get('holes_fit', {}).get('hole_side_mm', '')}"
                )
            for rn, r in res["rois"].items():
                print(
                    f"  {rn:14} mean {r['mean']:8.2f} median {r['median']:8.2f} "
                    f"sd {r['sd']:6.2f} n {r['n_pixels']}"
                )
        doc = {
            "schema": "noctis-realdata-reference/1",
            "scan": name,
            "folder": f"../shared/realdata/{scan.folder}",
            "phantom": scan.phantom,
            "measured": dt.date.today().isoformat(),
            "circular_roi": {
                "script": SCRIPT,
                "independent_of": "noctis_lab (not imported); numpy + pydicom only",
                "statistic": "mean, median and SD (ddof=1) of the HU of the pixels whose "
                "centres lie inside the circle, pooled over the listed slices; per-slice "
                "means also given",
                "layout_source": scan.layout_source,
                "frame": "mm from the phantom centre, x to the image right, y to the image "
                "bottom, angle -90 deg = image top; the roll found is added to the angles",
                "checked_on_render": scan.checked,
                "modules": modules,
            },
            "pylinac": pylinac_section(pyl, name),
        }
        if args.write:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            (OUT_DIR / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
            print(f"wrote {OUT_DIR / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
