"""The AI performance report: what the report notebook shows, read from MLflow and the AI store.

Per model: :func:`noctis_lab.ai.model_status` (status, metrics with CIs, degradation
by CUSUM, issues), :func:`noctis_lab.ai.metric_history` (trend),
:func:`noctis_lab.ai.analysis_summary` and :func:`noctis_lab.ai.feedback_summary`.
The verdict is the worst model status.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from noctis_lab._errors import ReportError
from noctis_lab.reports._dashboard_data import (
    ai_analyses_frame,
    ai_feedback_frame,
    ai_issues,
    ai_metrics_frame,
    ai_model_names,
    ai_overview_frame,
    ai_trend_figure,
    period_text,
)
from noctis_lab.reports._panels import (
    cover_html,
    message_html,
    safe_call,
    show_figure,
    status_badge,
    status_html,
    styled_table,
)

__all__ = ["AiReport", "check_ai_report"]


def _show_html(text: str) -> None:
    from IPython.display import HTML, display

    display(HTML(text))


def check_ai_report(*, model: str | None = None) -> list[str]:
    """The models the AI report covers; refuses, before any notebook runs, what it cannot show.

    Parameters
    ----------
    model : str, optional
        One registered model; default every model.

    Raises
    ------
    ReportError
        No MLflow store or no registered model, an unknown model, a store that cannot
        be read (a bad or unreachable tracking URI).
    """
    from noctis_lab import _paths

    try:
        names = ai_model_names()
    except ReportError:
        raise
    except Exception as exc:  # MLflow raises its own types for a bad or dead store
        uri = _paths.mlflow_tracking_uri()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReportError(f"cannot read the MLflow store {uri}: {first}") from None
    if model is not None and model not in names:
        raise ReportError(f"no model {model!r} is registered; models: {', '.join(names)}")
    return [model] if model is not None else names


class AiReport:
    """The content of one AI performance report.

    Parameters
    ----------
    model : str, optional
        One registered model; default every model.
    since, until : str, optional
        The period (``YYYY-MM-DD``): evaluation runs and analyses in it.

    Raises
    ------
    ReportError
        When the store is empty or the model is not registered.
    """

    def __init__(
        self, model: str | None = None, since: str | None = None, until: str | None = None
    ) -> None:
        from noctis_lab.ai import model_status

        self.names = check_ai_report(model=model)
        self.since, self.until = since, until
        self.generated_at = datetime.now(UTC)
        end = (
            datetime.combine(date.fromisoformat(until), datetime.max.time(), tzinfo=UTC)
            if until
            else datetime.now(UTC)
        )
        self.now = end
        self.window_days = (
            max(
                1.0,
                (end - datetime.fromisoformat(since).replace(tzinfo=UTC)).total_seconds() / 86400,
            )
            if since
            else 7.0
        )
        self.statuses = [model_status(n, now=end if until else None) for n in self.names]
        self.overview = ai_overview_frame(self.statuses)
        self.verdict = self._verdict()

    def _verdict(self) -> str:
        from noctis_lab.ai._types import worst_status

        return str(worst_status(*[s.status for s in self.statuses]))

    def facts(self) -> dict[str, Any]:
        """Machine-readable facts for ``summary.json``."""
        counts: dict[str, Any] = {"models": len(self.statuses)}
        for s in self.statuses:
            counts[s.status] = counts.get(s.status, 0) + 1
        counts["degradation_alarms"] = sum(1 for s in self.statuses for d in s.drift if d.alarm)
        counts["issues"] = sum(len(s.issues) for s in self.statuses)
        return {
            "verdict": self.verdict,
            "models": self.names,
            "since": self.since,
            "until": self.until,
            "counts": counts,
            "status": {s.name: s.status for s in self.statuses},
        }

    def save_facts(self, path: str | None) -> None:
        """Write :meth:`facts` for the report runner (no-op when ``path`` is None)."""
        from noctis_lab.reports._output import write_facts

        write_facts(path, self.facts())

    def show_cover(self) -> None:
        """The cover: verdict, models, period, time, and the sign-off fields."""
        _show_html(self.cover_html())

    show_header = show_cover

    def cover_html(self) -> str:
        """HTML of :meth:`show_cover`."""
        from noctis_lab import __version__

        models = "".join(
            f"<li>{html.escape(s.name)} v{html.escape(s.version or '?')} "
            f"({html.escape(s.task or '?')}): {status_html(s.status)}</li>"
            for s in self.statuses
        )
        rows = [
            ("Verdict", f"{status_html(self.verdict, '2px 10px')} (worst model status)"),
            ("Models", f"<ul>{models}</ul>"),
            ("Period", html.escape(period_text(self.since, self.until))),
            (
                "Method",
                "Metrics with 95 % bootstrap confidence intervals on each evaluation run; "
                "degradation by CUSUM against the baseline run; clinicians' feedback.",
            ),
            (
                "Generated",
                f"{self.generated_at:%Y-%m-%d %H:%M} UTC by Noctis Lab {html.escape(__version__)}",
            ),
        ]
        return cover_html("AI performance report", rows)

    def show_summary(self) -> None:
        """One row per model: status, headline metric with CI, degradation, usage."""
        _show_html("<h2>Models</h2>" + styled_table(self.overview))

    def show_models(self) -> None:
        """Per model: metrics with CIs, their trend over runs with alarms, the findings."""
        _show_html("<h2>Metrics with confidence intervals, trends and degradation</h2>")
        for s in self.statuses:
            _show_html(
                f"<h3>{html.escape(s.name)} v{html.escape(s.version or '?')} "
                f"({html.escape(s.task or '?')}): "
                f"<span style='{status_badge(s.status)};padding:1px 6px'>"
                f"{html.escape(s.status)}</span></h3>"
            )
            frame, err = safe_call(partial(ai_metrics_frame, s), "metrics")
            if err:
                _show_html(message_html(err, "error"))
            elif len(frame):
                _show_html(styled_table(frame.drop(columns=["Value", "CI low", "CI high"])))
            else:
                _show_html(message_html("No evaluation run yet.", "empty"))
            fig, err = safe_call(
                partial(ai_trend_figure, s.name, s, since=self.since, until=self.until),
                "metric trend",
            )
            if err:
                _show_html(message_html(err, "empty"))
            else:
                show_figure(fig)
            items = "".join(
                f"<li><b>{html.escape(sev)}</b>: {html.escape(msg)}</li>"
                for sev, msg in ai_issues(s)
            )
            _show_html(f"<p><b>Findings</b></p><ul>{items or '<li>none</li>'}</ul>")

    def show_usage(self) -> None:
        """Per model: recent analyses (success rate, processing time) and feedback."""
        first = "<h2>Recent analyses and feedback</h2>"
        for name in self.names:
            _show_html(f"{first}<h3>{html.escape(name)}</h3>")
            first = ""
            for what, fn in (
                ("analyses", partial(ai_analyses_frame, name, self.window_days, now=self.now)),
                ("feedback", partial(ai_feedback_frame, name)),
            ):
                frame, err = safe_call(fn, what)
                _show_html(message_html(err, "error") if err else styled_table(frame))
