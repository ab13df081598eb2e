"""Our HU engine on the real scans against the independent references (read-only check).

Runs ``.venv/bin/noctis-lab hu analyze FOLDER --json`` (a fresh process; nothing from
``noctis_lab`` is imported here) on every scan of ``tests/realdata_reference/``, without and
with ``--phantom``, and prints, per ROI, our mean beside the circular-ROI reference mean
(``bench/realdata_roi_reference.py``) and pylinac's median where pylinac ran, with the
issue-12 goal: every insert mean within 3 HU (fan-beam CT) / 6 HU (CBCT) of the reference.

Usage::

    .venv/bin/python bench/realdata_compare.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REF_DIR = REPO / "tests" / "realdata_reference"
CLI = REPO / ".venv" / "bin" / "noctis-lab"

#: scan -> (phantom to pass with --phantom, CBCT?)
SCANS = {
    "catphan_mft_cbct_head": ("catphan604", True),
    "xvi_catphan_3slices": ("catphan503", True),
    "imageqc_ctp404_fov150": ("catphan600", False),
    "imageqc_water_head": ("water", False),
}
#: pylinac CatPhan604 ROI names -> ours
PYLINAC_NAMES = {
    "Air": "air_top",
    "PMP": "pmp",
    "50% Bone": "bone50",
    "LDPE": "ldpe",
    "Poly": "polystyrene",
    "Acrylic": "acrylic",
    "20% Bone": "bone20",
    "Delrin": "delrin",
    "Teflon": "teflon",
    "Top": "top",
    "Right": "right",
    "Bottom": "bottom",
    "Left": "left",
    "Center": "centre",
}


def run_ours(folder: Path, phantom: str | None) -> dict[str, Any]:
    cmd = [str(CLI), "hu", "analyze", str(folder), "--json"]
    if phantom:
        cmd += ["--phantom", phantom]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    return json.loads(p.stdout)


def reference_rois(ref: dict[str, Any]) -> dict[str, dict[str, float]]:
    """(module-free) ROI name -> {'ref': circular mean, 'pylinac': median or None}."""
    out: dict[str, dict[str, float]] = {}
    for mod in ref["circular_roi"]["modules"].values():
        for name, r in mod["rois"].items():
            out[name] = {"ref": r["mean"]}
    runs = (ref.get("pylinac") or {}).get("runs") or []
    ran = [r for r in runs if r.get("class") == "CatPhan604" and "refused" not in r]
    if ran:
        for module in ("ctp404", "ctp486"):
            for pname, r in ran[0][module]["rois"].items():
                name = PYLINAC_NAMES.get(pname)
                if name in out:
                    out[name]["pylinac"] = r["median"]
    return out


def edge_distances(phantom: str) -> dict[tuple[str, str], float]:
    """(module, ROI) -> distance (mm) of the uniformity edge ROIs in the phantom data file
    (read as data: the reference has edge ROIs at 55 and 70 mm, matched by distance)."""
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


def compare(scan: str, phantom: str | None, cbct: bool) -> dict[str, Any]:
    ref = json.loads((REF_DIR / f"{scan}.json").read_text())
    ours = run_ours(REPO.parent / "shared" / "realdata" / scan, phantom)
    rec: dict[str, Any] = {
        "scan": scan,
        "phantom_option": phantom,
        "tolerance_hu": 6 if cbct else 3,
    }
    if "error" in ours:
        rec["error"] = ours["error"]
        return rec
    refs = reference_rois(ref)
    rec.update(
        phantom=ours["phantom"],
        status=ours["status"],
        roll_deg=ours["localisation"]["roll_deg"],
        centre_px=ours["localisation"]["centre_px"],
    )
    rows = []
    edge_mm = edge_distances(ours["phantom"])
    for r in ours["rois"]:
        key = r["name"]
        d = edge_mm.get((r["module"], r["name"]))
        if d is not None and round(d) != 55:
            key = f"{r['name']}_{round(d)}mm"  # the reference measured at that distance too
        rr = refs.get(key)
        row = {
            "module": r["module"],
            "name": r["name"],
            "ours": round(r["mean"], 1),
            "ref_roi": key,
        }
        if rr is not None:
            row["ref"] = rr["ref"]
            row["diff"] = round(r["mean"] - rr["ref"], 1)
            row["within"] = abs(row["diff"]) <= rec["tolerance_hu"]
            if "pylinac" in rr:
                row["pylinac"] = rr["pylinac"]
        rows.append(row)
    rec["rois"] = rows
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the comparison here")
    args = ap.parse_args()
    results = []
    for scan, (phantom, cbct) in SCANS.items():
        for ph in (None, phantom):
            rec = compare(scan, ph, cbct)
            results.append(rec)
            head = f"\n{scan} ({'--phantom ' + ph if ph else 'no --phantom'})"
            if "error" in rec:
                print(f"{head}: REFUSED: {rec['error']}")
                continue
            print(
                f"{head}: taken as {rec['phantom']}, status {rec['status']}, roll "
                f"{rec['roll_deg']:+.2f} deg; goal |ours - ref| <= {rec['tolerance_hu']} HU"
            )
            for row in rec["rois"]:
                ref = f"{row['ref']:8.1f}" if "ref" in row else "       -"
                diff = f"{row['diff']:+6.1f}" if "diff" in row else "     -"
                py = f"{row['pylinac']:7.1f}" if "pylinac" in row else "      -"
                flag = "" if row.get("within", True) else "  <-- outside"
                print(
                    f"  {row['module']:7} {row['name']:12} ours {row['ours']:8.1f} ref {ref} "
                    f"{diff}  pylinac {py}{flag}"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
