"""ROI statistics, noise correlation, uniformity, linearity, electron density, CNR.

Each ROI is the set of pixels whose centres lie within ``radius_mm`` of the ROI
centre, on every usable slice of its module (see :mod:`noctis_lab.hu._locate`).

Standard error of the mean
--------------------------
CT noise is correlated between neighbouring pixels (reconstruction kernel) and,
with overlapping slices, between slices, so ``SD / sqrt(n_pixels)`` understates
the uncertainty of a ROI mean. For a ROI much larger than the correlation
length, ``Var(mean) = SD^2 / n * sum(rho)`` where ``rho`` is the noise
autocorrelation; so ``n_independent = n / sum(rho)``.

``sum(rho)`` is estimated per series: the in-plane 2-D autocorrelation (by FFT)
of the differences of neighbouring slices in a central square of each measured
module (the differences cancel the structure, which does not change along z
within a module), pooled over the modules and summed over lags up to
``MAX_LAG_PX``; per module it is multiplied by the along-z factor
``1 + 2 * sum_k rho_z(k)`` measured in the module's uniform (background or
uniformity-centre) ROI. It is floored at 1 (the white-noise value), which keeps
the estimate conservative for sharp kernels whose autocorrelation has negative
lobes. With three or more slices the spread of the per-slice means gives a
second, model-free estimate ``SD(slice means) / sqrt(n_slices)``; the SEM
reported is the larger of the two.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from noctis_lab.dicom._volume import Volume
from noctis_lab.hu._locate import Placement
from noctis_lab.hu._phantoms import Module, Phantom, Roi
from noctis_lab.hu._result import EdPoint, Linearity, RoiMeasurement, Uniformity

__all__ = [
    "Measurements",
    "derive",
    "fit_linearity",
    "inplane_factor",
    "measure",
    "merge",
    "roi_pixels",
    "z_factor",
]

MAX_LAG_PX = 8
#: At most this many slice differences per module enter the noise autocorrelation.
MAX_DIFFS = 8
#: Half-side cap (pixels) of the square used for the noise autocorrelation.
MAX_HALF_PX = 64

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Measurements:
    """All numbers measured on one series (before any judgement).

    ``rois``, ``slice_sd`` and ``correlation_factors`` are measured on the pixels;
    everything else (CNR of the inserts, linearity, uniformity, noise, electron
    density) is derived from them by :func:`derive`.

    Attributes
    ----------
    slice_sd : mapping
        ``(module, name)`` -> the ROI's mean per-slice pixel SD (the noise figure: not
        inflated by slice-to-slice shifts of the mean).
    correlation_factors : dict
        Module -> noise ``sum(rho)`` used for the SEM of its ROIs.
    """

    rois: tuple[RoiMeasurement, ...]
    linearity: Linearity | None
    uniformity: Uniformity | None
    noise_hu: float | None
    noise_roi: str | None
    electron_density: tuple[EdPoint, ...] | None
    correlation_factors: dict[str, float]
    slice_sd: Mapping[tuple[str, str], float] = dataclasses.field(default_factory=dict)


def roi_offsets(
    radius_px_x: float, radius_px_y: float, fx: float, fy: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Integer pixel offsets (dy, dx) whose centres lie in the ellipse around (fx, fy).

    ``fx``, ``fy`` are the fractional parts of the ROI centre in pixels.
    """
    ry = math.ceil(radius_px_y) + 1
    rx = math.ceil(radius_px_x) + 1
    dy, dx = np.mgrid[-ry : ry + 1, -rx : rx + 1]
    inside = ((dx - fx) / radius_px_x) ** 2 + ((dy - fy) / radius_px_y) ** 2 <= 1.0
    return dy[inside].astype(np.intp), dx[inside].astype(np.intp)


def roi_pixels(
    vol: Volume, slices: tuple[int, ...], centre_px: tuple[float, float], roi: Roi, roll: float
) -> tuple[npt.NDArray[np.float32], float, float]:
    """Values ``(n_slices, n_pixels)`` of a ROI, and its centre ``(x_px, y_px)``."""
    _, dy, dx = vol.spacing
    x_mm, y_mm = roi.position(roll)
    x = centre_px[0] + x_mm / dx
    y = centre_px[1] + y_mm / dy
    ix, iy = math.floor(x), math.floor(y)
    oy, ox = roi_offsets(roi.radius_mm / dx, roi.radius_mm / dy, x - ix, y - iy)
    rows = iy + oy
    cols = ix + ox
    _, ny, nx = vol.shape
    ok = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    rows, cols = rows[ok], cols[ok]
    s = np.asarray(slices, dtype=np.intp)
    vals = vol.hu[s[:, None], rows[None, :], cols[None, :]]
    return vals, x, y


def _acf_sums(stack: npt.NDArray[np.float32], lag: int) -> tuple[F64, F64, int] | None:
    """Summed autocovariance and pair counts over lags ``|dy|, |dx| <= lag``.

    Differences of neighbouring slices cancel the (z-invariant) structure and keep
    the in-plane shape of the noise autocorrelation; a single slice is used as it is.
    Returns ``(sums, counts, pixels_per_image)`` or None when the stack is too small.
    """
    p = np.asarray(stack, dtype=np.float32)
    if p.ndim != 3 or p.shape[1] < 4 * lag or p.shape[2] < 4 * lag:
        return None
    if p.shape[0] > MAX_DIFFS + 1:  # evenly spread pairs of neighbours are plenty
        pick = np.linspace(0, p.shape[0] - 2, MAX_DIFFS).round().astype(np.intp)
        d = (p[pick + 1] - p[pick]).astype(np.float64)
    elif p.shape[0] >= 2:
        d = (p[1:] - p[:-1]).astype(np.float64)
    else:
        d = p.astype(np.float64)
    n_s, h, w = d.shape
    r = d - d.mean(axis=(1, 2), keepdims=True)
    # zero-padding by the largest lag keeps the circular correlation exact up to it
    fh, fw = h + lag, w + lag
    big = np.fft.rfft2(r, s=(fh, fw))
    ac = np.fft.irfft2((big * np.conj(big)).real.sum(axis=0), s=(fh, fw))
    lags = np.r_[0 : lag + 1, -lag:0]
    counts = (h - np.abs(lags))[:, None] * (w - np.abs(lags))[None, :] * float(n_s)
    return ac[np.ix_(lags % fh, lags % fw)], counts, h * w


def inplane_factor(stacks: list[npt.NDArray[np.float32]], lag: int = MAX_LAG_PX) -> float:
    """In-plane ``sum(rho)`` of the noise, pooled over stacks ``(n_slices, h, w)``.

    The autocorrelation (by FFT) is summed over lags ``|dy|, |dx| <= lag`` and
    corrected for the bias of removing each image's mean (every ``rho`` drops by
    about ``sum(rho) / (h * w)``); floored at 1 (white noise).
    """
    tot_s: F64 | None = None
    tot_c: F64 | None = None
    npix = []
    for st in stacks:
        got = _acf_sums(st, lag)
        if got is None:
            continue
        sums, counts, n = got
        tot_s = sums if tot_s is None else tot_s + sums
        tot_c = counts if tot_c is None else tot_c + counts
        npix.append(n)
    if tot_s is None or tot_c is None or not tot_s[0, 0] > 0:
        return 1.0
    acs = tot_s / tot_c
    summed = float(acs.sum() / acs[0, 0])
    corrected = summed / max(1.0 - (2 * lag + 1) ** 2 / min(npix), 0.5)
    return max(corrected, 1.0)


def z_factor(patch: npt.NDArray[np.float32]) -> float:
    """Along-z factor ``1 + 2 * sum_k (1 - k/n) rho_z(k)`` from a uniform patch stack."""
    p = np.asarray(patch, dtype=np.float64)
    n_s = p.shape[0]
    if n_s < 3:
        return 1.0
    r = (p - p.mean(axis=(1, 2), keepdims=True)).reshape(n_s, -1)
    var = float((r * r).mean())
    if not var > 0:
        return 1.0
    out = 1.0
    for k in (1, 2, 3):
        if n_s - k < 2:
            break
        c = float((r[:-k] * r[k:]).mean() / var)
        if c < 0.05:
            break
        out += 2.0 * c * (1 - k / n_s)
    return out


def _central_square(
    vol: Volume, slices: tuple[int, ...], centre_px: tuple[float, float], half_mm: float
) -> npt.NDArray[np.float32]:
    _, dy, dx = vol.spacing
    _, ny, nx = vol.shape
    hx, hy = min(int(half_mm / dx), MAX_HALF_PX), min(int(half_mm / dy), MAX_HALF_PX)
    ix, iy = round(centre_px[0]), round(centre_px[1])
    y0, y1 = max(iy - hy, 0), min(iy + hy + 1, ny)
    x0, x1 = max(ix - hx, 0), min(ix + hx + 1, nx)
    return vol.hu[np.asarray(slices, dtype=np.intp), y0:y1, x0:x1]


def _uniform_patch(
    vol: Volume,
    slices: tuple[int, ...],
    centre_px: tuple[float, float],
    module: Module,
    roll: float,
) -> npt.NDArray[np.float32] | None:
    """A square patch inscribed in the module's background / uniformity-centre ROI."""
    pick = [r for r in module.rois if r.role in ("uniformity_centre", "background")]
    if not pick:
        pick = [r for r in module.rois if r.nominal_hu == module.background_hu]
    if not pick:
        return None
    roi = max(pick, key=lambda r: r.radius_mm)
    _, dy, dx = vol.spacing
    x_mm, y_mm = roi.position(roll)
    x = centre_px[0] + x_mm / dx
    y = centre_px[1] + y_mm / dy
    half = roi.radius_mm / math.sqrt(2.0)
    hx, hy = int(half / dx), int(half / dy)
    ix, iy = round(x), round(y)
    _, ny, nx = vol.shape
    if iy - hy < 0 or ix - hx < 0 or iy + hy + 1 > ny or ix + hx + 1 > nx:
        return None
    s = np.asarray(slices, dtype=np.intp)
    return vol.hu[s, iy - hy : iy + hy + 1, ix - hx : ix + hx + 1]


def fit_linearity(
    materials: list[str], nominal: list[float], measured: list[float], sem: list[float]
) -> Linearity | None:
    """Least-squares line of measured vs nominal HU, with R² and the worst deviation."""
    if len(nominal) < 3:
        return None
    x = np.asarray(nominal, dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    if float(np.ptp(x)) <= 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    fit = slope * x + intercept
    ss_res = float(((y - fit) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    dev = y - fit
    k = int(np.argmax(np.abs(dev)))
    span = float(np.ptp(x))
    return Linearity(
        slope=float(slope),
        intercept=float(intercept),
        r_squared=float(r2),
        max_deviation_hu=float(abs(dev[k])),
        max_deviation_pct=float(100.0 * abs(dev[k]) / span),
        max_deviation_material=materials[k],
        nominal_span_hu=span,
        materials=tuple(materials),
        nominal_hu=tuple(float(v) for v in x),
        measured_hu=tuple(float(v) for v in y),
        sem_hu=tuple(float(v) for v in sem),
    )


def measure(vol: Volume, phantom: Phantom, placement: Placement) -> Measurements:
    """Measure every ROI of every located module, then derive the rest (:func:`derive`)."""
    roll = placement.roll_deg
    out: list[RoiMeasurement] = []
    factors: dict[str, float] = {}
    slice_sd: dict[tuple[str, str], float] = {}
    # the noise texture is the reconstruction's, the same in every module: pool the
    # in-plane autocorrelation over the measured modules (a large square in uniform
    # modules, a smaller one clear of inserts and wires elsewhere)
    squares = []
    r_body = min(phantom.body.half_axes_mm)
    for module in phantom.modules:
        mp = placement.modules.get(module.name)
        if mp is None or not module.rois:
            continue
        half = (0.45 if module.kind == "uniformity" else 0.24) * r_body
        squares.append(_central_square(vol, mp.slices, mp.centre_px, half))
    plane = inplane_factor(squares)
    _, dy, dx = vol.spacing
    for module in phantom.modules:
        mp = placement.modules.get(module.name)
        if mp is None or not module.rois:
            continue
        patch = _uniform_patch(vol, mp.slices, mp.centre_px, module, roll)
        factor = plane * (z_factor(patch) if patch is not None else 1.0)
        factors[module.name] = factor
        for roi in module.rois:
            vals, x_px, y_px = roi_pixels(vol, mp.slices, mp.centre_px, roi, roll)
            n_s, n_p = vals.shape
            if n_p == 0:
                continue
            v64 = vals.astype(np.float64)
            flat = v64.ravel()
            mean = float(flat.mean())
            sd = float(flat.std(ddof=1)) if flat.size > 1 else 0.0
            sem = sd * math.sqrt(factor / flat.size)
            if n_s >= 3:
                per_slice = v64.mean(axis=1)
                sem = max(sem, float(per_slice.std(ddof=1)) / math.sqrt(n_s))
            if n_p > 1:
                slice_sd[(module.name, roi.name)] = float(np.sqrt(v64.var(axis=1, ddof=1).mean()))
            out.append(
                RoiMeasurement(
                    module=module.name,
                    name=roi.name,
                    material=roi.material,
                    role=roi.role,
                    nominal_hu=roi.nominal_hu,
                    mean=mean,
                    median=float(np.median(flat)),
                    sd=sd,
                    sem=sem,
                    n_pixels=int(flat.size),
                    n_slices=int(n_s),
                    x_mm=float(x_px * dx),
                    y_mm=float(y_px * dy),
                    radius_mm=roi.radius_mm,
                    deviation=None if roi.nominal_hu is None else mean - roi.nominal_hu,
                    range_hu=roi.range_hu,
                    relative_electron_density=roi.relative_electron_density,
                )
            )
    return derive(out, phantom, factors, slice_sd)


def derive(
    rois: Sequence[RoiMeasurement],
    phantom: Phantom,
    correlation_factors: Mapping[str, float],
    slice_sd: Mapping[tuple[str, str], float],
) -> Measurements:
    """The quantities that follow from the ROI statistics alone.

    CNR of each insert against its module's background ROI, the linearity fit of
    the reference module's inserts, the uniformity of the first module with centre
    and edge ROIs, the noise (mean per-slice SD of the uniformity centre, else of a
    water insert, else of the background ROI) and the HU-to-electron-density
    points. Idempotent: deriving again from the same ROIs gives the same numbers,
    so a caller that replaced some ROIs (the ROI editor) derives afresh with this.

    Parameters
    ----------
    rois : sequence of RoiMeasurement
        Every measured ROI (their ``cnr`` is recomputed).
    phantom : Phantom
        Gives the reference module and the module order.
    correlation_factors : mapping
        Module -> noise correlation factor (kept as given).
    slice_sd : mapping
        ``(module, name)`` -> mean per-slice SD of that ROI (see :class:`Measurements`).

    Returns
    -------
    Measurements
    """
    # CNR: |mean - background mean| / background SD, within each module
    bg: dict[str, RoiMeasurement] = {}
    for r in rois:
        if r.role == "background":
            bg.setdefault(r.module, r)
    out: list[RoiMeasurement] = []
    for r in rois:
        b = bg.get(r.module)
        cnr = None
        if b is not None and r.role == "insert" and b.sd > 0:
            cnr = abs(r.mean - b.mean) / b.sd
        out.append(r if r.cnr == cnr else dataclasses.replace(r, cnr=cnr))

    # linearity: the inserts of the reference module
    ref = phantom.module()
    lin_rois = [
        r for r in out if r.module == ref.name and r.role == "insert" and r.nominal_hu is not None
    ]
    linearity = fit_linearity(
        [r.material for r in lin_rois],
        [float(r.nominal_hu) for r in lin_rois if r.nominal_hu is not None],
        [r.mean for r in lin_rois],
        [r.sem for r in lin_rois],
    )

    # uniformity
    uniformity = None
    for module in phantom.modules:
        centre = [r for r in out if r.module == module.name and r.role == "uniformity_centre"]
        edges = [r for r in out if r.module == module.name and r.role == "uniformity_edge"]
        if centre and edges:
            c = centre[0].mean
            diffs = {e.name: e.mean - c for e in edges}
            worst = max(diffs, key=lambda k: abs(diffs[k]))
            means = [c] + [e.mean for e in edges]
            hi, lo = max(means), min(means)
            uniformity = Uniformity(
                module=module.name,
                centre_hu=c,
                edges_hu={e.name: e.mean for e in edges},
                max_difference_hu=diffs[worst],
                max_difference_roi=worst,
                integral_uniformity_pct=100.0 * (hi - lo) / (hi + lo + 2000.0),
            )
            break

    # noise: uniformity centre, else a water insert, else the background ROI
    noise_roi = None
    noise = None
    noise_sources: tuple[Callable[[RoiMeasurement], bool], ...] = (
        lambda r: r.role == "uniformity_centre",
        lambda r: r.role == "insert" and r.material.casefold() in ("water", "water-equivalent"),
        lambda r: r.role == "background",
    )
    for pred in noise_sources:
        hits = [r for r in out if pred(r) and (r.module, r.name) in slice_sd]
        if hits:
            pick = hits[0]
            noise = float(slice_sd[(pick.module, pick.name)])
            noise_roi = f"{pick.module}/{pick.name}"
            break

    ed_rois = [r for r in out if r.relative_electron_density is not None and r.role == "insert"]
    electron_density = None
    if len(ed_rois) >= 2:
        electron_density = tuple(
            sorted(
                (
                    EdPoint(r.material, float(r.relative_electron_density or 0.0), r.mean, r.sem)
                    for r in ed_rois
                ),
                key=lambda p: p.relative_electron_density,
            )
        )
    return Measurements(
        rois=tuple(out),
        linearity=linearity,
        uniformity=uniformity,
        noise_hu=noise,
        noise_roi=noise_roi,
        electron_density=electron_density,
        correlation_factors=dict(correlation_factors),
        slice_sd=dict(slice_sd),
    )


def merge(old: Measurements, new: Measurements, phantom: Phantom) -> Measurements:
    """``old`` with the ROIs that ``new`` measured again swapped in, derived afresh.

    ROIs keep the order of ``old``; a ROI only in ``new`` is appended. The noise
    figures and correlation factors of the re-measured ROIs and modules come from
    ``new`` too.
    """
    fresh = {(r.module, r.name): r for r in new.rois}
    rois = [fresh.pop((r.module, r.name), r) for r in old.rois]
    rois.extend(fresh.values())
    return derive(
        rois,
        phantom,
        {**old.correlation_factors, **new.correlation_factors},
        {**old.slice_sd, **new.slice_sd},
    )
