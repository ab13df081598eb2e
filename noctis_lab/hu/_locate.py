"""Find the phantom in a volume: its slices along z, its centre, its roll.

What is looked for, in order:

1. **Body, per slice.** Voxels above -400 HU; for each image row the left and right
   body edges (sub-pixel, by linear interpolation of the -400 HU crossing), for each
   column the top and bottom edges. The centre is the median of the chord
   midpoints over the longer chords, so internal holes (air inserts) and a few odd
   rows do not move it; the size is the longest chord. A slice shows the phantom
   when that size matches the phantom file's body within 15%.
2. **Reference module along z.** On every body slice the HU along the circle of
   the reference module's inserts is sampled (a band of radii, 0.5 degree steps).
   For each candidate roll (-25..+25 degrees) the sampled insert values are
   correlated with the nominal HU of the inserts; the regression slope is the
   "amplitude" (1 inside the module, about 0.5 on a slice half in it, 0 outside).
   The module is the run of slices around the strongest amplitude where the
   amplitude is above half its maximum and the correlation high; its centre is
   the midpoint of the interpolated half-maximum crossings.
3. **Roll.** The coarse roll maximises the correlation summed over the module's
   slices; it is refined by the contrast-weighted angular centroid of every
   insert on the slice-averaged circle profile.
4. **Other modules** sit at ``z_offset_mm`` from the reference module; a uniform
   module is checked to be uniform. If it is not, the opposite z direction is
   tried (a phantom set up the other way round) and the choice is noted.

Every failure raises :class:`PhantomNotFoundError` saying what was looked for
and what was found instead; every doubt is written to ``Localisation.notes``.
Manual overrides (``slice``, ``centre``, ``roll``, ``module_slices``) replace the
corresponding step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from noctis_lab._errors import DicomError, PhantomNotFoundError
from noctis_lab.dicom._volume import Volume
from noctis_lab.hu._phantoms import Module, Phantom, Roi
from noctis_lab.hu._result import Localisation

__all__ = ["MIN_LOCALISATION_SCORE", "ModulePlacement", "Placement", "is_doubtful", "locate"]

BODY_THRESHOLD_HU = -400.0
ROLL_SEARCH_DEG = 25.0
ANGLE_STEP_DEG = 0.5
MIN_CORRELATION = 0.9
#: Below this insert-pattern correlation at the chosen roll the localisation is doubted.
MIN_LOCALISATION_SCORE = 0.97
BODY_SIZE_TOLERANCE = 0.15

F32 = npt.NDArray[np.float32]
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


# --------------------------------------------------------------------------
# body
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Body:
    present: npt.NDArray[np.bool_]
    cx: F64
    cy: F64
    width_mm: F64
    height_mm: F64


def _edges(
    mask: npt.NDArray[np.bool_], values: F32, axis_len: int
) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
    """Sub-pixel first/last crossing along the last axis; returns (first, last, has)."""
    has: npt.NDArray[np.bool_] = np.asarray(mask.any(axis=-1))
    first = np.argmax(mask, axis=-1)
    last = axis_len - 1 - np.argmax(mask[..., ::-1], axis=-1)
    t = BODY_THRESHOLD_HU

    def frac(inside: npt.NDArray[np.intp], outside: npt.NDArray[np.intp]) -> F64:
        vi = np.take_along_axis(values, inside[..., None], axis=-1)[..., 0].astype(np.float64)
        vo = np.take_along_axis(values, outside[..., None], axis=-1)[..., 0].astype(np.float64)
        den = vi - vo
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(np.abs(den) > 1e-6, (vi - t) / den, 0.0)
        return np.clip(f, 0.0, 1.0)

    prev = np.clip(first - 1, 0, axis_len - 1)
    nxt = np.clip(last + 1, 0, axis_len - 1)
    f_first = first - frac(first, prev) * (first > 0)
    f_last = last + frac(last, nxt) * (last < axis_len - 1)
    return f_first.astype(np.float64), f_last.astype(np.float64), has


def _body(vol: Volume, max_width_mm: float) -> _Body:
    """Per-slice body centre and size from the row chords of the thresholded image.

    Rows wider than ``max_width_mm`` (a couch, a table top) are left out; the centre
    is the area-weighted centroid of the remaining chords, i.e. of the body with its
    internal holes filled.
    """
    step = max(vol.shape[1] // 256, 1)  # every row is not needed for a centroid
    hu = vol.hu[:, ::step, :]
    _, ny, nx = hu.shape
    _, dy, dx = vol.spacing
    dy = dy * step
    mask = hu > BODY_THRESHOLD_HU
    xl, xr, has = _edges(mask, hu, nx)
    chord = np.where(has, xr - xl, 0.0)
    keep = has & (chord * dx <= max_width_mm) & (chord > 0)
    w = np.where(keep, chord, 0.0)
    area = w.sum(axis=1)
    rows = np.arange(ny, dtype=np.float64) * step
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (w * 0.5 * (xl + xr)).sum(axis=1) / area
        cy = (w * rows[None, :]).sum(axis=1) / area
    width = w.max(axis=1) * dx
    first = np.argmax(keep, axis=1)
    last = ny - 1 - np.argmax(keep[:, ::-1], axis=1)
    height = np.where(keep.any(axis=1), (last - first + 1) * dy, 0.0)
    present = (area > 0) & np.isfinite(cx) & np.isfinite(cy)
    return _Body(present, cx, cy, width.astype(np.float64), height.astype(np.float64))


def _body_matches(body: _Body, phantom: Phantom) -> npt.NDArray[np.bool_]:
    ax, ay = phantom.body.half_axes_mm
    tol = BODY_SIZE_TOLERANCE
    ok_w = np.abs(body.width_mm - 2 * ax) <= tol * 2 * ax
    ok_h = np.abs(body.height_mm - 2 * ay) <= tol * 2 * ay
    return body.present & ok_w & ok_h


# --------------------------------------------------------------------------
# sampling helpers
# --------------------------------------------------------------------------
def _bilinear(img3: F32, z: npt.NDArray[np.intp], y: F64, x: F64) -> F64:
    """Bilinear sample of ``img3[z]`` at (y, x); outside the image gives NaN."""
    _, ny, nx = img3.shape
    inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    xc = np.clip(x, 0, nx - 1.000001)
    yc = np.clip(y, 0, ny - 1.000001)
    x0 = np.floor(xc).astype(np.intp)
    y0 = np.floor(yc).astype(np.intp)
    fx = xc - x0
    fy = yc - y0
    v00 = img3[z, y0, x0]
    v01 = img3[z, y0, x0 + 1]
    v10 = img3[z, y0 + 1, x0]
    v11 = img3[z, y0 + 1, x0 + 1]
    out = (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy
    return np.where(inside, out, np.nan)


def _ring_inserts(module: Module) -> tuple[list[Roi], float]:
    """Inserts on the module's insert circle (not the centre one) and that circle's radius."""
    ring = [
        r
        for r in module.inserts
        if r.nominal_hu is not None and r.distance_mm is not None and r.distance_mm >= 10.0
    ]
    if len(ring) < 3:
        return [], 0.0
    radius = float(np.median([r.distance_mm for r in ring if r.distance_mm is not None]))
    ring = [r for r in ring if r.distance_mm is not None and abs(r.distance_mm - radius) < 2.0]
    return ring, radius


def _circle_profiles(
    vol: Volume, slices: npt.NDArray[np.intp], cx: F64, cy: F64, radius_mm: float, band_mm: float
) -> F64:
    """Mean HU on a band of radii around ``radius_mm``: shape (n_slices, n_angles)."""
    _, dy, dx = vol.spacing
    ang = np.deg2rad(np.arange(0.0, 360.0, ANGLE_STEP_DEG))
    radii = np.linspace(radius_mm - band_mm, radius_mm + band_mm, 5)
    ca, sa = np.cos(ang), np.sin(ang)
    xs = cx[:, None, None] + (radii[None, :, None] * ca[None, None, :]) / dx
    ys = cy[:, None, None] + (radii[None, :, None] * sa[None, None, :]) / dy
    zs = np.broadcast_to(slices[:, None, None], xs.shape)
    vals = _bilinear(vol.hu, zs.ravel(), ys.ravel(), xs.ravel()).reshape(xs.shape)
    return np.asarray(np.nanmean(vals, axis=1), dtype=np.float64)


def _smooth_circular(profile: F64, half_width_deg: float) -> F64:
    """Circular moving average along the last axis (box of +-half_width)."""
    k = max(round(half_width_deg / ANGLE_STEP_DEG), 0)
    if k == 0:
        return profile
    n = profile.shape[-1]
    ext = np.concatenate([profile[..., -k:], profile, profile[..., :k]], axis=-1)
    cs = np.cumsum(np.pad(ext, [(0, 0)] * (ext.ndim - 1) + [(1, 0)]), axis=-1)
    w = 2 * k + 1
    out = (cs[..., w:] - cs[..., :-w]) / w
    return np.asarray(out[..., :n], dtype=np.float64)


def _sample_angles(profile: F64, angles_deg: F64) -> F64:
    """Linear interpolation of a circular profile at the given angles (last axis)."""
    n = profile.shape[-1]
    pos = np.mod(angles_deg, 360.0) / ANGLE_STEP_DEG
    i0 = np.floor(pos).astype(np.intp) % n
    i1 = (i0 + 1) % n
    f = pos - np.floor(pos)
    return np.asarray(profile[..., i0] * (1 - f) + profile[..., i1] * f, dtype=np.float64)


@dataclass(frozen=True)
class _RollScan:
    rolls: F64
    corr: F64  # (n_slices, n_rolls)
    amp: F64  # (n_slices, n_rolls)


def _scan_rolls(smoothed: F64, ring: list[Roi], roll_centre: float, half_range: float) -> _RollScan:
    nominal = np.array([r.nominal_hu for r in ring], dtype=np.float64)
    base = np.array([r.angle_deg for r in ring], dtype=np.float64)
    rolls = np.arange(roll_centre - half_range, roll_centre + half_range + 1e-9, ANGLE_STEP_DEG)
    ang = base[None, :] + rolls[:, None]  # (n_rolls, n_ins)
    v = _sample_angles(smoothed, ang)  # (n_s, n_rolls, n_ins)
    nc = nominal - nominal.mean()
    vc = v - v.mean(axis=-1, keepdims=True)
    cov = (vc * nc).sum(axis=-1)
    var_n = float((nc * nc).sum())
    var_v = (vc * vc).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var_v > 0, cov / np.sqrt(var_v * var_n), 0.0)
    amp = cov / var_n
    corr = np.nan_to_num(corr, nan=0.0)
    amp = np.nan_to_num(amp, nan=0.0)
    return _RollScan(rolls, corr, amp)


def _refine_roll(
    profile: F64, ring: list[Roi], roll: float, background: float, radius: float
) -> float:
    """Contrast-weighted angular centroids of the inserts on a 1-D circle profile."""
    n = profile.shape[-1]
    angles = np.arange(n) * ANGLE_STEP_DEG
    shifts, weights = [], []
    for r in ring:
        assert r.angle_deg is not None and r.nominal_hu is not None
        reach = r.insert_radius_mm if r.insert_radius_mm is not None else r.radius_mm
        half = math.degrees(math.asin(min(reach / radius, 1.0))) + 2.0
        contrast = r.nominal_hu - background
        if abs(contrast) < 50:
            continue
        centre = r.angle_deg + roll
        d = (angles - centre + 180.0) % 360.0 - 180.0
        win = np.abs(d) <= half
        w = (profile[win] - background) * math.copysign(1.0, contrast)
        w = np.clip(w, 0.0, None)
        if w.sum() <= 0:
            continue
        shifts.append(float((w * d[win]).sum() / w.sum()))
        weights.append(float(w.sum()))
    if not weights:
        return roll
    return roll + float(np.average(shifts, weights=weights))


# --------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------
def _check_volume(vol: Volume) -> None:
    hu = vol.hu
    finite = np.isfinite(hu)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=(1, 2)))
        shown = ", ".join(str(int(i)) for i in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise DicomError(
            f"the volume has {int((~finite).sum())} non-finite HU values (NaN or infinity) "
            f"in slice(s) {shown}: check RescaleSlope/RescaleIntercept of those slices"
        )
    lo, hi = float(hu.min()), float(hu.max())
    if hi - lo < 1.0:
        raise PhantomNotFoundError(
            f"the series is blank: every voxel is {lo:.0f} HU, so there is no phantom to find"
        )


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Contiguous True runs as (start, stop) index pairs (stop exclusive)."""
    out: list[tuple[int, int]] = []
    start = None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(flags)))
    return out


def _usable(positions: F64, z_c: float, module: Module, thick: float) -> tuple[int, ...]:
    """Slices within the module, away from its edges by one slice thickness."""
    half = module.thickness_mm / 2.0 - thick
    idx = np.flatnonzero(np.abs(positions - z_c) <= half + 1e-6)
    if idx.size == 0:
        near = int(np.argmin(np.abs(positions - z_c)))
        if abs(positions[near] - z_c) <= module.thickness_mm / 2.0:
            return (near,)
        return ()
    return tuple(int(i) for i in idx)


def _centre_on(
    body: _Body, slices: Sequence[int], fallback: tuple[float, float]
) -> tuple[float, float]:
    s = np.asarray(slices, dtype=np.intp)
    ok = s[body.present[s]] if s.size else s
    if ok.size == 0:
        return fallback
    return float(np.median(body.cx[ok])), float(np.median(body.cy[ok]))


def _is_uniform(
    vol: Volume, slices: Sequence[int], centre: tuple[float, float], module: Module
) -> tuple[bool, str]:
    """Whether a uniformity module's content is there: ROI means near background."""
    _, dy, dx = vol.spacing
    idx = np.asarray(slices, dtype=np.intp)
    if idx.size > 6:  # a few slices tell whether a module is uniform
        idx = idx[np.linspace(0, idx.size - 1, 6).round().astype(np.intp)]
    img = vol.hu[idx]
    worst = 0.0
    for r in module.rois:
        x, y = r.position(0.0)
        ix = round(centre[0] + x / dx)
        iy = round(centre[1] + y / dy)
        ry = max(int(r.radius_mm / dy / 1.5), 1)
        rx = max(int(r.radius_mm / dx / 1.5), 1)
        patch = img[:, max(iy - ry, 0) : iy + ry + 1, max(ix - rx, 0) : ix + rx + 1]
        if patch.size == 0:
            return False, f"ROI {r.name} falls outside the image"
        worst = max(worst, abs(float(np.median(patch)) - module.background_hu))
    # high-contrast objects inside the module (inserts, bars) betray another module
    ny, nx = img.shape[1:]
    yy, xx = np.ogrid[:ny, :nx]
    ax, ay = 0.8 * np.array(module_body_half_axes(module, vol))
    inner = ((xx - centre[0]) * dx / ax) ** 2 + ((yy - centre[1]) * dy / ay) ** 2 <= 1.0
    inner[1::2, :] = False  # every other row is enough for a fraction
    vals = img[:, inner]
    med = float(np.median(vals))
    outliers = float(np.mean(np.abs(vals - med) > 300.0))
    ok = worst <= 40.0 and outliers < 0.005
    return ok, (
        f"largest ROI offset from background {worst:.0f} HU, "
        f"{100 * outliers:.2f}% of inner pixels beyond ±300 HU"
    )


def module_body_half_axes(module: Module, vol: Volume) -> tuple[float, float]:
    """Half-axes (mm) of the region a module's ROIs span, for the uniformity test."""
    reach = 20.0
    for r in module.rois:
        x, y = r.xy_mm
        reach = max(reach, math.hypot(x, y) + r.radius_mm)
    return reach, reach


def locate(
    vol: Volume,
    phantom: Phantom,
    *,
    slice: int | None = None,
    centre: tuple[float, float] | None = None,
    roll: float | None = None,
    module_slices: Mapping[str, Sequence[int]] | None = None,
) -> Placement:
    """Locate ``phantom`` in ``vol``.

    Parameters
    ----------
    vol : Volume
    phantom : Phantom
    slice : int, optional
        Index of the central slice of the reference module (skips the z search).
    centre : (float, float), optional
        Phantom centre ``(x, y)`` in pixels (column, row), used on every slice.
    roll : float, optional
        Phantom roll in degrees (skips the roll search).
    module_slices : mapping, optional
        Module name -> slice indices to measure (skips that module's z placement).

    Raises
    ------
    PhantomNotFoundError
        No phantom body, the reference module's content not found, or a manual
        override outside the volume; the message says what was looked for.
    DicomError
        The volume holds NaN or infinite values.
    """
    _check_volume(vol)
    nz = vol.shape[0]
    positions = np.asarray(vol.slice_positions, dtype=np.float64)
    thick = vol.scanner.slice_thickness_mm
    if thick is None or not thick > 0:
        thick = abs(vol.spacing[0])
    notes: list[str] = []
    manual: list[str] = []
    overrides = dict(module_slices or {})
    for name, idx in overrides.items():
        phantom.module(name)  # raises PhantomDefinitionError naming the modules
        bad = [i for i in idx if not 0 <= int(i) < nz]
        if bad or not idx:
            raise PhantomNotFoundError(
                f"module_slices[{name!r}] = {list(idx)} is not a non-empty list of slice "
                f"indices in 0..{nz - 1}"
            )
    if slice is not None and not 0 <= slice < nz:
        raise PhantomNotFoundError(f"slice={slice} is outside the series (0..{nz - 1})")

    ax_b = phantom.body.half_axes_mm[0]
    body = _body(vol, 2 * ax_b * (1 + BODY_SIZE_TOLERANCE))
    matches = _body_matches(body, phantom)
    if centre is not None:
        manual.append("centre")
        cx_all = np.full(nz, float(centre[0]))
        cy_all = np.full(nz, float(centre[1]))
        matches = np.ones(nz, dtype=bool) if not matches.any() else matches | body.present
    else:
        if not body.present.any():
            raise PhantomNotFoundError(
                f"no phantom body in any of the {nz} slices: no voxel above "
                f"{BODY_THRESHOLD_HU:.0f} HU forms an object (is this an air scan?)"
            )
        if not matches.any():
            ax, ay = phantom.body.half_axes_mm
            i = int(np.flatnonzero(body.present)[np.argmax(body.width_mm[body.present])])
            raise PhantomNotFoundError(
                f"no slice shows a body the size of {phantom.title} ({2 * ax:.0f} x {2 * ay:.0f} "
                f"mm within {100 * BODY_SIZE_TOLERANCE:.0f}%): the largest object found is "
                f"{body.width_mm[i]:.0f} x {body.height_mm[i]:.0f} mm (slice {i})"
            )
        med_cx = float(np.median(body.cx[matches]))
        med_cy = float(np.median(body.cy[matches]))
        # robust per-slice centres: a slice far from the median takes the median
        cx_all = np.where(matches, body.cx, med_cx)
        cy_all = np.where(matches, body.cy, med_cy)
        far = np.hypot(cx_all - med_cx, cy_all - med_cy) * vol.spacing[2] > 5.0
        if far.any():
            notes.append(
                f"{int(far.sum())} slice(s) had a body centre more than 5 mm from the median; "
                "the median was used there"
            )
        cx_all = np.where(far, med_cx, cx_all)
        cy_all = np.where(far, med_cy, cy_all)

    ref = phantom.module()
    ring, ring_r = _ring_inserts(ref)
    score = math.nan
    roll_deg = 0.0 if roll is None else float(roll)
    if roll is not None:
        manual.append("roll")

    if ring:
        cand = np.flatnonzero(matches) if slice is None else np.array([slice], dtype=np.intp)
        if slice is not None:
            manual.append("slice")
        max_reach = max(
            (r.insert_radius_mm if r.insert_radius_mm is not None else r.radius_mm) for r in ring
        )
        band = min(0.5 * max_reach, 2.0)
        prof = _circle_profiles(vol, cand, cx_all[cand], cy_all[cand], ring_r, band)
        prof = np.nan_to_num(prof, nan=float(ref.background_hu))
        # smoothing over about the insert's angular width turns each insert into a
        # peak at its centre, so the roll scan has a sharp maximum, not a plateau
        min_reach = min(
            (r.insert_radius_mm if r.insert_radius_mm is not None else r.radius_mm) for r in ring
        )
        ins_half = math.degrees(math.asin(min(min_reach / ring_r, 1.0)))
        smoothed = _smooth_circular(prof, 0.8 * ins_half)
        half_range = 0.0 if roll is not None else ROLL_SEARCH_DEG
        scan = _scan_rolls(smoothed, ring, roll_deg, half_range)
        best = np.argmax(scan.corr * np.clip(scan.amp, 0.0, None), axis=1)
        corr_s = scan.corr[np.arange(cand.size), best]
        amp_s = scan.amp[np.arange(cand.size), best]
        good = (corr_s >= MIN_CORRELATION) & (amp_s >= 0.3)
        materials = ", ".join(sorted({r.material for r in ring}))
        if not good.any():
            k = int(np.argmax(corr_s))
            hint = ""
            if slice is None:
                lo, hi = positions.min(), positions.max()
                hint = (
                    f" The series covers z {lo:.1f}..{hi:.1f} mm ({nz} slices); it may miss "
                    f"the {ref.name} module, or this is not a {phantom.title}."
                )
            where = (
                f"slice {slice}"
                if slice is not None
                else f"any of the {cand.size} slices showing the phantom body"
            )
            raise PhantomNotFoundError(
                f"{phantom.title}: the {ref.name} module (inserts {materials} on a "
                f"{ring_r:.1f} mm circle) was not found in {where}: the best slice "
                f"({int(cand[k])}) correlates {corr_s[k]:.2f} with the "
                f"expected insert pattern at amplitude {amp_s[k]:.2f} (need correlation "
                f">= {MIN_CORRELATION} and amplitude >= 0.3).{hint}"
            )
        if slice is None:
            peak = int(np.argmax(np.where(good, amp_s, -np.inf)))
            amp_max = amp_s[peak]
            half = good & (amp_s >= 0.5 * amp_max)
            runs = [(a, b) for a, b in _runs(half) if a <= peak < b]
            a, b = runs[0]
            z = positions[cand]

            def crossing(i_in: int, i_out: int) -> float:
                """Half-maximum crossing between a run end and its outer neighbour."""
                if not 0 <= i_out < cand.size or cand[i_out] != cand[i_in] + (i_out - i_in):
                    return float(z[i_in])
                ai, ao = amp_s[i_in], amp_s[i_out]
                f = (ai - 0.5 * amp_max) / (ai - ao) if ai != ao else 0.5
                return float(z[i_in] + np.clip(f, 0, 1) * (z[i_out] - z[i_in]))

            z_lo = crossing(a, a - 1)
            z_hi = crossing(b - 1, b)
            width = abs(z_hi - z_lo)
            touches_lo = cand[a] == 0
            touches_hi = cand[b - 1] == nz - 1
            direction = 1.0 if positions[-1] >= positions[0] else -1.0
            if touches_lo != touches_hi and width < 0.9 * ref.thickness_mm:
                # truncated by the end of the series: place the module from its far edge
                if width < 0.4 * ref.thickness_mm:
                    raise PhantomNotFoundError(
                        f"{phantom.title}: only {width:.1f} mm of the {ref.thickness_mm:.0f} mm "
                        f"{ref.name} module is inside the series (it is cut off at the "
                        f"{'start' if touches_lo else 'end'}); rescan including the whole module"
                    )
                z_ref = (
                    z_hi - direction * ref.thickness_mm / 2
                    if touches_lo
                    else z_lo + direction * ref.thickness_mm / 2
                )
                notes.append(
                    f"{ref.name} is cut off by the {'start' if touches_lo else 'end'} of the "
                    f"series: {width:.1f} mm of {ref.thickness_mm:.0f} mm visible; its centre "
                    "was placed from the far edge"
                )
            else:
                z_ref = 0.5 * (z_lo + z_hi)
                if not 0.6 * ref.thickness_mm <= width <= 1.6 * ref.thickness_mm + thick:
                    notes.append(
                        f"doubt: the {ref.name} insert pattern spans {width:.1f} mm along z, "
                        f"expected about {ref.thickness_mm:.0f} mm"
                    )
            ref_slice = int(np.argmin(np.abs(positions - z_ref)))
        else:
            ref_slice = int(slice)
            z_ref = float(positions[ref_slice])

        ref_slices = overrides.get(ref.name)
        if ref_slices is None:
            ref_idx = _usable(positions, z_ref, ref, thick)
        else:
            ref_idx = tuple(int(i) for i in ref_slices)
            manual.append(f"{ref.name} slices")
        if not ref_idx:
            ref_idx = (ref_slice,)
        # roll: coarse by summed correlation over the module's slices, then centroids
        sel = np.asarray(ref_idx, dtype=np.intp)
        prof_m = _circle_profiles(vol, sel, cx_all[sel], cy_all[sel], ring_r, band)
        prof_m = np.nan_to_num(prof_m, nan=float(ref.background_hu))
        mean_prof = prof_m.mean(axis=0)
        sm = _smooth_circular(mean_prof[None, :], 0.8 * ins_half)
        scan_m = _scan_rolls(sm, ring, roll_deg, half_range)
        k = int(np.argmax(scan_m.corr[0] * np.clip(scan_m.amp[0], 0.0, None)))
        coarse = float(scan_m.rolls[k])
        score = float(scan_m.corr[0, k])
        if roll is None:
            bg = float(np.median(mean_prof))
            r2 = coarse
            for _ in range(5):
                r_new = _refine_roll(mean_prof, ring, r2, bg, ring_r)
                done = abs(r_new - r2) < 0.01
                r2 = r_new
                if done:
                    break
            if abs(r2 - coarse) <= 0.5 * ins_half:
                roll_deg = r2
            else:
                roll_deg = coarse
                notes.append(
                    f"doubt: the insert centroids put the roll at {r2:+.2f} deg, "
                    f"{abs(r2 - coarse):.1f} deg from the pattern match ({coarse:+.1f} deg, "
                    f"{ANGLE_STEP_DEG} deg steps), which was used"
                )
            if abs(roll_deg) >= ROLL_SEARCH_DEG - 1.0:
                notes.append(
                    f"doubt: the roll found ({roll_deg:.1f} deg) is at the edge of the search "
                    f"range ±{ROLL_SEARCH_DEG:.0f} deg"
                )
        if score < MIN_LOCALISATION_SCORE:
            notes.append(
                f"doubt: the {ref.name} insert pattern correlates only {score:.3f} with the "
                "nominal values"
            )
        notes.append(
            f"{ref.name} found at z = {z_ref:.1f} mm (slice {ref_slice}), "
            f"roll {roll_deg:+.2f} deg, pattern correlation {score:.3f}"
        )
    else:
        # a uniform reference module (water phantom): the body's z-extent
        if slice is not None:
            manual.append("slice")
            ref_slice = int(slice)
            z_ref = float(positions[ref_slice])
        else:
            runs = _runs(matches)
            a, b = max(runs, key=lambda ab: ab[1] - ab[0])
            z_ref = float(0.5 * (positions[a] + positions[b - 1]))
            ref_slice = int(np.argmin(np.abs(positions - z_ref)))
        ref_slices = overrides.get(ref.name)
        if ref_slices is not None:
            ref_idx = tuple(int(i) for i in ref_slices)
            manual.append(f"{ref.name} slices")
        else:
            cover = positions[matches] if matches.any() else positions
            lo_z, hi_z = float(cover.min()), float(cover.max())
            half = ref.thickness_mm / 2.0 - thick
            keep = (
                matches
                & (np.abs(positions - z_ref) <= half)
                & (positions >= lo_z + thick)
                & (positions <= hi_z - thick)
            )
            ref_idx = tuple(int(i) for i in np.flatnonzero(keep)) or (ref_slice,)
        if roll is None:
            notes.append(f"roll not determined ({ref.name} is uniform); 0 deg assumed")
        ok, why = _is_uniform(
            vol,
            ref_idx,
            _centre_on(body, ref_idx, (cx_all[ref_slice], cy_all[ref_slice]))
            if centre is None
            else (float(centre[0]), float(centre[1])),
            ref,
        )
        if not ok:
            raise PhantomNotFoundError(
                f"{phantom.title}: the {ref.name} module should be uniform but is not ({why}); "
                "is this the right phantom?"
            )
        notes.append(f"{ref.name} found at z = {z_ref:.1f} mm (slice {ref_slice}); {why}")

    def centre_for(idx: Sequence[int]) -> tuple[float, float]:
        if centre is not None:
            return float(centre[0]), float(centre[1])
        s = np.asarray(idx, dtype=np.intp)
        return float(np.median(cx_all[s])), float(np.median(cy_all[s]))

    placements: dict[str, ModulePlacement] = {
        ref.name: ModulePlacement(ref.name, z_ref, ref_idx, centre_for(ref_idx), True)
    }
    direction = 1.0
    for m in phantom.modules:
        if m.name == ref.name or not m.rois:
            continue
        if m.name in overrides:
            idx = tuple(int(i) for i in overrides[m.name])
            placements[m.name] = ModulePlacement(
                m.name,
                float(np.mean(positions[list(idx)])),
                idx,
                centre_for(idx),
                True,
                "slices given by the caller",
            )
            manual.append(f"{m.name} slices")
            continue
        chosen: ModulePlacement | None = None
        tried: list[str] = []
        for sign in (direction, -direction):
            z_c = z_ref + sign * m.z_offset_mm
            idx = _usable(positions, z_c, m, thick)
            if not idx:
                tried.append(f"z = {z_c:.1f} mm is outside the series")
                continue
            c = centre_for(idx)
            if m.kind == "uniformity":
                ok, why = _is_uniform(vol, idx, c, m)
            else:
                ok, why = True, "content not verified for this module kind"
            if ok:
                note = why
                if sign != 1.0:
                    note = (
                        f"found at the opposite z direction to the phantom file's offsets "
                        f"(phantom set up reversed); {why}"
                    )
                chosen = ModulePlacement(m.name, z_c, idx, c, True, note)
                direction = sign
                break
            tried.append(f"z = {z_c:.1f} mm is not uniform ({why})")
        if chosen is None:
            notes.append(f"module {m.name} not measured: {'; '.join(tried)}")
        else:
            placements[m.name] = chosen
            notes.append(
                f"{m.name} at z = {chosen.z_mm:.1f} mm, {len(chosen.slices)} slice(s): "
                f"{chosen.note}"
            )

    spread = 0.0
    if centre is None:
        s = np.asarray(ref_idx, dtype=np.intp)
        c0 = placements[ref.name].centre_px
        spread = float(np.median(np.hypot(cx_all[s] - c0[0], cy_all[s] - c0[1])))
    method = (
        "auto"
        if not manual
        else ("manual" if {"centre", "roll", "slice"} <= set(manual) else "mixed")
    )
    if manual:
        notes.append(f"given by the caller: {', '.join(manual)}")
    loc = Localisation(
        method=method,
        reference_slice=int(ref_slice),
        reference_z_mm=float(z_ref),
        centre_px=placements[ref.name].centre_px,
        centre_spread_px=spread,
        roll_deg=float(roll_deg),
        module_slices={k: v.slices for k, v in placements.items()},
        score=score,
        notes=tuple(notes),
    )
    return Placement(placements, float(roll_deg), loc)
