"""Find the phantom in a volume: its modules along z, its centre, its roll.

The steps (primitives in :mod:`noctis_lab.hu._find`):

1. **Reference module.** The insert ring of the phantom's reference module is looked
   for on every slice (annulus matched filter on the capped contrast, then the
   nominal pattern matched at every roll 0-360 degrees). The module is the run of
   slices around the strongest match whose match amplitude is above half its
   maximum; its centre along z is the midpoint of the half-maximum crossings. No
   outline size is assumed, so a couch, a table, a field of view smaller than the
   phantom, HU offsets and CBCT shading do not hide it.
2. **Centre and roll.** On the mean of the module's usable slices, a rigid fit of
   the nominal insert positions to the inserts' centroids gives the centre and the
   roll; inserts that do not show (missing, swapped) are left out of the fit and
   named in the notes.
3. **Other modules** sit at ``z_offset_mm`` from the reference module, in the
   direction whose uniform module is uniform (a phantom set up the other way round,
   or a series stored in reverse order, is found either way). Each module's centre
   comes from the phantom's outline on its own slices when the outline is in view,
   else from the reference module.
4. **Only a uniform module.** A series without the reference module but with a
   phantom's uniform module (a CTP486-only series, a water phantom) is measured on
   its uniform slices, and the notes say what could not be checked.

Every failure raises :class:`PhantomNotFoundError` saying what was looked for and
what was found instead. Every doubt is a note starting with ``doubt:``; a doubtful
localisation gives the result the status ``review`` (:func:`is_doubtful`). Manual
overrides (``slice``, ``centre``, ``roll``, ``module_slices``) replace the
corresponding step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from noctis_lab._errors import DicomError, PhantomNotFoundError
from noctis_lab.dicom._volume import Volume
from noctis_lab.hu._find import (
    ANGLE_STEP_DEG,
    BODY_HU,
    Coarse,
    RingScan,
    body_circle,
    body_level,
    body_start,
    circle_profile,
    coarse_grid,
    fit_inserts,
    pattern_template,
    ring_inserts,
    roll_norm,
    sample_slices,
    scan_ring,
    uniform_content,
)
from noctis_lab.hu._kinds import LocalisationMethod
from noctis_lab.hu._phantoms import Module, Phantom, Roi
from noctis_lab.hu._result import Localisation

__all__ = [
    "MIN_LOCALISATION_SCORE",
    "ModulePlacement",
    "Placement",
    "check_volume",
    "is_doubtful",
    "locate",
]

#: Below this pattern correlation at the chosen roll the localisation is doubted.
MIN_LOCALISATION_SCORE = 0.6
#: A slice shows the reference module when its pattern correlation and amplitude reach these.
MIN_CORRELATION = 0.6
MIN_AMPLITUDE = 0.25
#: Insert centroids further than this from the rigid fit (RMS, mm) make the fit doubtful.
MAX_FIT_RMS_MM = 1.5

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModulePlacement:
    """Where one module was found: its slices and the phantom centre on them."""

    module: str
    z_mm: float
    slices: tuple[int, ...]
    centre_px: tuple[float, float]
    verified: bool
    note: str = ""


@dataclass(frozen=True)
class Placement:
    """Everything measurement needs: per-module slices/centre, the roll, diagnostics."""

    modules: dict[str, ModulePlacement]
    roll_deg: float
    localisation: Localisation


def is_doubtful(loc: Localisation) -> bool:
    """Whether the phantom was found with doubts: a ``doubt`` note or a low pattern score."""
    if any(n.startswith("doubt") for n in loc.notes):
        return True
    return not math.isnan(loc.score) and loc.score < MIN_LOCALISATION_SCORE


@dataclass
class _Run:
    """Working state of one localisation (notes and manual steps accumulate here)."""

    vol: Volume
    coarse: Coarse
    positions: F64
    thick: float
    centre: tuple[float, float] | None
    roll: float | None
    slice: int | None
    overrides: dict[str, tuple[int, ...]]
    notes: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    @property
    def nz(self) -> int:
        return int(self.positions.size)

    @property
    def pixel(self) -> tuple[float, float]:
        return float(self.vol.spacing[1]), float(self.vol.spacing[2])


@dataclass(frozen=True)
class _Ref:
    """The placed reference module."""

    placement: ModulePlacement
    slice: int
    roll: float
    score: float


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------
def check_volume(vol: Volume) -> None:
    """Refuse volumes with NaN/infinite values or without any contrast (blank)."""
    hu = vol.hu
    lo, hi = float(hu.min()), float(hu.max())  # NaN propagates: one pass finds both
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = np.isfinite(hu)
        bad = np.flatnonzero(~finite.all(axis=(1, 2)))
        shown = ", ".join(str(int(i)) for i in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise DicomError(
            f"the volume has {int((~finite).sum())} non-finite HU values (NaN or infinity) "
            f"in slice(s) {shown}: check RescaleSlope/RescaleIntercept of those slices"
        )
    if hi - lo < 1.0:
        raise PhantomNotFoundError(
            f"the series is blank: every voxel is {lo:.0f} HU, so there is no phantom to find"
        )


def _check_overrides(
    phantom: Phantom,
    nz: int,
    slice: int | None,
    module_slices: Mapping[str, Sequence[int]] | None,
) -> dict[str, tuple[int, ...]]:
    overrides = {k: tuple(int(i) for i in v) for k, v in (module_slices or {}).items()}
    for name, idx in overrides.items():
        phantom.module(name)  # raises PhantomDefinitionError naming the modules
        if not idx or any(not 0 <= i < nz for i in idx):
            raise PhantomNotFoundError(
                f"module_slices[{name!r}] = {list(idx)} is not a non-empty list of slice "
                f"indices in 0..{nz - 1}"
            )
    if slice is not None and not 0 <= slice < nz:
        raise PhantomNotFoundError(f"slice={slice} is outside the series (0..{nz - 1})")
    return overrides


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Contiguous True runs as (start, stop) index pairs (stop exclusive)."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    d = np.diff(padded.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _usable(positions: F64, z_c: float, module: Module, thick: float) -> tuple[int, ...]:
    """Slices within the module, away from its edges by a slice thickness (at least 10 %)."""
    half = module.thickness_mm / 2.0 - max(thick, 0.1 * module.thickness_mm)
    idx = np.flatnonzero(np.abs(positions - z_c) <= half + 1e-6)
    if idx.size == 0:
        near = int(np.argmin(np.abs(positions - z_c)))
        if abs(positions[near] - z_c) <= module.thickness_mm / 2.0:
            return (near,)
        return ()
    return tuple(int(i) for i in idx)


# --------------------------------------------------------------------------
# the reference module (an insert ring)
# --------------------------------------------------------------------------
def _module_extent(run: _Run, scan: RingScan, good: npt.NDArray[np.bool_], ref: Module) -> float:
    """Centre (z, mm) of the reference module from the half-maximum crossings of its match."""
    amp = scan.strength
    peak = int(np.argmax(np.where(good, amp, -np.inf)))
    half = good & (amp >= 0.5 * amp[peak])
    a, b = next((a, b) for a, b in _runs(half) if a <= peak < b)
    cand = scan.slices
    z = run.positions[cand]

    def crossing(i_in: int, i_out: int) -> float:
        if not 0 <= i_out < cand.size or cand[i_out] != cand[i_in] + (i_out - i_in):
            return float(z[i_in])
        ai, ao = amp[i_in], amp[i_out]
        f = (ai - 0.5 * amp[peak]) / (ai - ao) if ai != ao else 0.5
        return float(z[i_in] + np.clip(f, 0, 1) * (z[i_out] - z[i_in]))

    z_lo, z_hi = crossing(a, a - 1), crossing(b - 1, b)
    width = abs(z_hi - z_lo)
    step = float(np.median(np.abs(np.diff(run.positions)))) if run.nz > 1 else math.inf
    if step > 0.5 * ref.thickness_mm:  # one slice per module: the slice is the module
        return float(z[peak])
    touches_lo, touches_hi = cand[a] == 0, cand[b - 1] == run.nz - 1
    if touches_lo and touches_hi:
        run.notes.append(
            f"the series ({width:.1f} mm along z) lies within the {ref.name} module; "
            "its centre is taken as the series' middle"
        )
        return 0.5 * (z_lo + z_hi)
    if touches_lo != touches_hi and width < 0.9 * ref.thickness_mm:
        if width < 0.4 * ref.thickness_mm:
            raise PhantomNotFoundError(
                f"only {width:.1f} mm of the {ref.thickness_mm:.0f} mm {ref.name} module is "
                f"inside the series (cut off at its {'start' if touches_lo else 'end'}); "
                "rescan including the whole module"
            )
        direction = 1.0 if run.positions[-1] >= run.positions[0] else -1.0
        run.notes.append(
            f"{ref.name} is cut off by the {'start' if touches_lo else 'end'} of the series: "
            f"{width:.1f} mm of {ref.thickness_mm:.0f} mm visible; centre placed from the far edge"
        )
        return (
            z_hi - direction * ref.thickness_mm / 2
            if touches_lo
            else z_lo + direction * ref.thickness_mm / 2
        )
    if not 0.6 * ref.thickness_mm <= width <= 1.6 * ref.thickness_mm + run.thick:
        run.notes.append(
            f"doubt: the {ref.name} insert pattern spans {width:.1f} mm along z, "
            f"expected about {ref.thickness_mm:.0f} mm"
        )
    return 0.5 * (z_lo + z_hi)


def _not_found(run: _Run, scan: RingScan | None, ref: Module, phantom: Phantom) -> str:
    ring, radius = ring_inserts(ref)
    materials = ", ".join(sorted({r.material for r in ring}))
    if scan is None or scan.slices.size == 0:
        found = "no slice holds material"
    else:
        k = int(np.argmax(scan.strength))
        found = (
            f"the best slice ({int(scan.slices[k])}) correlates {scan.corr[k]:.2f} with the "
            f"insert pattern at amplitude {scan.amp[k]:.2f} (need correlation >= "
            f"{MIN_CORRELATION} and amplitude >= {MIN_AMPLITUDE})"
        )
    lo, hi = float(run.positions.min()), float(run.positions.max())
    where = (
        f"was not found in slice {run.slice}"
        if run.slice is not None
        else f"is not in the series (z {lo:.1f}..{hi:.1f} mm, {run.nz} slices)"
    )
    return (
        f"{phantom.title}: the {ref.name} module (inserts {materials} on a {radius:.1f} mm "
        f"circle) {where}: {found}"
    )


def _candidates(run: _Run, ref: Module) -> npt.NDArray[np.intp]:
    """Slices to search for the reference module: a sample first, then all around its match."""
    c = run.coarse
    if run.slice is not None:
        return np.array([run.slice], dtype=np.intp)
    body = np.flatnonzero(c.material > 0.01).astype(np.intp)
    sample = sample_slices(c, run.positions, ref.thickness_mm)
    if sample.size == body.size:
        return body
    first = scan_ring(c, sample, ref)
    if first is None:
        return body
    good = (first.corr >= MIN_CORRELATION) & (first.amp >= MIN_AMPLITUDE)
    if not good.any():
        return body
    z_peak = run.positions[first.slices[int(np.argmax(np.where(good, first.strength, -1.0)))]]
    near = np.abs(run.positions[body] - z_peak) <= ref.thickness_mm + 2 * run.thick
    return np.asarray(body[near], dtype=np.intp)


def _place_ring_module(run: _Run, phantom: Phantom, ref: Module) -> _Ref | str:
    """Place the reference module; a string says why it is not in the series."""
    scan = scan_ring(run.coarse, _candidates(run, ref), ref)
    if scan is None:
        return _not_found(run, None, ref, phantom)
    good = (scan.corr >= MIN_CORRELATION) & (scan.amp >= MIN_AMPLITUDE)
    if not good.any():
        return _not_found(run, scan, ref, phantom)
    if run.slice is not None:
        run.manual.append("slice")
        ref_slice, z_ref = run.slice, float(run.positions[run.slice])
    else:
        z_ref = _module_extent(run, scan, good, ref)
        ref_slice = int(np.argmin(np.abs(run.positions - z_ref)))
    idx = run.overrides.get(ref.name)
    if idx is not None:
        run.manual.append(f"{ref.name} slices")
    else:
        idx = _usable(run.positions, z_ref, ref, run.thick) or (ref_slice,)
        strong = {int(s) for s, g in zip(scan.slices, scan.strength, strict=True) if g > 0}
        peak = float(scan.strength.max())
        kept = tuple(
            i for i in idx if i not in strong or scan.strength[scan.slices == i][0] >= 0.5 * peak
        )
        idx = kept or idx
    return _centre_and_roll(run, scan, ref, ref_slice, z_ref, tuple(idx))


def _centre_and_roll(
    run: _Run, scan: RingScan, ref: Module, ref_slice: int, z_ref: float, idx: tuple[int, ...]
) -> _Ref:
    """Centre and roll of the reference module from its inserts, on its usable slices."""
    ring, radius = ring_inserts(ref)
    dy, dx = run.pixel
    sel = np.isin(scan.slices, idx)
    if not sel.any():
        sel = scan.slices == scan.slices[int(np.argmax(scan.strength))]
    best = int(np.argmax(np.where(sel, scan.strength, -np.inf)))
    start = (
        (float(run.centre[0]), float(run.centre[1]))
        if run.centre is not None
        else (float(np.median(scan.centre[sel, 0])), float(np.median(scan.centre[sel, 1])))
    )
    roll0 = float(scan.roll[best]) if run.roll is None else float(run.roll)
    img = np.asarray(run.vol.hu[list(idx)].mean(axis=0), dtype=np.float32)
    level = body_level(img, default=0.0)
    fit = fit_inserts(
        img, level, ring, ref.background_hu, start, roll0, float(scan.amp[best]), dy, dx
    )
    centre, roll = start, roll0
    if fit is None:
        run.notes.append(
            f"doubt: fewer than three {ref.name} inserts showed clearly enough to fit the "
            "centre and roll; the pattern match was used"
        )
    else:
        if run.centre is None:
            centre = fit.centre
        if run.roll is None:
            if abs(roll_norm(fit.roll - roll0)) > 10.0:
                run.notes.append(
                    f"doubt: the insert centroids put the roll at {fit.roll:+.1f} deg, "
                    f"{abs(roll_norm(fit.roll - roll0)):.1f} deg from the pattern match"
                )
            roll = fit.roll
        _note_fit(run, ref, ring, fit.used, fit.left_out, fit.rms_mm)
    if run.centre is not None:
        run.manual.append("centre")
    if run.roll is not None:
        run.manual.append("roll")
    score = _pattern_score(img, level, ring, radius, ref, centre, roll, dy, dx)
    if score < MIN_LOCALISATION_SCORE:
        run.notes.append(
            f"doubt: the {ref.name} insert pattern correlates only {score:.3f} with the "
            "nominal values at the roll found"
        )
    run.notes.append(
        f"{ref.name} found at z = {z_ref:.1f} mm (slice {ref_slice}), {len(idx)} slice(s), "
        f"roll {roll:+.2f} deg, pattern correlation {score:.3f}"
    )
    return _Ref(ModulePlacement(ref.name, z_ref, idx, centre, True), ref_slice, roll, score)


def _note_fit(
    run: _Run,
    ref: Module,
    ring: list[Roi],
    used: tuple[str, ...],
    left_out: tuple[str, ...],
    rms_mm: float,
) -> None:
    contrasty = [r for r in ring if abs((r.nominal_hu or 0.0) - ref.background_hu) >= 60.0]
    need = max(3, math.ceil(0.6 * len(contrasty)))
    if len(used) < need:
        run.notes.append(
            f"doubt: only {len(used)} of {len(contrasty)} {ref.name} inserts fitted the "
            "expected layout"
        )
    if rms_mm > MAX_FIT_RMS_MM:
        run.notes.append(
            f"doubt: the {ref.name} insert centroids lie {rms_mm:.1f} mm (RMS) from the "
            "phantom's layout"
        )
    missing = [n for n in left_out if n in {r.name for r in contrasty}]
    if missing:
        run.notes.append(
            f"insert(s) {', '.join(missing)} of {ref.name} showed less than 40% of their "
            "nominal contrast against the module's background where the layout puts them "
            "(a missing or swapped insert, or a background that is not water-equivalent); "
            "measured at their nominal position"
        )


def _pattern_score(
    img: npt.NDArray[np.float32],
    level: float,
    ring: list[Roi],
    radius: float,
    ref: Module,
    centre: tuple[float, float],
    roll: float,
    dy: float,
    dx: float,
) -> float:
    """Pearson correlation of the full-resolution circle profile with the rolled pattern."""
    band = min(0.4 * min(r.reach_mm for r in ring), 2.0)
    prof = circle_profile(img, centre[0], centre[1], radius, band, dy, dx) - level
    tmpl = np.roll(pattern_template(ring, radius, ref.background_hu), round(roll / ANGLE_STEP_DEG))
    ok = np.isfinite(prof)
    if ok.sum() < 10:
        return math.nan
    p, t = prof[ok] - prof[ok].mean(), tmpl[ok] - tmpl[ok].mean()
    den = math.sqrt(float((p * p).sum() * (t * t).sum()))
    return float((p * t).sum() / den) if den > 0 else math.nan


# --------------------------------------------------------------------------
# uniform modules
# --------------------------------------------------------------------------
def _module_reach(module: Module) -> float:
    """Radius (mm) that a module's ROIs span."""
    reach = 20.0
    for r in module.rois:
        x, y = r.xy_mm
        reach = max(reach, math.hypot(x, y) + r.radius_mm)
    return reach


def _centre_on(
    run: _Run, phantom: Phantom, idx: tuple[int, ...], fallback: tuple[float, float] | None
) -> tuple[tuple[float, float], str, bool] | None:
    """The phantom centre on some slices: the caller's, the outline's, or the fallback.

    The flag says whether the outline was seen with the phantom's size.
    """
    if run.centre is not None:
        return (float(run.centre[0]), float(run.centre[1])), "centre given by the caller", True
    s = idx[len(idx) // 2]
    start = fallback if fallback is not None else body_start(run.coarse, s)
    if start is None:
        return None
    expect = min(phantom.body.half_axes_mm)
    circle = body_circle(run.coarse, s, start, expect)
    if circle is not None and abs(circle.radius_mm - expect) <= 0.1 * expect:
        return circle.centre, f"outline {2 * circle.radius_mm:.0f} mm across", True
    if fallback is not None:
        return fallback, "outline not in view: the reference module's centre", False
    return start, "outline not fitted: centre of the material", False


def _object_size(run: _Run, s: int) -> str:
    """The largest object on slice ``s`` in words (for an error message)."""
    start = body_start(run.coarse, s)
    circle = body_circle(run.coarse, s, start, None) if start is not None else None
    if circle is None:
        return "no round object"
    return f"an object {2 * circle.radius_mm:.0f} mm across (slice {s})"


def _place_uniform_reference(
    run: _Run, phantom: Phantom, module: Module, whole_phantom: bool
) -> _Ref | str:
    """Place a uniform module with no reference to lean on (water phantom, CTP486 alone).

    ``whole_phantom``: the module is the whole phantom (a water phantom), so slices of
    the phantom's size that are not uniform cast doubt on the choice of phantom.
    """
    c = run.coarse
    if module.name in run.overrides:
        idx = run.overrides[module.name]
        run.manual.append(f"{module.name} slices")
    elif run.slice is not None:
        run.manual.append("slice")
        idx = (run.slice,)
    else:
        body = np.flatnonzero(c.material > 0.05)
        if body.size == 0:
            return (
                f"no phantom body: no slice holds material (nothing above {BODY_HU:.0f} HU); "
                "is this an air scan?"
            )
        uniform = np.zeros(run.nz, dtype=bool)
        reasons: list[str] = []
        sized = 0
        for s in body:
            got = _centre_on(run, phantom, (int(s),), None)
            if got is None or not got[2]:
                continue
            sized += 1
            flags, why = uniform_content(c, np.array([s]), got[0], _module_reach(module))
            uniform[s] = bool(flags[0])
            reasons.append(why)
        runs = _runs(uniform)
        if not sized:
            mid = int(body[body.size // 2])
            return (
                f"no slice shows a body the size of {phantom.title} "
                f"({2 * min(phantom.body.half_axes_mm):.0f} mm across): found "
                f"{_object_size(run, mid)}"
            )
        if not runs:
            return (
                f"{phantom.title}: no slice shows the uniform {module.name} module "
                f"(e.g. {reasons[len(reasons) // 2]})"
            )
        a, b = max(runs, key=lambda ab: ab[1] - ab[0])
        structured = sized - int(uniform.sum())
        if whole_phantom and structured > 0:
            run.notes.append(
                f"doubt: {structured} of {sized} slices showing a body the size of "
                f"{phantom.title} are not uniform (inserts or other structures), but a "
                f"{phantom.title} is uniform throughout: is this the right phantom?"
            )
        z_mid = float(0.5 * (run.positions[a] + run.positions[b - 1]))
        half = module.thickness_mm / 2.0 - max(run.thick, 0.1 * module.thickness_mm)
        inner = [
            i
            for i in range(a, b)
            if abs(run.positions[i] - z_mid) <= half
            and (b - a < 3 or a < i < b - 1)  # away from the run's ends where possible
        ]
        idx = tuple(inner) or tuple(range(a, b))
    got = _centre_on(run, phantom, idx, None)
    if got is None:
        return f"{phantom.title}: no phantom outline on slices {list(idx)}"
    centre, how, _ = got
    flags, why = uniform_content(c, np.asarray(idx, dtype=np.intp), centre, _module_reach(module))
    if not flags.all():
        return (
            f"{phantom.title}: the {module.name} module should be uniform but is not ({why}); "
            "is this the right phantom?"
        )
    z = float(np.mean(run.positions[list(idx)]))
    ref_slice = int(idx[len(idx) // 2])
    if run.roll is None:
        run.notes.append(f"roll not determined ({module.name} is uniform); 0 deg assumed")
    run.notes.append(
        f"{module.name} found at z = {z:.1f} mm, {len(idx)} slice(s); centre from the {how}; {why}"
    )
    roll = 0.0 if run.roll is None else float(run.roll)
    return _Ref(ModulePlacement(module.name, z, idx, centre, True, how), ref_slice, roll, math.nan)


def _try_at(
    run: _Run, phantom: Phantom, m: Module, ref: _Ref, sign: float
) -> tuple[ModulePlacement | None, float, str]:
    """A module at its offset in one z direction; the fraction of its slices that verify."""
    z_c = ref.placement.z_mm + sign * m.z_offset_mm
    idx = _usable(run.positions, z_c, m, run.thick)
    if not idx:
        return None, 0.0, f"z = {z_c:.1f} mm is outside the series"
    got = _centre_on(run, phantom, idx, ref.placement.centre_px)
    if got is None:
        return None, 0.0, f"z = {z_c:.1f} mm shows no phantom"
    centre, how, _ = got
    note = f"centre from the {how}"
    if sign != 1.0:
        note = (
            "found in the opposite z direction to the phantom file's offsets "
            f"(phantom set up reversed); {note}"
        )
    if m.kind != "uniformity":
        note += "; content not verified for this module kind"
        return ModulePlacement(m.name, z_c, idx, centre, True, note), 1.0, ""
    flags, why = uniform_content(
        run.coarse, np.asarray(idx, dtype=np.intp), centre, _module_reach(m)
    )
    fraction = float(flags.mean())
    if fraction < 0.5:
        return None, fraction, f"z = {z_c:.1f} mm is not uniform ({why})"
    if not flags.all():
        dropped = [i for i, f in zip(idx, flags, strict=True) if not f]
        idx = tuple(i for i, f in zip(idx, flags, strict=True) if f)
        _, why = uniform_content(
            run.coarse, np.asarray(idx, dtype=np.intp), centre, _module_reach(m)
        )
        note += f"; slice(s) {dropped} left out (not uniform or outside the phantom)"
    return ModulePlacement(m.name, z_c, idx, centre, True, f"{note}; {why}"), fraction, ""


def _place_other(
    run: _Run, phantom: Phantom, m: Module, ref: _Ref, direction: float | None
) -> tuple[ModulePlacement | None, float | None, str]:
    """Place a non-reference module at its offset.

    A uniform module is tried in both z directions and placed where more of its
    slices are uniform (a phantom set up the other way round, or a series stored in
    reverse); that decides the direction for the other modules. Returns the
    placement (or None), the direction and, when not placed, why.
    """
    if m.name in run.overrides:
        idx = run.overrides[m.name]
        run.manual.append(f"{m.name} slices")
        got = _centre_on(run, phantom, idx, ref.placement.centre_px)
        centre = got[0] if got else ref.placement.centre_px
        z = float(np.mean(run.positions[list(idx)]))
        note = "slices given by the caller"
        return ModulePlacement(m.name, z, idx, centre, True, note), direction, ""
    if m.kind != "uniformity" and direction is not None:
        mp, _, why = _try_at(run, phantom, m, ref, direction)
        return mp, direction, why
    first = 1.0 if direction is None else direction
    tries = [(sign, *_try_at(run, phantom, m, ref, sign)) for sign in (first, -first)]
    placed = [t for t in tries if t[1] is not None]
    if not placed:
        return None, direction, "; ".join(t[3] for t in tries)
    sign, mp, _, _ = max(placed, key=lambda t: t[2])
    return mp, sign if m.kind == "uniformity" else direction, ""


# --------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------
def locate(
    vol: Volume,
    phantom: Phantom,
    *,
    slice: int | None = None,
    centre: tuple[float, float] | None = None,
    roll: float | None = None,
    module_slices: Mapping[str, Sequence[int]] | None = None,
    coarse: Coarse | None = None,
) -> Placement:
    """Locate ``phantom`` in ``vol``.

    Parameters
    ----------
    vol : Volume
        The series.
    phantom : Phantom
        The phantom to look for.
    slice : int, optional
        Index of the central slice of the reference module (skips the z search).
    centre : (float, float), optional
        Phantom centre ``(x, y)`` in pixels (column, row), used on every slice.
    roll : float, optional
        Phantom roll in degrees (skips the roll search).
    module_slices : mapping, optional
        Module name -> slice indices to measure (skips that module's z placement).
    coarse : Coarse, optional
        ``vol`` on the coarse search grid, when the caller has it already.

    Returns
    -------
    Placement
        Per-module slices and centres, the roll, and the :class:`Localisation`.

    Raises
    ------
    PhantomNotFoundError
        Neither the reference module nor a uniform module of the phantom is in the
        series, or a manual override is outside the volume; the message says what
        was looked for and what was found.
    DicomError
        The volume holds NaN or infinite values.
    """
    check_volume(vol)
    positions = np.asarray(vol.slice_positions, dtype=np.float64)
    thick = vol.scanner.slice_thickness_mm
    if thick is None or not thick > 0:
        thick = abs(vol.spacing[0])
    run = _Run(
        vol=vol,
        coarse=coarse if coarse is not None else coarse_grid(vol),
        positions=positions,
        thick=float(thick),
        centre=None if centre is None else (float(centre[0]), float(centre[1])),
        roll=None if roll is None else float(roll),
        slice=slice,
        overrides=_check_overrides(phantom, positions.size, slice, module_slices),
    )
    ref_module = phantom.module()
    ring, _ = ring_inserts(ref_module)
    found = (
        _place_ring_module(run, phantom, ref_module)
        if ring
        else _place_uniform_reference(run, phantom, ref_module, whole_phantom=True)
    )
    measured_ref = ref_module
    if isinstance(found, str):
        if run.slice is not None:
            raise PhantomNotFoundError(found)
        found, measured_ref = _fallback_to_uniform(run, phantom, ref_module, found)
    placements = {measured_ref.name: found.placement}
    if measured_ref is ref_module:
        direction: float | None = None
        others = [m for m in phantom.modules if m.name != ref_module.name and m.rois]
        # uniform modules first: where they are uniform decides the z direction
        for m in sorted(others, key=lambda m: m.kind != "uniformity"):
            mp, direction, why = _place_other(run, phantom, m, found, direction)
            if mp is None:
                run.notes.append(f"module {m.name} not measured: {why}")
            else:
                placements[m.name] = mp
                run.notes.append(
                    f"{m.name} at z = {mp.z_mm:.1f} mm, {len(mp.slices)} slice(s): {mp.note}"
                )
    return Placement(placements, found.roll, _localisation(run, found, placements))


def _fallback_to_uniform(
    run: _Run, phantom: Phantom, ref_module: Module, why_not: str
) -> tuple[_Ref, Module]:
    """The reference module is absent: measure the phantom's uniform module alone, if shown."""
    uniform = [m for m in phantom.modules if m.kind == "uniformity" and m.rois]
    if not uniform or ref_module in uniform:
        raise PhantomNotFoundError(why_not)
    module = uniform[0]
    got = _place_uniform_reference(run, phantom, module, whole_phantom=False)
    if isinstance(got, str):
        raise PhantomNotFoundError(f"{why_not}; nor is its uniform module: {got}")
    run.notes.append(
        f"the {ref_module.name} module is not in the series: only {module.name} was measured, "
        f"and its position along the phantom could not be checked against {ref_module.name}"
    )
    return got, module


def _localisation(run: _Run, ref: _Ref, placements: dict[str, ModulePlacement]) -> Localisation:
    spread = 0.0
    manual = list(dict.fromkeys(run.manual))
    method = (
        LocalisationMethod.AUTO
        if not manual
        else (
            LocalisationMethod.MANUAL
            if {"centre", "roll", "slice"} <= set(manual)
            else LocalisationMethod.MIXED
        )
    )
    notes = list(run.notes)
    if manual:
        notes.append(f"given by the caller: {', '.join(manual)}")
    return Localisation(
        method=method,
        reference_slice=int(ref.slice),
        reference_z_mm=float(ref.placement.z_mm),
        centre_px=ref.placement.centre_px,
        centre_spread_px=spread,
        roll_deg=float(ref.roll),
        module_slices={k: v.slices for k, v in placements.items()},
        score=ref.score,
        notes=tuple(notes),
    )
