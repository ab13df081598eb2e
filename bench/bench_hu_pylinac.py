"""Benchmark: ``noctis-lab hu analyze FOLDER --json`` vs pylinac ``CatPhan604(folder).analyze()``.

Both as whole processes, side by side in one run, on

* the real 93-slice Varian CBCT of a CatPhan 604 (``../shared/realdata/catphan_mft_cbct_head``);
* a synthetic CatPhan 604 series written by our generator (``noctis_lab.hu.synthetic``: 81
  slices 512x512 at 0.5 mm, 2 mm slices, noise SD ``--noise`` HU, shifted 3/-2 mm, rolled 2 deg).

Each timed run is a fresh process: ours is ``.venv/bin/noctis-lab hu analyze FOLDER --json``
(import, load, locate, measure, judge, print JSON); pylinac's is a fresh Python of the
pylinac venv (``.pylinac-env``, pylinac 3.49 needs pydicom<3; ``bash bench/make_pylinac_env.sh``
makes it) that runs ``CatPhan604(folder).analyze()`` and prints its values. One untimed
warm-up of each fills the file cache; then ``--repeat`` rounds alternate ours / pylinac so
both see the same machine load. Reported: median wall time, median CPU time (user + sys of
the child, which a loaded machine disturbs less), and the ratios (goal: wall >= 10x).

Also printed from the same processes: each CTP404 insert as we measure it (mean) beside
pylinac's (median of a 5 mm circle) and the reference (the real scan: the circular-ROI mean
of ``tests/realdata_reference/<scan>.json``; the synthetic one: the generator's truth).

Usage::

    .venv/bin/python bench/bench_hu_pylinac.py [--repeat 3] [--noise 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = REPO / ".pylinac-env"
PY_PYLINAC = VENV / "bin" / "python"
OURS_CLI = REPO / ".venv" / "bin" / "noctis-lab"
REALDATA = REPO.parent / "shared" / "realdata"
REAL_SCAN = "catphan_mft_cbct_head"

#: pylinac CTP404 (604) ROI name -> our catphan604.json ROI name
NAMES = {
    "Air": "air_top",
    "PMP": "pmp",
    "50% Bone": "bone50",
    "LDPE": "ldpe",
    "Poly": "polystyrene",
    "Acrylic": "acrylic",
    "20% Bone": "bone20",
    "Delrin": "delrin",
    "Teflon": "teflon",
}

PYLINAC_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")
    from pylinac import CatPhan604
    ct = CatPhan604(sys.argv[1])
    ct.analyze()
    print(json.dumps({
        "ctp404": {n: r.pixel_value for n, r in ct.ctp404.rois.items()},
        "ctp486": {n: r.pixel_value for n, r in ct.ctp486.rois.items()},
        "origin_slice": int(ct.origin_slice), "roll_deg": float(ct.catphan_roll)}))
    """
)


def ensure_pylinac() -> str:
    """Make ``.pylinac-env`` (pinned) if missing; return the pylinac and pydicom versions."""
    if not PY_PYLINAC.exists():
        print(f"creating {VENV} (first run only) ...", flush=True)
        subprocess.run(["bash", str(HERE / "make_pylinac_env.sh"), str(VENV)], check=True)
    out = subprocess.run(
        [
            str(PY_PYLINAC),
            "-c",
            "import pylinac, pydicom; print(pylinac.__version__, pydicom.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def run_timed(cmd: list[str]) -> tuple[float, float, str, str, int]:
    """Run ``cmd`` as a fresh process: (wall s, child CPU s, stdout, stderr, return code)."""
    # Both run as installed software does: with byte-code caches (pip wrote pylinac's at
    # install; the warm-up run writes ours, an editable install), whatever this shell says.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MPLBACKEND"] = "Agg"
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            wall,
            ru.ru_utime + ru.ru_stime,
            out.read().decode(),
            err.read().decode(),
            p.returncode,
        )


def ours_cmd(folder: Path) -> list[str]:
    return [str(OURS_CLI), "hu", "analyze", str(folder), "--json"]


def pylinac_cmd(folder: Path) -> list[str]:
    return [str(PY_PYLINAC), "-c", PYLINAC_SCRIPT, str(folder)]


def bench_case(name: str, folder: Path, repeat: int) -> dict[str, Any]:
    """Warm up, then ``repeat`` alternating rounds; keeps the first outputs for the values."""
    rec: dict[str, Any] = {"case": name, "folder": str(folder), "ours": {}, "pylinac": {}}
    for who, cmd in (("ours", ours_cmd(folder)), ("pylinac", pylinac_cmd(folder))):
        wall, cpu, out, err, rc = run_timed(cmd)  # warm-up: file cache, .pyc
        rec[who].update(warmup_wall_s=round(wall, 3), rc=rc)
        if rc != 0:
            rec[who]["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit {rc}"
        else:
            rec[who]["output"] = json.loads(out)
    walls: dict[str, list[float]] = {"ours": [], "pylinac": []}
    cpus: dict[str, list[float]] = {"ours": [], "pylinac": []}
    for _ in range(repeat):
        for who, cmd in (("ours", ours_cmd(folder)), ("pylinac", pylinac_cmd(folder))):
            if rec[who]["rc"] != 0:
                continue
            wall, cpu, _, _, _ = run_timed(cmd)
            walls[who].append(wall)
            cpus[who].append(cpu)
    for who in ("ours", "pylinac"):
        if walls[who]:
            rec[who]["wall_s"] = [round(x, 3) for x in walls[who]]
            rec[who]["cpu_s"] = [round(x, 3) for x in cpus[who]]
            rec[who]["wall_median_s"] = round(statistics.median(walls[who]), 3)
            rec[who]["cpu_median_s"] = round(statistics.median(cpus[who]), 3)
    if walls["ours"] and walls["pylinac"]:
        rec["ratio_wall"] = round(rec["pylinac"]["wall_median_s"] / rec["ours"]["wall_median_s"], 2)
        rec["ratio_cpu"] = round(rec["pylinac"]["cpu_median_s"] / rec["ours"]["cpu_median_s"], 2)
    return rec


def insert_table(rec: dict[str, Any], reference: dict[str, float], ref_label: str) -> list[str]:
    ours = {}
    if "output" in rec["ours"]:
        ours = {
            r["name"]: r["mean"] for r in rec["ours"]["output"]["rois"] if r["module"] == "CTP404"
        }
    py = rec["pylinac"].get("output", {}).get("ctp404", {})
    lines = [f"  {'insert':12} {ref_label:>10} {'ours mean':>10} {'pylinac':>9} {'ours-ref':>9}"]
    for pname, oname in NAMES.items():
        ref = reference.get(oname, float("nan"))
        o = ours.get(oname, float("nan"))
        p = py.get(pname, float("nan"))
        lines.append(f"  {oname:12} {ref:10.1f} {o:10.1f} {p:9.1f} {o - ref:+9.1f}")
        rec.setdefault("inserts", {})[oname] = {
            "reference": ref,
            "ours_mean": o,
            "pylinac_median": p,
        }
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--noise", type=float, default=1.0, help="synthetic noise SD, HU (default 1)")
    ap.add_argument("--slices", type=int, default=81, help="synthetic slices (default 81)")
    ap.add_argument("--realdata", type=Path, default=REALDATA)
    ap.add_argument("--keep", type=Path, help="write the synthetic series here and keep it")
    ap.add_argument("--json", type=Path, help="write all figures to this JSON file")
    args = ap.parse_args()

    versions = ensure_pylinac()
    from noctis_lab.hu.synthetic import generate, write

    series = generate(
        "catphan604",
        matrix=512,
        pixel_size_mm=0.5,
        slice_thickness_mm=2.0,
        n_slices=args.slices,
        noise_sd_hu=args.noise,
        shift_mm=(3.0, -2.0, 0.0),
        roll_deg=2.0,
        seed=2024,
    )
    tmp = None
    if args.keep is not None:
        synth = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-hu-")
        synth = Path(tmp.name) / "catphan604"
    write(series, synth, overwrite=True)
    real = args.realdata / REAL_SCAN
    print(
        f"pylinac/pydicom in {VENV.name}: {versions}; ours: {OURS_CLI.relative_to(REPO)}; "
        f"{args.repeat} alternating rounds after one warm-up each; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results = []
    ref_doc = json.loads((REPO / "tests" / "realdata_reference" / f"{REAL_SCAN}.json").read_text())
    real_ref = {
        k: v["mean"] for k, v in ref_doc["circular_roi"]["modules"]["CTP404"]["rois"].items()
    }
    truth = {n: series.truth.roi("CTP404", n).true_hu for n in NAMES.values()}
    for name, folder, ref, label in (
        (f"real CBCT {REAL_SCAN} (93 slices)", real, real_ref, "circ. ROI"),
        (
            f"synthetic CatPhan 604 ({args.slices} slices, noise {args.noise:g} HU)",
            synth,
            truth,
            "truth",
        ),
    ):
        rec = bench_case(name, folder, args.repeat)
        results.append(rec)
        print(f"\n{name}")
        for who in ("ours", "pylinac"):
            r = rec[who]
            if "error" in r:
                print(f"  {who:8} FAILED: {r['error']}")
            else:
                print(
                    f"  {who:8} wall median {r['wall_median_s']:7.2f} s {r['wall_s']}  "
                    f"CPU median {r['cpu_median_s']:6.2f} s"
                )
        if "ratio_wall" in rec:
            print(
                f"  ratio (pylinac / ours): wall {rec['ratio_wall']:.1f}x (goal >= 10x), "
                f"CPU {rec['ratio_cpu']:.1f}x"
            )
        print("\n".join(insert_table(rec, ref, label)))
    if args.json:
        for rec in results:
            rec["ours"].pop("output", None)
        args.json.write_text(json.dumps({"versions": versions, "cases": results}, indent=1))
        print(f"\nwrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
