"""Benchmark: ``noctis_lab.hu.analyze`` against pylinac's ``CatPhan604(folder).analyze()``.

Both read the same synthetic CatPhan 604 series written by our generator
(``noctis_lab.hu.synthetic``: 80 slices, 512x512 at 0.5 mm, 2 mm slices, noise SD
``--noise`` HU, default 1). pylinac needs pydicom<3 while we use pydicom 3, so pylinac runs in
its own virtual environment ``bench/.venv-pylinac`` (created here on first use
with ``python3 -m venv`` and ``pip install pylinac``) in a subprocess.

Printed, from the same run:

* the CTP404 insert means from both and from the ground truth (goal: agree within 1 HU);
* whole-process times: a fresh process that imports, loads the series, locates,
  measures and judges (ours: ``analyze(folder)``; pylinac: ``CatPhan604(folder).analyze()``),
  median of ``--repeat`` runs each;
* in-process times: ours ``analyze(volume)`` on the already loaded volume vs
  pylinac's ``analyze()`` on its already loaded images (median of ``--repeat``);
* the ratios (goals: whole process >= 10x, in-process >= 30x).

Usage::

    .venv/bin/python bench/bench_hu_pylinac.py [--repeat 3] [--noise 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-pylinac"
PY_PYLINAC = VENV / "bin" / "python"

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
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    from pylinac import CatPhan604
    import pylinac
    folder, repeat = sys.argv[1], int(sys.argv[2])
    times = []
    ct = None
    for _ in range(repeat):
        ct = CatPhan604(folder)
        t = time.perf_counter()
        ct.analyze()
        times.append(time.perf_counter() - t)
    rois = {n: {"median": float(r.pixel_value), "nominal": float(r.nominal_val)}
            for n, r in ct.ctp404.rois.items()}
    print(json.dumps({"version": pylinac.__version__, "analyze_s": times, "rois": rois,
                      "origin_slice": int(ct.origin_slice),
                      "roll_deg": float(ct.catphan_roll)}))
    """
)


def ensure_pylinac() -> str:
    """Create ``bench/.venv-pylinac`` with pylinac if missing; returns pylinac's version."""
    if not PY_PYLINAC.exists():
        print(f"creating {VENV} and installing pylinac (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(PY_PYLINAC), "-m", "pip", "install", "-q", "pylinac"], check=True)
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


def whole_process(cmd: list[str], repeat: int) -> list[float]:
    times = []
    env = {**os.environ, "MPLBACKEND": "Agg"}
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise RuntimeError(f"{cmd[:3]} failed:\n{r.stderr[-3000:]}")
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--noise", type=float, default=1.0, help="noise SD, HU (default 1)")
    ap.add_argument("--slices", type=int, default=80)
    ap.add_argument("--keep", type=Path, help="write the series here and keep it")
    args = ap.parse_args()

    versions = ensure_pylinac()
    from noctis_lab.dicom import load_series
    from noctis_lab.hu import analyze
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
        folder = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-hu-")
        folder = Path(tmp.name) / "catphan604"
    write(series, folder, overwrite=True)
    print(
        f"series: {folder} ({args.slices} slices 512x512, noise SD {args.noise} HU); "
        f"pylinac/pydicom in {VENV.name}: {versions}"
    )

    # pylinac: in-process analyze() times and insert values
    r = subprocess.run(
        [str(PY_PYLINAC), "-c", PYLINAC_SCRIPT, str(folder), str(args.repeat)],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    if r.returncode != 0:
        print("pylinac failed on our synthetic series:\n" + r.stderr[-4000:])
        return 1
    py = json.loads(r.stdout.strip().splitlines()[-1])

    # ours: in-process on the loaded volume
    vol = load_series(folder)
    ours_times = []
    result = None
    for _ in range(max(args.repeat, 5)):
        t = time.perf_counter()
        result = analyze(vol, "catphan604", "seed")
        ours_times.append(time.perf_counter() - t)
    assert result is not None

    print("\nCTP404 inserts (HU)      truth    ours(mean)  pylinac(median)  ours-pylinac")
    worst = 0.0
    for pname, oname in NAMES.items():
        truth = series.truth.roi("CTP404", oname).true_hu
        ours = result.roi(oname, "CTP404").mean
        theirs = py["rois"].get(pname, {}).get("median", float("nan"))
        worst = max(worst, abs(ours - theirs))
        print(
            f"  {pname:9} {oname:12} {truth:8.1f} {ours:10.2f} {theirs:14.2f} "
            f"{ours - theirs:+11.2f}"
        )
    print(
        f"  largest |ours - pylinac|: {worst:.2f} HU (goal <= 1 HU); "
        f"roll found: ours {result.localisation.roll_deg:+.2f} deg, "
        f"pylinac {py['roll_deg']:+.2f} deg, truth {series.truth.roll_deg:+.2f} deg"
    )

    ours_cmd = [
        sys.executable,
        "-c",
        "import sys; from noctis_lab.hu import analyze; r = analyze(sys.argv[1]); print(r.status)",
        str(folder),
    ]
    py_cmd = [
        str(PY_PYLINAC),
        "-c",
        "import sys, warnings; warnings.simplefilter('ignore'); "
        "from pylinac import CatPhan604; c = CatPhan604(sys.argv[1]); c.analyze()",
        str(folder),
    ]
    ours_whole = whole_process(ours_cmd, args.repeat)
    py_whole = whole_process(py_cmd, args.repeat)

    o_in, p_in = statistics.median(ours_times), statistics.median(py["analyze_s"])
    o_wh, p_wh = statistics.median(ours_whole), statistics.median(py_whole)
    print("\n                         ours        pylinac     ratio   goal")
    print(f"  whole process       {o_wh:8.3f} s  {p_wh:8.3f} s  {p_wh / o_wh:7.1f}x   >= 10x")
    print(f"  in-process analyze  {o_in:8.4f} s  {p_in:8.3f} s  {p_in / o_in:7.1f}x   >= 30x")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
