"""Image primitives for finding a phantom: coarse grid, body, insert ring, roll, uniformity.

Every primitive works from what any CT or CBCT scan of a phantom shows, with no
constant taken from one scanner:

- **Coarse grid.** The search runs on block means of about 2 mm pixels; the final
  centre and roll are refined on the full-resolution image.
- **Body.** Material is what lies above -500 HU, midway between air (-1000) and
  water (0): an offset of ±100 HU or a scale error of ±40 % leaves air below and
  water above it. The *body level* of a slice is the median of its material pixels,
  so contrast is measured against the slice's own background (CBCT shading and HU
  offsets cancel).
- **Insert ring.** The inserts of a sensitometry module sit on one circle. The
  absolute contrast of the material (capped, so air and Teflon do not drown the
  rest) is correlated with an annulus of that radius (an FFT convolution): the
  peak is the ring's centre whatever the roll, the couch, the field of view (the
  ring fits in a field much smaller than the phantom) or the slice's HU offset.
- **Roll.** The circle profile at the ring's radius is correlated with the
  module's nominal pattern at every roll from 0 to 360 degrees at once (circular
  cross-correlation by FFT). Pearson correlation ignores offsets and scale (CBCT
  HU scales); the regression *amplitude* (1 for the full nominal contrast) tells a
  module from a slice half in it.
- **Insert fit.** The centre and roll are refined by a rigid fit of the nominal
  insert positions to the contrast-weighted centroids of the inserts measured on
  the full-resolution image; inserts that do not fit (missing, swapped, filled
  with the background material) are left out and reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from noctis_lab.dicom._volume import Volume
from noctis_lab.hu._phantoms import Module, Roi

__all__ = [
    "ANGLE_STEP_DEG",
    "BODY_HU",
    "Coarse",
    "InsertFit",
    "RingScan",
    "bilinear",
    "body_circle",
    "body_level",
    "circle_profile",
    "circle_profiles",
    "coarse_grid",
    "fit_inserts",
    "ring_inserts",
    "sample_slices",
    "scan_ring",
    "uniform_content",
]

#: Material threshold: midway between air (-1000 HU) and water (0 HU).
BODY_HU = -500.0
#: Contrast above this many HU counts as this many in the ring search.
CONTRAST_CAP_HU = 400.0
#: Pixel size of the coarse search grid, mm.
COARSE_MM = 2.0
ANGLE_STEP_DEG = 0.5
N_ANGLES = round(360.0 / ANGLE_STEP_DEG)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Coarse:
    """Block means of a volume on a grid of about :data:`COARSE_MM` pixels.

    Attributes
    ----------
    hu : ndarray
        ``(nz, ny, nx)`` block means.
    factor : int
        Full-resolution pixels per coarse pixel along each axis.
    dy, dx : float
        Coarse pixel size, mm.
    level : ndarray
        Body level per slice: median HU of the material pixels (NaN without any).
    material : ndarray
        Fraction of each slice's pixels that are material.
    """

    hu: F32
    factor: int
    dy: float
    dx: float
    level: F64
    material: F64
    #: Ring centres already found, by (radius, sigma, slices): the identification tries
    #: several phantoms with one ring radius, and the localisation follows it.
    rings: dict[tuple[float, float, bytes], F64] = field(
        default_factory=dict, repr=False, compare=False
    )

    def to_full(self, x: F64 | float, y: F64 | float) -> tuple[F64, F64]:
        """Coarse pixel coordinates -> full-resolution pixel coordinates."""
        off = (self.factor - 1) / 2.0
        return (
            np.asarray(x, dtype=np.float64) * self.factor + off,
            np.asarray(y, dtype=np.float64) * self.factor + off,
        )

    def from_full(self, x: float, y: float) -> tuple[float, float]:
        """Full-resolution pixel coordinates -> coarse pixel coordinates."""
        off = (self.factor - 1) / 2.0
        return (x - off) / self.factor, (y - off) / self.factor


def body_level(img: F32, default: float = math.nan) -> float:
    """The body level of an image: the median of its material pixels (``default`` if none)."""
    mat = img[img > BODY_HU]
    return float(np.median(mat)) if mat.size else default


def coarse_grid(vol: Volume, target_mm: float = COARSE_MM) -> Coarse:
    """Block-mean a volume to pixels of about ``target_mm`` (never finer than given)."""
    _, dy, dx = vol.spacing
    f = max(1, round(target_mm / max(dy, dx)))
    nz, ny, nx = vol.shape
    ny2, nx2 = ny // f, nx // f
    # strided sums, columns then rows: far faster than a reduce over a reshaped view
    cols = np.array(vol.hu[:, : ny2 * f, 0 : nx2 * f : f], dtype=np.float32)
    for ox in range(1, f):
        cols += vol.hu[:, : ny2 * f, ox : nx2 * f : f]
    hu = np.array(cols[:, 0::f], dtype=np.float32)
    for oy in range(1, f):
        hu += cols[:, oy::f]
    hu /= f * f
    mat = hu > BODY_HU
    level = np.array([body_level(hu[i]) for i in range(nz)], dtype=np.float64)
    return Coarse(
        hu=hu,
        factor=f,
        dy=dy * f,
        dx=dx * f,
        level=np.asarray(level, dtype=np.float64),
        material=mat.reshape(nz, -1).mean(axis=1).astype(np.float64),
    )


def sample_slices(c: Coarse, positions: object, thickness_mm: float) -> I64:
    """Slices holding material, thinned to about four per module thickness along z.

    Enough to find a module of that thickness; the search then looks at every slice
    around it.
    """
    body = np.flatnonzero(c.material > 0.01).astype(np.intp)
    if body.size < 2:
        return body
    pos = np.asarray(positions, dtype=np.float64)[body]
    step = float(np.median(np.abs(np.diff(pos)))) or 1.0
    every = max(1, int(0.25 * thickness_mm / step))
    return body[::every]


def ring_inserts(module: Module) -> tuple[list[Roi], float]:
    """The module's inserts on its insert circle (not the centre one) and the circle radius."""
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


# --------------------------------------------------------------------------
# ring centre (annulus matched filter)
# --------------------------------------------------------------------------
def _annulus(radius_mm: float, sigma_mm: float, dy: float, dx: float) -> F32:
    reach = radius_mm + 3 * sigma_mm
    hy, hx = math.ceil(reach / dy), math.ceil(reach / dx)
    yy, xx = np.mgrid[-hy : hy + 1, -hx : hx + 1]
    r = np.hypot(yy * dy, xx * dx)
    k = np.exp(-0.5 * ((r - radius_mm) / sigma_mm) ** 2)
    return np.asarray(k / k.sum(), dtype=np.float32)


def _contrast(c: Coarse, slices: I64) -> F32:
    """Capped absolute contrast against the body level, zero off the (eroded) body."""
    hu = c.hu[slices]
    level = c.level[slices][:, None, None]
    mat = hu > BODY_HU
    inner = _erode(mat, max(1, round(3.0 / min(c.dy, c.dx))))
    con = np.minimum(np.abs(hu - level), CONTRAST_CAP_HU)
    return np.where(inner & np.isfinite(level), con, 0.0).astype(np.float32)


def _erode(mask: npt.NDArray[np.bool_], k: int) -> npt.NDArray[np.bool_]:
    """Binary erosion of each slice by a (2k+1)-square (box sums; outside counts as empty)."""
    m = np.pad(mask, ((0, 0), (k + 1, k), (k + 1, k))).astype(np.int32)
    cs = m.cumsum(axis=1).cumsum(axis=2)
    w = 2 * k + 1
    box = cs[:, w:, w:] - cs[:, :-w, w:] - cs[:, w:, :-w] + cs[:, :-w, :-w]
    return np.asarray(box == w * w)


def _ring_centres(c: Coarse, slices: I64, radius_mm: float, sigma_mm: float) -> F64:
    """Per slice, the coarse-pixel centre ``(x, y)`` of the strongest ring of ``radius_mm``."""
    con = _contrast(c, slices)
    k = _annulus(radius_mm, sigma_mm, c.dy, c.dx)
    n, ny, nx = con.shape
    shape = (_fast_len(ny + k.shape[0] - 1), _fast_len(nx + k.shape[1] - 1))
    spec = np.fft.rfft2(con, s=shape, axes=(1, 2))
    spec *= np.fft.rfft2(k, s=shape)[None]
    full = np.fft.irfft2(spec, s=shape, axes=(1, 2))
    oy, ox = k.shape[0] // 2, k.shape[1] // 2
    resp = full[:, oy : oy + ny, ox : ox + nx]
    flat = resp.reshape(n, -1).argmax(axis=1)
    iy, ix = np.unravel_index(flat, (ny, nx))
    # sub-pixel: parabola through the peak and its neighbours
    out = np.empty((n, 2), dtype=np.float64)
    for k_, (y, x) in enumerate(zip(iy, ix, strict=True)):
        out[k_] = (
            (x + _parabola(resp[k_, y, max(x - 1, 0) : x + 2], x, nx)),
            (y + _parabola(resp[k_, max(y - 1, 0) : y + 2, x], y, ny)),
        )
    return out


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c at least ``n`` (sizes the FFT handles fastest)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _parabola(v: F64, i: int, n: int) -> float:
    if i == 0 or i == n - 1 or v.size != 3:
        return 0.0
    den = v[0] - 2 * v[1] + v[2]
    return float(np.clip(0.5 * (v[0] - v[2]) / den, -0.5, 0.5)) if den < 0 else 0.0


# --------------------------------------------------------------------------
# circle profiles and the roll
# --------------------------------------------------------------------------
def bilinear(img: F32, y: F64, x: F64, z: I64 | None = None) -> F64:
    """Bilinear sample at (y, x) of a 2-D image, or of the slices ``z`` of a stack; NaN outside.

    With ``z`` (broadcast against ``y`` and ``x``) each point is sampled on its own slice.
    """
    ny, nx = img.shape[-2:]
    inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    xc = np.clip(x, 0, nx - 1.000001)
    yc = np.clip(y, 0, ny - 1.000001)
    x0 = np.floor(xc).astype(np.intp)
    y0 = np.floor(yc).astype(np.intp)
    fx = xc - x0
    fy = yc - y0
    zz = None if z is None else np.broadcast_to(z, x0.shape)

    def at(yy: I64, xx: I64) -> F64:
        return np.asarray(img[..., yy, xx] if zz is None else img[zz, yy, xx], dtype=np.float64)

    v = (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) + (
        at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    ) * fy
    return np.where(inside, v, np.nan)


def circle_profiles(
    stack: F32,
    slices: I64,
    centres: F64,
    radius_mm: float,
    band_mm: float,
    dy: float,
    dx: float,
    n_radii: int,
) -> F64:
    """Mean over ``n_radii`` radii around ``radius_mm`` at :data:`N_ANGLES` angles, per slice.

    ``centres`` is ``(n, 2)`` pixel ``(x, y)``, one per slice of ``slices``; the result is
    ``(n, N_ANGLES)``.
    """
    ang = np.deg2rad(np.arange(N_ANGLES) * ANGLE_STEP_DEG)
    radii = np.linspace(radius_mm - band_mm, radius_mm + band_mm, n_radii)
    xs = centres[:, 0, None, None] + radii[None, :, None] * np.cos(ang)[None, None, :] / dx
    ys = centres[:, 1, None, None] + radii[None, :, None] * np.sin(ang)[None, None, :] / dy
    return nanmean(bilinear(stack, ys, xs, slices[:, None, None]), axis=1)


def circle_profile(
    img: F32, cx: float, cy: float, radius_mm: float, band_mm: float, dy: float, dx: float
) -> F64:
    """Mean of a 2-D ``img`` over 5 radii around ``radius_mm``, at :data:`N_ANGLES` angles."""
    centre = np.array([[cx, cy]], dtype=np.float64)
    zero = np.zeros(1, dtype=np.intp)
    profiles = circle_profiles(img[None], zero, centre, radius_mm, band_mm, dy, dx, 5)
    return np.asarray(profiles[0], dtype=np.float64)


def nanmean(a: F64, axis: int) -> F64:
    """Mean over ``axis`` ignoring NaN; NaN where every value is NaN (no warning)."""
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, total / n, np.nan), dtype=np.float64)


def pattern_template(ring: list[Roi], radius_mm: float, background_hu: float) -> F64:
    """Nominal contrast along the insert circle at roll 0 (each insert an arc)."""
    ang = np.arange(N_ANGLES) * ANGLE_STEP_DEG
    t = np.zeros(N_ANGLES, dtype=np.float64)
    for r in ring:
        assert r.angle_deg is not None and r.nominal_hu is not None
        half = math.degrees(math.asin(min(0.8 * r.reach_mm / radius_mm, 1.0)))
        d = np.abs((ang - r.angle_deg + 180.0) % 360.0 - 180.0)
        t[d <= half] = r.nominal_hu - background_hu
    return t


@dataclass(frozen=True)
class RingScan:
    """The ring search on a set of slices.

    Attributes
    ----------
    slices : ndarray
        Slice indices scanned.
    centre : ndarray
        ``(n, 2)`` ring centres ``(x, y)``, full-resolution pixels.
    roll : ndarray
        Best roll per slice, degrees in [-180, 180).
    corr : ndarray
        Pearson correlation of the circle profile with the pattern at that roll.
    amp : ndarray
        Regression amplitude at that roll (1 = the nominal contrast).
    """

    slices: I64
    centre: F64
    roll: F64
    corr: F64
    amp: F64

    @property
    def strength(self) -> F64:
        """Correlation times (non-negative) amplitude: how much of the module each slice shows."""
        return np.asarray(self.corr * np.clip(self.amp, 0.0, None), dtype=np.float64)


def match_rolls(profiles: F64, template: F64) -> tuple[F64, F64, F64]:
    """Best roll, correlation and amplitude of each profile against ``template``, all rolls.

    ``profiles`` is ``(n, N_ANGLES)``; the roll moves the template's angle ``a`` to
    ``a + roll``.
    """
    p = np.nan_to_num(profiles - nanmean(profiles, axis=-1)[..., None])
    t = template - template.mean()
    cov = np.fft.irfft(np.fft.rfft(p, axis=-1) * np.conj(np.fft.rfft(t))[None], n=N_ANGLES)
    best = cov.argmax(axis=-1)
    c = cov[np.arange(cov.shape[0]), best]
    tn = float((t * t).sum())
    pn = np.sqrt((p * p).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(pn > 0, c / (pn * math.sqrt(tn)), 0.0)
    amp = c / tn
    roll = (best * ANGLE_STEP_DEG + 180.0) % 360.0 - 180.0
    return roll.astype(np.float64), corr.astype(np.float64), amp.astype(np.float64)


def scan_ring(c: Coarse, slices: I64, module: Module) -> RingScan | None:
    """Find the module's insert ring on each slice: centre, roll, correlation, amplitude."""
    ring, radius = ring_inserts(module)
    if not ring or slices.size == 0:
        return None
    reach = min(r.reach_mm for r in ring)
    sigma = max(1.5, 0.35 * reach)
    key = (round(radius, 3), round(sigma, 3), slices.tobytes())
    if key not in c.rings:
        c.rings[key] = _ring_centres(c, slices, radius, sigma)
    centres = c.rings[key]
    band = min(0.4 * reach, 2.0)
    tmpl = pattern_template(ring, radius, module.background_hu)
    prof = circle_profiles(c.hu, slices, centres, radius, band, c.dy, c.dx, 3)
    prof -= c.level[slices][:, None]
    roll, corr, amp = match_rolls(prof, tmpl)
    fx, fy = c.to_full(centres[:, 0], centres[:, 1])
    return RingScan(slices, np.stack([fx, fy], axis=1), roll, corr, amp)


# --------------------------------------------------------------------------
# full-resolution refinement: rigid fit of the inserts
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class InsertFit:
    """Centre and roll from the inserts' centroids.

    Attributes
    ----------
    centre : (float, float)
        Phantom centre, full-resolution pixels ``(x, y)``.
    roll : float
        Degrees.
    used : tuple of str
        Inserts whose centroids entered the fit.
    left_out : tuple of str
        Inserts with too little contrast or too far from where the others put them.
    rms_mm : float
        Root-mean-square distance of the used centroids from the fitted positions.
    """

    centre: tuple[float, float]
    roll: float
    used: tuple[str, ...]
    left_out: tuple[str, ...]
    rms_mm: float


def _centroid(
    img: F32, level: float, cx: float, cy: float, reach_mm: float, sign: float, dy: float, dx: float
) -> tuple[float, float, float] | None:
    """Contrast-weighted centroid (x, y) of an insert near (cx, cy) and its peak contrast."""
    ry, rx = math.ceil(reach_mm / dy), math.ceil(reach_mm / dx)
    ny, nx = img.shape
    x0, x1 = max(round(cx) - rx, 0), min(round(cx) + rx + 1, nx)
    y0, y1 = max(round(cy) - ry, 0), min(round(cy) + ry + 1, ny)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    patch = (img[y0:y1, x0:x1].astype(np.float64) - level) * sign
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = ((xx - cx) * dx) ** 2 + ((yy - cy) * dy) ** 2 <= reach_mm**2
    w = np.where(inside, patch, 0.0)
    peak = float(np.percentile(w[inside], 90)) if inside.any() else 0.0
    if peak <= 0:
        return None
    w = np.clip(w - 0.5 * peak, 0.0, None)
    s = float(w.sum())
    if s <= 0:
        return None
    return float((w * xx).sum() / s), float((w * yy).sum() / s), peak


def fit_inserts(
    img: F32,
    level: float,
    ring: list[Roi],
    background_hu: float,
    centre: tuple[float, float],
    roll: float,
    amplitude: float,
    dy: float,
    dx: float,
) -> InsertFit | None:
    """Rigid fit (rotation and translation) of the ring inserts to their centroids.

    Parameters
    ----------
    img : ndarray
        Full-resolution image (the module's slices averaged).
    level : float
        The image's body level (HU of the module background as scanned).
    ring : list of Roi
        The module's ring inserts.
    background_hu : float
        Nominal HU of the module's background.
    centre, roll : (float, float), float
        Starting centre (full-resolution pixels) and roll (degrees).
    amplitude : float
        The scanned contrast relative to nominal (from the roll match), so an insert
        whose nominal contrast is large but which shows little is recognised as missing.
    dy, dx : float
        Pixel size, mm.

    Returns
    -------
    InsertFit or None
        None when fewer than three inserts show enough contrast to be fitted.
    """
    cx, cy, rl = centre[0], centre[1], roll
    used: list[str] = []
    resid: F64 = np.zeros(0)
    for _ in range(4):
        src, dst, names = [], [], []
        for r in ring:
            assert r.nominal_hu is not None
            contrast = (r.nominal_hu - background_hu) * max(amplitude, 0.2)
            if abs(contrast) < 60.0:
                continue
            x_mm, y_mm = r.position(rl)
            ex, ey = cx + x_mm / dx, cy + y_mm / dy
            got = _centroid(
                img, level, ex, ey, r.reach_mm + 2.5, math.copysign(1.0, contrast), dy, dx
            )
            if got is None or got[2] < 0.4 * abs(contrast):
                continue
            src.append(r.position(0.0))
            dst.append(((got[0] - cx) * dx, (got[1] - cy) * dy))
            names.append(r.name)
        if len(src) < 3:
            return None
        a, b = np.asarray(src), np.asarray(dst)
        keep = np.ones(len(names), dtype=bool)
        for _ in range(2):  # rigid fit, then drop centroids far from the fit
            theta, t = _rigid(a[keep], b[keep])
            pred = (
                a
                @ np.array(
                    [[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]
                )
                + t
            )
            resid = np.hypot(*(pred - b).T)
            new = resid <= max(1.5, 3.0 * float(np.median(resid[keep])))
            if new.sum() < 3 or (new == keep).all():
                break
            keep = new
        cx, cy = cx + t[0] / dx, cy + t[1] / dy
        rl = roll_norm(math.degrees(theta))
        used = [n for n, k in zip(names, keep, strict=True) if k]
        resid = resid[keep]
    left = tuple(r.name for r in ring if r.name not in used)
    rms = float(np.sqrt(np.mean(resid**2))) if resid.size else math.nan
    return InsertFit((float(cx), float(cy)), float(rl), tuple(used), left, rms)


def _rigid(a: F64, b: F64) -> tuple[float, npt.NDArray[np.float64]]:
    """Rotation angle (radians) and translation taking points ``a`` onto ``b`` (least squares)."""
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ma, b - mb
    num = float((a0[:, 0] * b0[:, 1] - a0[:, 1] * b0[:, 0]).sum())
    den = float((a0 * b0).sum())
    theta = math.atan2(num, den)
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    return theta, mb - ma @ rot


def roll_norm(deg: float) -> float:
    """An angle in degrees, folded into [-180, 180)."""
    return (deg + 180.0) % 360.0 - 180.0


# --------------------------------------------------------------------------
# body outline and uniform content
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class BodyCircle:
    """The phantom's outline fitted as a circle (full-resolution pixels)."""

    centre: tuple[float, float]
    radius_mm: float
    inliers: float


def body_start(c: Coarse, s: int) -> tuple[float, float] | None:
    """A point inside the phantom on slice ``s``: the centroid of its thick material.

    The material is eroded by 8 mm first, which removes thin structures (a couch top,
    a table, cables) that would pull the centroid; :func:`body_circle` refines it.
    """
    mat = c.hu[s] > BODY_HU
    k = max(1, round(8.0 / min(c.dy, c.dx)))
    core = _erode(mat[None], k)[0]
    if not core.any():
        core = mat
    if not core.any():
        return None
    yy, xx = np.nonzero(core)
    fx, fy = c.to_full(float(xx.mean()), float(yy.mean()))
    return float(fx), float(fy)


def body_circle(
    c: Coarse, s: int, start: tuple[float, float], expect_mm: float | None
) -> BodyCircle | None:
    """Fit the outline of the phantom on slice ``s`` as a circle, couch and cut-offs left out.

    Rays from ``start`` find where the material ends; edges far from the expected
    radius (a couch, a table, the edge of the field of view) are left out, and a
    least-squares circle is fitted to the rest. Without ``expect_mm`` the median
    edge distance is expected (to measure an unknown object).
    """
    img = c.hu[s]
    ang = np.deg2rad(np.arange(0.0, 360.0, 2.0))
    reach = 1.6 * expect_mm if expect_mm is not None else 0.5 * math.hypot(*img.shape) * c.dx
    steps = np.arange(0.3 * reach / 1.6, reach, 0.5)
    sx, sy = c.from_full(*start)
    xs = sx + steps[None, :] * np.cos(ang)[:, None] / c.dx
    ys = sy + steps[None, :] * np.sin(ang)[:, None] / c.dy
    vals = bilinear(img, ys, xs)
    below = ~(vals > BODY_HU)  # NaN (outside the image) counts as no material
    first = np.argmax(below, axis=1)
    has = below.any(axis=1) & (first > 0)
    edge_in_image = np.isfinite(vals[np.arange(ang.size), first])
    ok = has & edge_in_image
    if ok.sum() < 12:
        return None
    i = first[ok]
    va, vb = vals[ok, i - 1], vals[ok, i]
    f = np.clip((va - BODY_HU) / np.where(va != vb, va - vb, 1.0), 0, 1)
    r = steps[i - 1] + f * (steps[1] - steps[0])
    px = sx * c.dx + r * np.cos(ang[ok])
    py = sy * c.dy + r * np.sin(ang[ok])
    expect = expect_mm if expect_mm is not None else float(np.median(r))
    keep = np.abs(r - expect) <= 0.15 * expect
    for _ in range(3):
        if keep.sum() < 12:
            return None
        xc, yc, rad = _kasa(px[keep], py[keep])
        d = np.hypot(px - xc, py - yc) - rad
        keep = np.abs(d) <= 2.0
    if keep.sum() < 12:
        return None
    xc, yc, rad = _kasa(px[keep], py[keep])
    fx, fy = c.to_full(xc / c.dx, yc / c.dy)
    return BodyCircle((float(fx), float(fy)), float(rad), float(keep.sum() / ang.size))


def _kasa(x: F64, y: F64) -> tuple[float, float, float]:
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x * x + y * y
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    xc, yc = sol[0] / 2, sol[1] / 2
    return float(xc), float(yc), float(math.sqrt(max(sol[2] + xc * xc + yc * yc, 0.0)))


def uniform_content(
    c: Coarse, slices: I64, centre_full: tuple[float, float], reach_mm: float
) -> tuple[npt.NDArray[np.bool_], str]:
    """Per slice, whether it shows uniform material within ``reach_mm`` of the centre.

    Uniform: material everywhere in reach and no object of high contrast (beyond
    ±200 HU of the slice's body level on the 2 mm grid, where noise is averaged away).

    Returns
    -------
    ok : ndarray of bool
        One flag per slice.
    why : str
        The figures of the worst slice, in words.
    """
    cx, cy = c.from_full(*centre_full)
    ny, nx = c.hu.shape[1:]
    yy, xx = np.ogrid[:ny, :nx]
    inner = ((xx - cx) * c.dx) ** 2 + ((yy - cy) * c.dy) ** 2 <= reach_mm**2
    if not inner.any() or slices.size == 0:
        return np.zeros(slices.size, dtype=bool), "the region is outside the image"
    level = c.level[slices]
    vals = c.hu[slices][:, inner] - np.nan_to_num(level, nan=0.0)[:, None]
    outliers = np.mean(np.abs(vals) > 200.0, axis=1)
    ok = np.isfinite(level) & (outliers < 0.002)
    worst = int(np.argmax(outliers))
    spread = float(np.percentile(np.abs(vals[worst]), 99))
    return ok, (
        f"{100 * float(outliers[worst]):.2f}% of the pixels within {reach_mm:.0f} mm differ "
        f"from the background by more than 200 HU (99th percentile {spread:.0f} HU)"
    )
