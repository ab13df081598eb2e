"""The AI dashboard's status thresholds: edited in the page, or read from a file.

The same :class:`noctis_lab.ai.StatusThresholds` as ``ai check --thresholds FILE`` and
``ai status --thresholds FILE``: what the dashboard shows is judged by the thresholds
shown beside it, and an invalid set is refused with the reason (the last valid set stays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from noctis_lab.reports._panels import message_html

__all__ = ["ThresholdsPanel"]

#: The thresholds a clinician or physicist tunes in the page (field, label).
EDITABLE: tuple[tuple[str, str], ...] = (
    ("metric_excellent", "Metric: excellent ≥"),
    ("metric_good", "Metric: good ≥"),
    ("metric_warning", "Metric: warning ≥"),
    ("success_excellent", "Success: excellent ≥"),
    ("success_good", "Success: good ≥"),
    ("success_warning", "Success: warning ≥"),
    ("drift_z", "Degradation z >"),
    ("window_days", "Window (days)"),
)


class ThresholdsPanel(w.VBox):  # type: ignore[misc]  # ipywidgets has no type information: VBox is Any
    """Edit or load the status thresholds; ``on_change(thresholds)`` when a new set applies."""

    def __init__(self, on_change: Callable[[Any], None]) -> None:
        from noctis_lab.ai import StatusThresholds

        self.current = StatusThresholds()
        self._on_change = on_change
        self.inputs = {
            field: w.FloatText(
                value=float(getattr(self.current, field)),
                description=label,
                style={"description_width": "150px"},
                layout=w.Layout(width="260px"),
            )
            for field, label in EDITABLE
        }
        for field, box in self.inputs.items():
            box.add_class(f"noctis-th-{field.replace('_', '-')}")
        self.path = w.Text(description="From file", placeholder="thresholds.toml or .json")
        self.apply_button = w.Button(description="Apply", button_style="primary")
        self.apply_button.add_class("noctis-th-apply")
        self.load_button = w.Button(description="Load file")
        self.defaults_button = w.Button(description="Defaults")
        self.result = w.HTML()
        self.result.add_class("noctis-th-result")
        grid = w.GridBox(
            list(self.inputs.values()),
            layout=w.Layout(grid_template_columns="repeat(3, 270px)"),
        )
        super().__init__(
            [
                grid,
                w.HBox([self.apply_button, self.defaults_button]),
                w.HBox([self.path, self.load_button]),
                self.result,
            ]
        )
        self.add_class("noctis-ai-thresholds")
        self.apply_button.on_click(lambda _: self.apply())
        self.load_button.on_click(lambda _: self.load(self.path.value))
        self.defaults_button.on_click(lambda _: self._use(StatusThresholds(), "the defaults"))

    def apply(self) -> bool:
        """Judge with the values in the page; False (and the reason shown) when invalid."""
        from pydantic import ValidationError

        from noctis_lab.ai import StatusThresholds

        values = {field: box.value for field, box in self.inputs.items()}
        try:
            thresholds = StatusThresholds(**{**self.current.model_dump(), **values})
        except (ValidationError, ValueError) as exc:
            self.result.value = message_html(f"thresholds not applied: {_reason(exc)}", "error")
            return False
        return self._use(thresholds, "the values above")

    def load(self, path: str) -> bool:
        """Judge with the thresholds of a JSON or TOML file (any subset of the fields)."""
        from noctis_lab._errors import NoctisError
        from noctis_lab.ai import StatusThresholds

        if not path.strip():
            self.result.value = message_html("thresholds not loaded: give a file", "error")
            return False
        try:
            thresholds = StatusThresholds.from_file(path.strip())
        except NoctisError as exc:
            self.result.value = message_html(f"thresholds not loaded: {exc}", "error")
            return False
        return self._use(thresholds, path.strip())

    def _use(self, thresholds: Any, source: str) -> bool:
        self.current = thresholds
        for field, box in self.inputs.items():
            box.value = float(getattr(thresholds, field))
        self.result.value = message_html(f"status judged with {source}", "info")
        self._on_change(thresholds)
        return True


def _reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for e in errors():
            where = ".".join(str(p) for p in e.get("loc", ())) or "thresholds"
            parts.append(f"{where}: {str(e.get('msg', '')).removeprefix('Value error, ')}")
        return "; ".join(parts)
    return str(exc)
