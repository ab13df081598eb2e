"""HU of each material over time, with tolerance bands and drift alarms (ipywidgets).

A static matplotlib figure in an ``Output`` widget, re-drawn when the scanner or the
material drop-down changes: the most robust choice, since it renders the same in
JupyterLab, Voila, and papermill/nbconvert (the figure is also part of the widget's
plain display data, see :meth:`TrendView._repr_mimebundle_`).
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from noctis_lab.quality import PALETTE, Status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["TrendView"]

_ALL = "(all materials)"
#: A drift alarm in the colour of a failure.
_ALARM = PALETTE[Status.FAIL].colour


class TrendView(w.VBox):  # type: ignore[misc]  # ipywidgets has no type information: VBox is Any
    """Trend of measured HU per material, for one scanner, from the calibration history.

    Parameters
    ----------
    scanner : str, optional
        Scanner key (``manufacturer/model/serial``) to show first (default: the first
        scanner in the history).
    material : str, optional
        Material to show first (default: every material, one panel each).
    history : CalibrationHistory or str, optional
        History object or database URL (default: the project's history).

    Attributes
    ----------
    scanner_select, material_select : ipywidgets.Dropdown
        The two pickers.
    output : ipywidgets.Output
        Where the figure is drawn.
    figure : matplotlib.figure.Figure or None
        The figure currently shown.
    """

    def __init__(
        self,
        scanner: str | None = None,
        *,
        material: str | None = None,
        history: Any = None,
    ) -> None:
        from noctis_lab.hu.history import CalibrationHistory

        self._history = (
            history
            if history is not None and not isinstance(history, str)
            else CalibrationHistory(history)
        )
        from noctis_lab.reports._dashboard_data import scanner_label

        table = self._history.scanners(drift=False)
        scanners = [str(k) for k in table["scanner"]]
        self.labels: dict[str, str] = {
            str(r["scanner"]): scanner_label(r) for _, r in table.iterrows()
        }
        if scanner is not None and scanner not in scanners:
            raise ValueError(
                f"TrendView: scanner {scanner!r} has no records in the history "
                f"{self._history.url}; scanners: {', '.join(scanners) or 'none'}"
            )
        self._frames: dict[str, pd.DataFrame] = {}
        self._filling = False
        self.figure: Figure | None = None
        self._png = b""
        self.drift: list[Any] = []
        self.scanner_select = w.Dropdown(
            options=[(self.labels[k], k) for k in scanners],
            value=scanner if scanner is not None else (scanners[0] if scanners else None),
            description="Scanner",
            layout=w.Layout(width="460px"),
        )
        self.material_select = w.Dropdown(description="Material", layout=w.Layout(width="320px"))
        self.message = w.HTML()
        self.output = w.Output()
        super().__init__(
            [w.HBox([self.scanner_select, self.material_select]), self.message, self.output]
        )
        self._fill_materials(material)
        self.scanner_select.observe(self._on_scanner, names="value")
        self.material_select.observe(self._on_material, names="value")
        self.redraw()

    # -- public ---------------------------------------------------------------------------
    @property
    def scanner(self) -> str | None:
        """The scanner shown."""
        value = self.scanner_select.value
        return None if value is None else str(value)

    @property
    def material(self) -> str | None:
        """The material shown (None: all)."""
        value = self.material_select.value
        return None if value in (None, _ALL) else str(value)

    @property
    def trend(self) -> pd.DataFrame:
        """The trend rows shown (scanner, and material when one is picked)."""
        df = self._frame(self.scanner) if self.scanner is not None else None
        if df is None:
            import pandas as pd

            return pd.DataFrame()
        return df if self.material is None else df[df["material"] == self.material]

    def refresh(self) -> None:
        """Read the history again (after new records) and redraw."""
        self._frames.clear()
        self._fill_materials(self.material)
        self.redraw()

    def redraw(self) -> None:
        """Draw the figure again for the current scanner and material."""
        from noctis_lab.hu._drift import drift_from_trend
        from noctis_lab.hu.history import plot_trend

        self.output.outputs = ()
        self.figure = None
        self._png = b""
        self.drift = []
        if self.scanner is None:
            self.message.value = "<i>No calibrations recorded yet.</i>"
            return
        df = self.trend
        self.drift = drift_from_trend(df)
        alarms = [d for d in self.drift if d.alarm]
        name = self.labels.get(self.scanner, self.scanner)
        if alarms:
            items = "".join(f"<li>{html.escape(d.message)}</li>" for d in alarms)
            steps = sum(d.shape == "step" for d in alarms)
            what = (
                "changed suddenly (a step)"
                if steps == len(alarms)
                else "is drifting"
                if steps == 0
                else "is drifting and changed suddenly (a step)"
            )
            self.message.value = (
                f"<div class='noctis-drift-alarm'><b style='color:{_ALARM}'>⚠ {html.escape(name)} "
                f"{what}</b> ({len(alarms)} of {len(self.drift)} materials)"
                f"<details><summary>details</summary><ul>{items}</ul></details></div>"
            )
        else:
            self.message.value = (
                f"{df['record_id'].nunique()} records of {html.escape(name)}, no drift alarm "
                "(CUSUM, trend and step tests)."
            )
        self.figure = plot_trend(df, title=f"HU trend: {name}")
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=80)
        self._png = buf.getvalue()
        self.output.outputs = (_png_output(self._png),)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, plus the figure as PNG for renderers without widgets (nbconvert)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if self._png and isinstance(bundle, dict):
            bundle["image/png"] = base64.b64encode(self._png).decode("ascii")
        return bundle

    # -- internals --------------------------------------------------------------------------
    def _frame(self, scanner: str) -> pd.DataFrame:
        if scanner not in self._frames:
            self._frames[scanner] = self._history.trend(scanner)
        return self._frames[scanner]

    def _fill_materials(self, material: str | None) -> None:
        mats: list[str] = []
        if self.scanner is not None:
            mats = [str(m) for m in dict.fromkeys(self._frame(self.scanner)["material"])]
        if material is not None and material not in mats:
            raise ValueError(
                f"TrendView: material {material!r} has no records for scanner "
                f"{self.scanner!r}; materials: {', '.join(mats) or 'none'}"
            )
        self._filling = True
        try:
            self.material_select.options = [_ALL, *mats]
            self.material_select.value = material if material is not None else _ALL
        finally:
            self._filling = False

    def _on_scanner(self, change: dict[str, Any]) -> None:
        self._fill_materials(None)
        self.redraw()

    def _on_material(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self.redraw()


def _png_output(png: bytes, html_text: str | None = None) -> dict[str, Any]:
    """A display_data output (what an Output widget holds) with a PNG and optional HTML."""
    data: dict[str, Any] = {
        "image/png": base64.b64encode(png).decode("ascii"),
        "text/plain": "<figure>",
    }
    if html_text is not None:
        data["text/html"] = html_text
    return {"output_type": "display_data", "data": data, "metadata": {}}
