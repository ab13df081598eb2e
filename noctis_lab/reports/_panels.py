"""Safe rendering of dashboard and report panels: a failure is a message, not a traceback."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

from noctis_lab._errors import NoctisError

__all__ = [
    "figure_image",
    "message_html",
    "render_into",
    "safe_call",
    "show_figure",
    "status_badge",
    "styled_table",
]

_LOG = logging.getLogger("noctis_lab.reports")

_COLOURS = {
    "pass": ("#1b5e20", "#e8f5e9"),
    "ok": ("#1b5e20", "#e8f5e9"),
    "healthy": ("#1b5e20", "#e8f5e9"),
    "warning": ("#7a4f01", "#fff8e1"),
    "degraded": ("#7a4f01", "#fff8e1"),
    "fail": ("#b71c1c", "#ffebee"),
    "failing": ("#b71c1c", "#ffebee"),
    "error": ("#b71c1c", "#ffebee"),
}
_LEVELS = {
    "info": ("#0d47a1", "#e3f2fd", "ℹ"),
    "empty": ("#37474f", "#eceff1", "∅"),
    "error": ("#b71c1c", "#ffebee", "⚠"),
}


def message_html(text: str, level: str = "info", title: str | None = None) -> str:
    """A coloured message box (escaped text); ``level``: info, empty or error."""
    fg, bg, icon = _LEVELS.get(level, _LEVELS["info"])
    head = f"<b>{html.escape(title)}</b><br>" if title else ""
    return (
        f'<div class="noctis-msg noctis-msg-{html.escape(level)}" style="color:{fg};'
        f"background:{bg};border-left:4px solid {fg};padding:8px 12px;margin:6px 0;"
        f'border-radius:3px">{icon} {head}{html.escape(text)}</div>'
    )


def status_badge(status: object) -> str:
    """CSS for a status cell (used with ``Styler.map``)."""
    fg, bg = _COLOURS.get(str(status).lower(), ("inherit", "transparent"))
    return f"color:{fg};background-color:{bg};font-weight:600"


def styled_table(frame: Any, status_columns: tuple[str, ...] = ("Status",)) -> str:
    """HTML of a display frame with status cells coloured and user text escaped."""
    cols = [c for c in status_columns if c in frame.columns]
    styler = frame.style.hide(axis="index").format(na_rep="—", precision=2, escape="html")
    if cols:
        styler = styler.map(status_badge, subset=cols)
    styler = styler.set_table_attributes('class="noctis-table"').set_table_styles(
        [
            {"selector": "th", "props": "text-align:left;padding:4px 10px"},
            {"selector": "td", "props": "padding:3px 10px;text-align:left"},
        ]
    )
    return str(styler.to_html())


def safe_call(fn: Callable[[], Any], what: str) -> tuple[Any, str | None]:
    """``(fn(), None)``, or ``(None, message)`` when ``fn`` raises.

    A :class:`~noctis_lab.NoctisError` gives its own message; any other exception
    gives its type and text; its traceback goes to the ``noctis_lab.reports`` logger at
    DEBUG level only (a warning-level log would be captured by the ``Output`` widget the
    panel renders into, and so reach the page).
    """
    try:
        return fn(), None
    except NoctisError as exc:
        return None, f"{what}: {exc}"
    except Exception as exc:
        _LOG.debug("panel %r failed", what, exc_info=True)
        return None, f"{what} could not be shown ({type(exc).__name__}: {exc})"


def render_into(output: Any, fn: Callable[[], None], what: str) -> bool:
    """Clear the ``ipywidgets.Output`` and run ``fn`` inside it; a failure shows a message.

    Returns True when ``fn`` succeeded.
    """
    from IPython.display import HTML, display

    output.clear_output(wait=True)
    with output:
        _, err = safe_call(fn, what)
        if err is not None:
            display(HTML(message_html(err, "error")))
            return False
    return True


def figure_image(fig: Any, dpi: int = 90) -> Any:
    """A matplotlib figure as an ``IPython.display.Image`` (PNG); the figure is closed.

    Rendering to PNG ourselves works the same in JupyterLab, Voila and papermill,
    whatever the matplotlib backend and whether pyplot was ever imported.
    """
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # a Figure made without pyplot is not registered there
        pass
    return Image(data=buf.getvalue(), format="png")


def show_figure(fig: Any, dpi: int = 90) -> None:
    """Display a matplotlib figure as PNG (see :func:`figure_image`)."""
    from IPython.display import display

    display(figure_image(fig, dpi))
