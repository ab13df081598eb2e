"""Plots of a :class:`~noctis_lab.hu.CalibrationResult` (matplotlib, no pyplot state).

Figures are built with :class:`matplotlib.figure.Figure` directly, so they work
under any backend (Agg in reports and tests) and leave no global figure behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from noctis_lab.quality import STATUS_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from noctis_lab.dicom._volume import Volume
    from noctis_lab.hu._result import CalibrationResult

__all__ = ["plot_linearity", "plot_slice"]

_UNJUDGED = STATUS_COLOURS["not_checked"]


def _figure(ax: Any, size: tuple[float, float]) -> tuple[Figure, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def plot_slice(
    result: CalibrationResult, volume: Volume, module: str | None = None, ax: Any = None
) -> Figure:
    """The central slice of ``module`` (default: the reference module) with its ROIs.

    ROIs are drawn as circles coloured by status (green pass, orange warning, red
    fail, blue not checked) and labelled with the material and mean HU.
    """
    from matplotlib.patches import Circle

    slices = result.localisation.module_slices
    name = module if module is not None else next(iter(slices))
    if name not in slices:
        raise KeyError(f"module {name!r} was not measured; measured: {list(slices)}")
    idx = slices[name]
    k = idx[len(idx) // 2]
    fig, ax = _figure(ax, (6.5, 6.5))
    _, dy, dx = volume.spacing
    img = volume.hu[k]
    ax.imshow(img, cmap="gray", vmin=-200, vmax=300, interpolation="nearest")
    for r in result.rois:
        if r.module != name:
            continue
        colour = STATUS_COLOURS.get(r.status, _UNJUDGED)
        x, y = r.x_mm / dx, r.y_mm / dy
        ax.add_patch(Circle((x, y), r.radius_mm / dx, fill=False, ec=colour, lw=1.6))
        ax.annotate(
            f"{r.material}\n{r.mean:.0f}",
            (x, y - r.radius_mm / dy - 2),
            color=colour,
            fontsize=7,
            ha="center",
            va="bottom",
        )
    cx, cy = result.localisation.centre_px
    ax.plot([cx], [cy], "+", color="yellow", ms=10)
    ax.set_title(
        f"{result.phantom_title} {name}, slice {k} — {result.status.upper()} "
        f"(roll {result.localisation.roll_deg:+.1f}°)",
        fontsize=9,
    )
    ax.set_axis_off()
    return fig


def plot_linearity(result: CalibrationResult, ax: Any = None) -> Figure:
    """Measured vs nominal CT number: points (± 2 SEM), the fit, identity, tolerance bands.

    The shaded band is the slope tolerance of the profile's linearity criterion when
    it has one; each judged insert also shows its accepted HU interval as a bar.
    """
    lin = result.linearity
    if lin is None:
        raise ValueError(f"result for {result.phantom} has no linearity fit (fewer than 3 inserts)")
    fig, ax = _figure(ax, (6.5, 5.0))
    x = np.asarray(lin.nominal_hu)
    y = np.asarray(lin.measured_hu)
    sem = np.asarray(lin.sem_hu) if lin.sem_hu else np.zeros_like(x)
    lo, hi = float(x.min()) - 100, float(x.max()) + 100
    grid = np.linspace(lo, hi, 50)
    slope_check = next(
        (
            c
            for c in result.checks
            if c.kind == "linearity"
            and c.unit == "ratio"
            and c.low is not None
            and c.high is not None
        ),
        None,
    )
    if slope_check is not None:
        assert slope_check.low is not None and slope_check.high is not None
        ax.fill_between(
            grid,
            slope_check.low * grid,
            slope_check.high * grid,
            color="#2ca02c",
            alpha=0.15,
            label=f"slope tolerance {slope_check.low:g}..{slope_check.high:g}",
        )
    ax.plot(grid, grid, color="grey", lw=1, ls="--", label="identity")
    ax.plot(
        grid,
        lin.slope * grid + lin.intercept,
        color="#1f77b4",
        lw=1.2,
        label=f"fit: {lin.slope:.3f}·x {lin.intercept:+.1f} (R² {lin.r_squared:.4f})",
    )
    status = {}
    for r in result.rois:
        status[(r.material, r.nominal_hu)] = r.status
    colours = [
        STATUS_COLOURS.get(status.get((m, n), "not_checked"), _UNJUDGED)
        for m, n in zip(lin.materials, lin.nominal_hu, strict=True)
    ]
    ax.errorbar(x, y, yerr=2 * sem, fmt="none", ecolor="black", lw=0.8)
    ax.scatter(x, y, c=colours, zorder=3, s=28)
    for c in result.checks:
        if c.kind != "hu" or c.low is None or c.high is None or c.expected is None:
            continue
        ax.plot([c.expected, c.expected], [c.low, c.high], color="#ff7f0e", lw=4, alpha=0.35)
    for m, xi, yi in zip(lin.materials, x, y, strict=True):
        ax.annotate(m, (xi, yi), xytext=(4, -10), textcoords="offset points", fontsize=7)
    ax.set_xlabel("nominal CT number (HU)")
    ax.set_ylabel("measured mean (HU)")
    ax.set_title(
        f"CT-number linearity — {result.phantom_title}, profile {result.profile} "
        f"v{result.profile_version}: {result.status.upper()}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return fig
