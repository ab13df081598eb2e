"""Browse phantoms (modules, ROIs with nominal values and ranges) and tolerance profiles."""

from __future__ import annotations

import base64
import functools
import io
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from noctis_lab.widgets._trend import _png_output

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from noctis_lab.hu._phantoms import Phantom
    from noctis_lab.hu._profiles import Profile

__all__ = ["PhantomBrowser", "phantom_table", "plot_phantom_module", "profile_table"]

_ROLE_COLOURS = {
    "insert": "#1f77b4",
    "background": "#7f7f7f",
    "uniformity_centre": "#2ca02c",
    "uniformity_edge": "#98df8a",
}


def phantom_table(phantom: str | Phantom) -> pd.DataFrame:
    """One row per ROI of every module: position, size, material, nominal, range, density.

    Parameters
    ----------
    phantom : str or Phantom
        Built-in name, phantom file, or a loaded phantom.
    """
    import pandas as pd

    from noctis_lab.hu import load_phantom

    ph = load_phantom(phantom)
    rows = [
        {
            "module": m.name,
            "kind": m.kind,
            "z_offset_mm": m.z_offset_mm,
            "roi": r.name,
            "material": r.material,
            "role": r.role,
            "nominal_hu": r.nominal_hu,
            "low_hu": None if r.range_hu is None else r.range_hu[0],
            "high_hu": None if r.range_hu is None else r.range_hu[1],
            "relative_electron_density": r.relative_electron_density,
            "distance_mm": r.distance_mm,
            "angle_deg": r.angle_deg,
            "radius_mm": r.radius_mm,
        }
        for m, r in ph.iter_rois()
    ]
    return pd.DataFrame(rows)


def profile_table(profile: str | Profile) -> pd.DataFrame:
    """One row per criterion of a tolerance profile, with its limits and cited source."""
    import pandas as pd

    from noctis_lab.hu import load_profile

    prof = load_profile(profile)
    rows = [
        {
            "profile": prof.name,
            "version": prof.version,
            "criterion": c.id,
            "kind": c.kind,
            "materials": ", ".join(c.materials) if c.materials is not None else "",
            "expected": c.expected,
            "tolerance": c.tolerance,
            "low": c.low,
            "high": c.high,
            "use_phantom_range": c.use_phantom_range,
            "description": c.description or "",
            "source": prof.source_text(c.source),
        }
        for c in prof.criteria
    ]
    return pd.DataFrame(rows)


@functools.cache
def _shown_figure() -> type[Figure]:
    """A Figure class that shows itself as PNG as a cell's last value.

    A bare ``matplotlib.figure.Figure`` (no pyplot, so no inline backend) displays
    as ``<Figure size 520x520 with 1 Axes>``; IPython displays this one through
    ``_repr_png_`` in JupyterLab, Voila and papermill alike.
    """
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self) -> bytes:
            import io

            buf = io.BytesIO()
            self.savefig(buf, format="png", dpi=90)
            return buf.getvalue()

    return ShownFigure


def plot_phantom_module(phantom: str | Phantom, module: str | None = None) -> Figure:
    """The layout of one module (default: the reference module): body and ROIs, in mm."""
    from matplotlib.patches import Circle, Ellipse

    from noctis_lab.hu import load_phantom

    ph = load_phantom(phantom)
    mod = ph.module(module)
    fig = _shown_figure()(figsize=(5.2, 5.2), layout="constrained")
    ax = fig.add_subplot()
    ax_x, ax_y = ph.body.half_axes_mm
    ax.add_patch(Ellipse((0, 0), 2 * ax_x, 2 * ax_y, fill=False, lw=1.5, color="#444"))
    for roi in mod.rois:
        x, y = roi.xy_mm
        colour = _ROLE_COLOURS.get(roi.role, "#333")
        if roi.insert_radius_mm is not None:
            ax.add_patch(Circle((x, y), roi.insert_radius_mm, fill=False, ls=":", color=colour))
        ax.add_patch(Circle((x, y), roi.radius_mm, alpha=0.35, color=colour))
        label = roi.material if roi.nominal_hu is None else f"{roi.material}\n{roi.nominal_hu:g}"
        ax.annotate(label, (x, y), ha="center", va="center", fontsize=7)
    lim = 1.08 * max(ax_x, ax_y)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(lim, -lim)  # image convention: y down
    ax.set_aspect("equal")
    ax.set_xlabel("x (mm, image right)")
    ax.set_ylabel("y (mm, image down)")
    ax.set_title(f"{ph.title}: {mod.name} ({mod.kind}, z {mod.z_offset_mm:+g} mm)")
    return fig


class PhantomBrowser(w.VBox):  # type: ignore[misc]  # ipywidgets has no type information: VBox is Any
    """Pick a phantom and a module; see its layout and its ROI table with sources.

    Parameters
    ----------
    phantom : str, optional
        Phantom shown first (default: the first built-in).
    """

    def __init__(self, phantom: str | None = None) -> None:
        from noctis_lab.hu import list_phantoms

        names = list_phantoms()
        if phantom is not None and phantom not in names:
            raise ValueError(
                f"PhantomBrowser: unknown phantom {phantom!r}; built-in: {', '.join(names)}"
            )
        self.phantom_select = w.Dropdown(
            options=names, value=phantom or names[0], description="Phantom"
        )
        self.module_select = w.Dropdown(description="Module")
        self.info = w.HTML()
        self.output = w.Output()
        self._filling = False
        super().__init__(
            [w.HBox([self.phantom_select, self.module_select]), self.info, self.output]
        )
        self._fill_modules()
        self.phantom_select.observe(self._on_phantom, names="value")
        self.module_select.observe(self._on_module, names="value")
        self.redraw()

    def _fill_modules(self) -> None:
        from noctis_lab.hu import load_phantom

        ph = load_phantom(self.phantom_select.value)
        self._filling = True
        try:
            self.module_select.options = [m.name for m in ph.modules]
            self.module_select.value = ph.reference_module
        finally:
            self._filling = False

    def _on_module(self, _change: dict[str, Any]) -> None:
        if not self._filling:
            self.redraw()

    def _on_phantom(self, _change: dict[str, Any]) -> None:
        self._fill_modules()
        self.redraw()

    def redraw(self) -> None:
        """Show the selected module's layout and ROI table."""
        import html

        from noctis_lab.hu import load_phantom

        ph = load_phantom(self.phantom_select.value)
        module = str(self.module_select.value)
        sources = "".join(
            f"<li>{html.escape(s.id)}: {html.escape(s.citation)}</li>" for s in ph.sources
        )
        self.info.value = (
            f"<b>{html.escape(ph.title)}</b> ({html.escape(ph.manufacturer)}): "
            f"{html.escape(ph.description)}<br>Sources:<ul>{sources}</ul>"
        )
        table = phantom_table(ph)
        table = table[table["module"] == module].drop(columns=["module", "kind", "z_offset_mm"])
        buf = io.BytesIO()
        plot_phantom_module(ph, module).savefig(buf, format="png", dpi=80)
        self.output.outputs = (
            _png_output(buf.getvalue()),
            {
                "output_type": "display_data",
                "data": {
                    "text/html": table.to_html(index=False, na_rep="", float_format=_fmt),
                    "text/plain": table.to_string(index=False),
                },
                "metadata": {},
            },
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            buf = io.BytesIO()
            module = str(self.module_select.value)
            plot_phantom_module(self.phantom_select.value, module).savefig(
                buf, format="png", dpi=80
            )
            bundle["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
        return bundle


def _fmt(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:g}"
