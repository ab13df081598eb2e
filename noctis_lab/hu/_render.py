"""Drawing primitives for the synthetic phantom generator.

Everything here works on whole arrays: a shape is painted by computing, in its
bounding box only, a conservative signed distance to its edge; pixels farther
than half a pixel diagonal from the edge are fully inside or outside, and only
the pixels near the edge are supersampled (``s x s`` sub-pixel points) to get
their coverage fraction. Compositing is area weighted, so the mean of a region
that a shape covers exactly is the shape's value, and a partly covered pixel
holds the area-weighted mix of the two values.

Coordinates are millimetres in the image plane, ``x`` to the right (columns)
and ``y`` down (rows); pixel ``(row, col)`` has its centre at
``(x0 + col * p, y0 + row * p)`` with ``x0 = y0 = -(n - 1) / 2 * p``, so
``(0, 0)`` mm is the centre of the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Ellipse",
    "Grid",
    "Rect",
    "correlated_noise",
    "gaussian_blur",
    "paint",
    "ring_pattern",
    "streak_pattern",
]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

#: Default supersampling of edge pixels (``s x s`` points per pixel).
SUPERSAMPLE = 8


@dataclass(frozen=True)
class Grid:
    """A square ``n x n`` pixel grid of ``pixel_mm`` centred on ``(0, 0)`` mm."""

    n: int
    pixel_mm: float

    @property
    def x0(self) -> float:
        """Coordinate (mm) of the centre of the first column (and row)."""
        return -(self.n - 1) / 2.0 * self.pixel_mm

    def to_pixel(self, x_mm: float, y_mm: float) -> tuple[float, float]:
        """``(row, col)`` (fractional) of the point ``(x_mm, y_mm)``."""
        return (y_mm - self.x0) / self.pixel_mm, (x_mm - self.x0) / self.pixel_mm

    def axis(self) -> F64:
        """Pixel-centre coordinates along one axis, mm."""
        return self.x0 + np.arange(self.n, dtype=np.float64) * self.pixel_mm

    def box(self, cx: float, cy: float, half_x: float, half_y: float) -> tuple[slice, slice] | None:
        """Row and column slices covering ``cx +- half_x``, ``cy +- half_y`` plus one pixel."""
        p = self.pixel_mm
        c0 = max(0, math.floor((cx - half_x - self.x0) / p) - 1)
        c1 = min(self.n, math.ceil((cx + half_x - self.x0) / p) + 2)
        r0 = max(0, math.floor((cy - half_y - self.x0) / p) - 1)
        r1 = min(self.n, math.ceil((cy + half_y - self.x0) / p) + 2)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)


@dataclass(frozen=True)
class Ellipse:
    """An ellipse (a circle when ``ax == ay``) rotated by ``angle_deg`` (clockwise on screen)."""

    cx: float
    cy: float
    ax: float
    ay: float
    angle_deg: float = 0.0

    def half_extent(self) -> tuple[float, float]:
        """Half width and half height of the axis-aligned bounding box, mm."""
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        return math.hypot(self.ax * c, self.ay * s), math.hypot(self.ax * s, self.ay * c)

    def _local(self, x: F64, y: F64) -> tuple[F64, F64]:
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        dx, dy = x - self.cx, y - self.cy
        return dx * c + dy * s, -dx * s + dy * c

    def inside(self, x: F64, y: F64) -> npt.NDArray[np.bool_]:
        """Whether each point lies inside."""
        u, v = self._local(x, y)
        return np.asarray((u / self.ax) ** 2 + (v / self.ay) ** 2 <= 1.0)

    def distance_bound(self, x: F64, y: F64) -> F64:
        """Signed distance estimate (positive inside) never larger than the true distance.

        For a point on the homothetic ellipse of scale ``rho``, the distance to the
        edge is at least ``|1 - rho| * min(ax, ay)`` (exact for a circle).
        """
        u, v = self._local(x, y)
        rho = np.sqrt((u / self.ax) ** 2 + (v / self.ay) ** 2)
        return np.asarray((1.0 - rho) * min(self.ax, self.ay))


@dataclass(frozen=True)
class Rect:
    """A rectangle of half sizes ``hu`` (along ``angle_deg``) and ``hv`` (across it)."""

    cx: float
    cy: float
    hu: float
    hv: float
    angle_deg: float = 0.0

    def half_extent(self) -> tuple[float, float]:
        """Half width and half height of the axis-aligned bounding box, mm."""
        a = math.radians(self.angle_deg)
        c, s = abs(math.cos(a)), abs(math.sin(a))
        return self.hu * c + self.hv * s, self.hu * s + self.hv * c

    def _local(self, x: F64, y: F64) -> tuple[F64, F64]:
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        dx, dy = x - self.cx, y - self.cy
        return dx * c + dy * s, -dx * s + dy * c

    def inside(self, x: F64, y: F64) -> npt.NDArray[np.bool_]:
        """Whether each point lies inside."""
        u, v = self._local(x, y)
        return np.asarray((np.abs(u) <= self.hu) & (np.abs(v) <= self.hv))

    def distance_bound(self, x: F64, y: F64) -> F64:
        """Signed distance estimate (exact inside, a lower bound outside)."""
        u, v = self._local(x, y)
        return np.asarray(np.minimum(self.hu - np.abs(u), self.hv - np.abs(v)))


Shape = Ellipse | Rect


def coverage(
    grid: Grid, shape: Shape, supersample: int = SUPERSAMPLE
) -> tuple[tuple[slice, slice], F64] | None:
    """Fraction of each pixel covered by ``shape``, in the shape's bounding box.

    Returns ``((rows, cols), fraction)`` or ``None`` when the shape misses the grid.
    """
    hx, hy = shape.half_extent()
    box = grid.box(shape.cx, shape.cy, hx, hy)
    if box is None:
        return None
    rows, cols = box
    ax = grid.axis()
    xs = ax[cols][None, :]
    ys = ax[rows][:, None]
    xx, yy = np.broadcast_arrays(xs, ys)
    est = shape.distance_bound(xx, yy)
    p = grid.pixel_mm
    band = 0.75 * p  # > half the pixel diagonal (0.7071 p)
    cov = (est > 0).astype(np.float64)
    ei, ej = np.nonzero(np.abs(est) < band)
    if ei.size:
        off = ((np.arange(supersample) + 0.5) / supersample - 0.5) * p
        sx = xx[ei, ej][:, None, None] + off[None, None, :]
        sy = yy[ei, ej][:, None, None] + off[None, :, None]
        sx, sy = np.broadcast_arrays(sx, sy)
        cov[ei, ej] = shape.inside(sx, sy).mean(axis=(1, 2))
    if not cov.any():
        return None
    return box, cov


def paint(
    image: F64, grid: Grid, shape: Shape, value: float, supersample: int = SUPERSAMPLE
) -> None:
    """Draw ``shape`` filled with ``value`` over ``image`` in place (area-weighted edges)."""
    got = coverage(grid, shape, supersample)
    if got is None:
        return
    (rows, cols), cov = got
    region = image[rows, cols]
    region += (value - region) * cov


def add_shape(
    image: F64, grid: Grid, shape: Shape, amount: float, supersample: int = SUPERSAMPLE
) -> None:
    """Add ``amount`` times the coverage of ``shape`` to ``image`` in place."""
    got = coverage(grid, shape, supersample)
    if got is None:
        return
    (rows, cols), cov = got
    image[rows, cols] += amount * cov


def gaussian_kernel(sigma_px: float) -> F64:
    """Normalised 1-D Gaussian kernel truncated at 4 sigma (``[1.0]`` for tiny sigma)."""
    radius = int(4.0 * sigma_px + 0.5)
    if sigma_px <= 0 or radius < 1:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma_px) ** 2)
    return np.asarray(w / w.sum())


def gaussian_blur(image: F64, sigma_px: float) -> F64:
    """In-plane Gaussian blur (edges extended with the nearest value)."""
    from scipy.ndimage import correlate1d

    w = gaussian_kernel(sigma_px)
    if w.size == 1:
        return image
    out = correlate1d(image, w, axis=-1, mode="nearest")
    return np.asarray(correlate1d(out, w, axis=-2, mode="nearest"))


def correlated_noise(rng: np.random.Generator, n: int, sd: float, correlation_px: float) -> F32:
    """Stationary Gaussian noise of standard deviation ``sd`` (exactly, in expectation).

    White noise is filtered in-plane with a Gaussian of sigma ``correlation_px``
    (periodic boundaries, so every pixel sees the same filter) and rescaled by
    ``1 / sum(w**2)``: for a separable kernel ``w`` the filtered variance is
    ``(sum w_i**2)**2`` times the white variance.
    """
    from scipy.ndimage import correlate1d

    white = rng.standard_normal((n, n), dtype=np.float32)
    w = gaussian_kernel(correlation_px)
    if w.size == 1:
        return np.asarray(white * np.float32(sd), dtype=np.float32)
    w32 = w.astype(np.float32)
    out = correlate1d(white, w32, axis=1, mode="wrap")
    out = correlate1d(out, w32, axis=0, mode="wrap")
    gain = float(np.sum(w**2))  # per axis; two axes: variance factor gain**2, SD factor gain
    out *= np.float32(sd / gain)
    return np.asarray(out, dtype=np.float32)


def ring_pattern(grid: Grid, radii_mm: list[float], amplitude: float, width_mm: float) -> F64:
    """Concentric rings about the isocentre ``(0, 0)``: alternating sign, Gaussian profile."""
    ax = grid.axis()
    r = np.hypot(ax[None, :], ax[:, None])
    out = np.zeros((grid.n, grid.n))
    for k, radius in enumerate(radii_mm):
        sign = 1.0 if k % 2 == 0 else -1.0
        out += sign * amplitude * np.exp(-0.5 * ((r - radius) / width_mm) ** 2)
    return out


def streak_pattern(
    grid: Grid,
    metals: list[tuple[float, float]],
    amplitude: float,
    n_rays: int,
    phase: float,
    decay_mm: float,
    metal_radius_mm: float,
) -> F64:
    """Metal streaks.

    Thin alternating bright/dark rays from each metal point, and a dark band along the
    line joining two metal points (beam hardening between them).
    """
    ax = grid.axis()
    xx, yy = np.meshgrid(ax, ax)
    out = np.zeros((grid.n, grid.n))
    for mx, my in metals:
        dx, dy = xx - mx, yy - my
        r = np.hypot(dx, dy)
        phi = np.arctan2(dy, dx)
        rays = np.cos(n_rays * phi + phase) ** 15
        fade = np.exp(-np.maximum(r - metal_radius_mm, 0.0) / decay_mm)
        out += amplitude * rays * fade * (r > metal_radius_mm)
    for i, (ax0, ay0) in enumerate(metals):
        for bx, by in metals[i + 1 :]:
            vx, vy = bx - ax0, by - ay0
            length = math.hypot(vx, vy)
            if length == 0:
                continue
            t = ((xx - ax0) * vx + (yy - ay0) * vy) / length**2
            perp = np.abs((xx - ax0) * vy - (yy - ay0) * vx) / length
            between = np.clip(1.0 - np.abs(2.0 * t - 1.0), 0.0, 1.0) ** 0.5
            out -= 0.8 * amplitude * between * np.exp(-0.5 * (perp / 4.0) ** 2)
    return out
