"""The demo set: synthetic QA history for four scanners, so dashboards have data at once.

Layout: ``root/<scanner-slug>/<YYYY-MM-DD>/`` (one series each, DICOM plus
``ground_truth.json``) and ``root/manifest.json`` listing every series.

Scenarios (dates spread from April to 2026-11-20):

* ``ct-onc-1`` (Siemens): stable, CatPhan 604.
* ``ct-rad-2`` (GE): QA twice a month (16 dates); stable for its first ten, then
  the offset climbs 1.1 HU per record (about +6.6 HU at the end), CatPhan 604.
  Long enough for the CUSUM's baseline of ten *and* its alarm; the trend test
  (a regression slope with its CI) flags it a few records earlier.
* ``ct-em-3`` (Philips): the scale drifts up to +2.1 %, CatPhan 504.
* ``ct-rt-4`` (Canon): stable, then clearly miscalibrated on its last two dates
  (offset +14 HU, scale 0.97), CatPhan 604.

plus one ACR 464, one water-cylinder and one CIRS 062M-like series. Images are
256 x 256 at 1 mm, 5 mm slices, only the z range the analysis needs, noise
5-7 HU (a routine CatPhan protocol, inside the seed profile's 10 HU noise
limit); the whole set is about 100 MB and writes in seconds.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from noctis_lab.dicom._volume import ScannerInfo
from noctis_lab.hu._phantoms import load_phantom

__all__ = ["DEMO_DATES", "DEMO_SCANNERS", "demo_plan", "demo_series", "write_demo_set"]

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "noctis-demo-set/1"
LAST_DATE = date(2026, 11, 20)
#: Eight QA dates, roughly monthly, ending on 2026-11-20.
DEMO_DATES = tuple(LAST_DATE - timedelta(days=35 * k) for k in range(7, -1, -1))
#: Sixteen QA dates over the same span (twice a month), for the drifting scanner.
TWICE_MONTHLY = tuple(LAST_DATE - timedelta(days=round(17.5 * k)) for k in range(15, -1, -1))
#: Records of the drifting scanner before its offset starts to climb (the CUSUM baseline).
_DRIFT_START = 10


@dataclass(frozen=True)
class _Scanner:
    slug: str
    info: ScannerInfo
    phantom: str
    scenario: str
    noise_sd_hu: float
    seed: int
    dates: tuple[date, ...] = DEMO_DATES


DEMO_SCANNERS: tuple[_Scanner, ...] = (
    _Scanner(
        "ct-onc-1",
        ScannerInfo(
            manufacturer="SIEMENS",
            model="SOMATOM go.Top",
            station="CT-ONC-1",
            serial="108213",
            software_versions="syngo CT VA40A",
            institution="Noctis Demo Hospital",
            kvp=120.0,
            tube_current_ma=250.0,
            convolution_kernel="Br40",
        ),
        "catphan604",
        "stable",
        5.5,
        101,
    ),
    _Scanner(
        "ct-rad-2",
        ScannerInfo(
            manufacturer="GE MEDICAL SYSTEMS",
            model="Revolution EVO",
            station="CT-RAD-2",
            serial="GE77421",
            software_versions="revo_evo.64",
            institution="Noctis Demo Hospital",
            kvp=120.0,
            tube_current_ma=220.0,
            convolution_kernel="STANDARD",
        ),
        "catphan604",
        "offset_drift",
        6.0,
        202,
        TWICE_MONTHLY,
    ),
    _Scanner(
        "ct-em-3",
        ScannerInfo(
            manufacturer="Philips",
            model="Incisive CT",
            station="CT-EM-3",
            serial="PH5530",
            software_versions="4.1.2",
            institution="Noctis Demo Hospital",
            kvp=120.0,
            tube_current_ma=200.0,
            convolution_kernel="B",
        ),
        "catphan504",
        "scale_drift",
        6.5,
        303,
    ),
    _Scanner(
        "ct-rt-4",
        ScannerInfo(
            manufacturer="CANON_MEC",
            model="Aquilion Prime SP",
            station="CT-RT-4",
            serial="CN3391",
            software_versions="V10.12",
            institution="Noctis Demo Hospital",
            kvp=120.0,
            tube_current_ma=300.0,
            convolution_kernel="FC13",
        ),
        "catphan604",
        "failing",
        5.0,
        404,
    ),
)

#: Extra single series: (scanner slug, phantom, date).
_EXTRAS = (
    ("ct-onc-1", "acr464", LAST_DATE - timedelta(days=2)),
    ("ct-rad-2", "water", LAST_DATE - timedelta(days=1)),
    ("ct-em-3", "cirs062m", LAST_DATE - timedelta(days=3)),
)

_COMMON: dict[str, Any] = {
    "matrix": 256,
    "pixel_size_mm": 1.0,
    "slice_thickness_mm": 5.0,
    "noise_correlation_mm": 0.8,
}


def _z_range(phantom: str) -> tuple[float, float]:
    """From 15 mm below the lowest to 15 mm above the highest measured module."""
    ph = load_phantom(phantom)
    kinds = {"sensitometry", "uniformity", "acr_module1", "electron_density"}
    zs = [m.z_offset_mm for m in ph.modules if m.kind in kinds]
    lo = 5.0 * math.floor((min(zs) - 15.0) / 5.0)
    hi = 5.0 * math.ceil((max(zs) + 15.0) / 5.0)
    return lo, hi


def _calibration(scenario: str, k: int, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """``(scale, offset)`` of date ``k`` of ``n`` for a scenario (small jitter included)."""
    jitter_off = float(rng.normal(0.0, 0.6))
    jitter_scale = float(rng.normal(0.0, 0.0015))
    if scenario == "offset_drift":
        return 1.0 + jitter_scale, 1.1 * max(0, k - _DRIFT_START + 1) + jitter_off
    if scenario == "scale_drift":
        return 1.0 + 0.003 * k + jitter_scale, jitter_off
    if scenario == "failing" and k >= n - 2:
        return 0.97, 14.0 + jitter_off
    return 1.0 + jitter_scale, jitter_off


def demo_plan() -> list[dict[str, Any]]:
    """Every demo series: its folder (relative), scenario and :func:`generate` arguments."""
    plan: list[dict[str, Any]] = []
    by_slug = {s.slug: s for s in DEMO_SCANNERS}
    for sc in DEMO_SCANNERS:
        rng = np.random.default_rng(sc.seed)
        for k, day in enumerate(sc.dates):
            scale, offset = _calibration(sc.scenario, k, len(sc.dates), rng)
            shift = (
                round(float(rng.uniform(-4, 4)), 2),
                round(float(rng.uniform(-4, 4)), 2),
                round(float(rng.uniform(-1.5, 1.5)), 2),
            )
            plan.append(
                {
                    "slug": sc.slug,
                    "date": day,
                    "scenario": sc.scenario,
                    "phantom": sc.phantom,
                    "kwargs": {
                        **_COMMON,
                        "z_range_mm": _z_range(sc.phantom),
                        "noise_sd_hu": round(sc.noise_sd_hu * float(rng.uniform(0.95, 1.05)), 2),
                        "scale": round(scale, 5),
                        "offset_hu": round(offset, 2),
                        "shift_mm": shift,
                        "roll_deg": round(float(rng.uniform(-2.0, 2.0)), 2),
                        "seed": sc.seed * 100 + k,
                        "scanner": replace(
                            sc.info, series_description=f"{sc.phantom} QA (synthetic)"
                        ),
                        "acquisition_datetime": f"{day.isoformat()}T07:{15 + 2 * k:02d}:00",
                    },
                }
            )
    for i, (slug, phantom, day) in enumerate(_EXTRAS):
        sc = by_slug[slug]
        plan.append(
            {
                "slug": slug,
                "date": day,
                "scenario": "reference",
                "phantom": phantom,
                "kwargs": {
                    **_COMMON,
                    "z_range_mm": _z_range(phantom),
                    "noise_sd_hu": sc.noise_sd_hu,
                    "shift_mm": (1.5, -2.0, 0.5),
                    "roll_deg": 0.8,
                    "seed": 9000 + i,
                    "scanner": replace(sc.info, series_description=f"{phantom} QA (synthetic)"),
                    "acquisition_datetime": f"{day.isoformat()}T18:30:00",
                },
            }
        )
    return plan


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_demo_set(root: str | Path, *, progress: bool = True) -> list[Path]:
    """Write the demo set under ``root`` (replacing an earlier one); returns the folders."""
    from tqdm.auto import tqdm

    from noctis_lab.hu.synthetic import generate, write

    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    plan = demo_plan()
    folders: list[Path] = []
    entries: list[dict[str, Any]] = []
    for item in tqdm(plan, desc="demo series", unit="series", disable=not progress):
        rel = Path(_slug(item["slug"])) / item["date"].isoformat()
        series = generate(item["phantom"], **item["kwargs"])
        folder = write(series, out / rel, overwrite=True)
        folders.append(folder)
        t = series.truth
        entries.append(
            {
                "path": rel.as_posix(),
                "truth": (rel / "ground_truth.json").as_posix(),
                "phantom": t.phantom,
                "phantom_title": t.phantom_title,
                "scanner": t.scanner.to_dict(),
                "scanner_key": t.scanner.key,
                "scanner_slug": item["slug"],
                "date": item["date"].isoformat(),
                "acquisition_datetime": t.scanner.acquisition_datetime,
                "scenario": item["scenario"],
                "scale": t.scale,
                "offset_hu": t.offset_hu,
                "series_uid": t.series_uid,
                "n_slices": len(t.slice_positions_mm),
            }
        )
    manifest = {"schema": MANIFEST_SCHEMA, "series": entries}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
    return folders


def demo_series(
    phantom: str | None = "catphan604",
    *,
    scanner: str | None = None,
    root: str | Path | None = None,
    latest: bool = False,
) -> Path:
    """The folder of one demo series, for notebooks and examples.

    Parameters
    ----------
    phantom : str, optional
        Only series of this phantom (``None``: any).
    scanner : str, optional
        Only series of this scanner: its slug (``"ct-onc-1"``) or its key.
    root : str or Path, optional
        The demo set (default: :func:`noctis_lab._paths.demo_dir`).
    latest : bool
        The newest matching series instead of the oldest.

    Raises
    ------
    NoFilesFoundError
        No demo set at ``root`` (run ``noctis-lab demo``), or no series matches.
    """
    from noctis_lab import _paths
    from noctis_lab._errors import NoFilesFoundError

    base = Path(root) if root is not None else _paths.demo_dir()
    path = base / MANIFEST
    if not path.is_file():
        raise NoFilesFoundError(f"no demo set at {base}: run `noctis-lab demo` (or `make demo`)")
    entries = json.loads(path.read_text("utf-8"))["series"]
    hits = [
        e
        for e in entries
        if (phantom is None or e["phantom"] == phantom)
        and (scanner is None or scanner in (e["scanner_slug"], e["scanner_key"]))
    ]
    if not hits:
        raise NoFilesFoundError(
            f"the demo set at {base} has no series of phantom {phantom!r}"
            + (f" on scanner {scanner!r}" if scanner else "")
        )
    hits.sort(key=lambda e: (e["date"], e["path"]))
    return base / str((hits[-1] if latest else hits[0])["path"])
