"""Safe rendering of dashboard and report panels: a failure is a message, not a traceback."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

from noctis_lab._errors import NoctisError
from noctis_lab.quality import PALETTE, Status, badge_css, swatch

__all__ = [
    "cover_html",
    "figure_html",
    "figure_image",
    "message_html",
    "render_into",
    "safe_call",
    "show_figure",
    "status_badge",
    "status_html",
    "status_text",
    "styled_table",
]

_LOG = logging.getLogger("noctis_lab.reports")

_LEVELS = {
    "info": ("#0d47a1", "#e3f2fd", "ℹ"),
    "empty": ("#37474f", "#eceff1", "∅"),
}


def _level_style(level: str) -> tuple[str, str, str]:
    """Text colour, background and icon of a message box; ``error`` in the palette's red."""
    if level == "error":
        sw = PALETTE[Status.ERROR]
        return sw.fg, sw.bg, "⚠"
    return _LEVELS.get(level, _LEVELS["info"])


def message_html(text: str, level: str = "info", title: str | None = None) -> str:
    """A coloured message box (escaped text); ``level``: info, empty or error."""
    fg, bg, icon = _level_style(level)
    head = f"<b>{html.escape(title)}</b><br>" if title else ""
    return (
        f'<div class="noctis-msg noctis-msg-{html.escape(level)}" style="color:{fg};'
        f"background:{bg};border-left:4px solid {fg};padding:8px 12px;margin:6px 0;"
        f'border-radius:3px">{icon} {head}{html.escape(text)}</div>'
    )


def status_badge(status: object) -> str:
    """CSS for a status cell (used with ``Styler.map``): the one palette's colours.

    A status given as member, value or label (``"needs review"``) is coloured; any
    other value is not.
    """
    return badge_css(status)


def status_text(status: object) -> str:
    """A status as a reader sees it: ``review`` reads "needs review"; other text as is."""
    sw = swatch(status)
    return str(status) if sw is None else Status.parse(status).label


def _css_name(status: object) -> str:
    """The status's value for a CSS class (a label such as "needs review" gives ``review``)."""
    return str(status) if swatch(status) is None else Status.parse(status).value


def status_html(status: object, pad: str = "1px 6px") -> str:
    """A coloured badge for a status (escaped)."""
    return (
        f"<span class='noctis-status noctis-status-{html.escape(_css_name(status))}' "
        f"style='{status_badge(status)};padding:{pad}'>{html.escape(status_text(status))}</span>"
    )


def styled_table(frame: Any, status_columns: tuple[str, ...] = ("Status",)) -> str:
    """HTML of a display frame with status cells coloured and user text escaped.

    Status values are shown in words (``review`` reads "needs review").
    """
    cols = [c for c in status_columns if c in frame.columns]
    if cols:
        frame = frame.copy()
        for c in cols:
            frame[c] = frame[c].map(status_text)
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


def figure_html(fig: Any, dpi: int = 90, alt: str = "") -> str:
    """A matplotlib figure as an ``<img>`` with the PNG embedded (the figure is closed).

    Used where a heading and its figure must stay together (one HTML output).
    """
    import base64

    data = base64.b64encode(figure_image(fig, dpi).data).decode("ascii")
    return (
        f'<img class="noctis-figure" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}" style="max-width:100%;height:auto">'
    )


def show_figure(fig: Any, dpi: int = 90) -> None:
    """Display a matplotlib figure as PNG (see :func:`figure_image`)."""
    from IPython.display import display

    display(figure_image(fig, dpi))


def cover_html(title: str, facts: list[tuple[str, str]], extra: str = "") -> str:
    """A report's cover: title, a facts table (values are HTML) and the sign-off fields.

    The sign-off is what a physicist fills in and signs on the printed report.
    """
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in facts)
    blank = "<td class='noctis-blank'>&nbsp;</td>"
    return (
        "<section class='noctis-cover'>"
        f"<h1>{html.escape(title)}</h1>"
        f"<table class='noctis-facts'>{rows}</table>"
        "<h2>Review and sign-off</h2>"
        "<p>I have reviewed the content of this report.</p>"
        "<table class='noctis-signoff'>"
        f"<tr><th>Reviewed by (name, role)</th>{blank}</tr>"
        "<tr><th>Decision</th><td>&#9744; accepted &nbsp; &#9744; accepted with actions "
        "&nbsp; &#9744; not accepted</td></tr>"
        f"<tr><th>Actions / comments</th>{blank}</tr>"
        f"<tr><th>Date</th>{blank}</tr>"
        f"<tr><th>Signature</th>{blank}</tr>"
        "</table>"
        f"{extra}"
        "</section>"
    )
