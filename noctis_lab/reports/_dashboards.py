"""The Voila dashboards as ipywidgets apps: HU calibration and AI models.

Each panel renders through :func:`~noctis_lab.reports._panels.render_into`, so a
broken record or a failing store shows a message in that panel and the rest of
the page still works; the Refresh button re-reads the stores without restarting
the kernel. The data come from :mod:`noctis_lab.reports._dashboard_data`, the
trend from :class:`noctis_lab.widgets.TrendView`.
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import partial
from typing import Any

import ipywidgets as w

from noctis_lab.quality import PALETTE, Status
from noctis_lab.reports._dashboard_data import (
    EMPTY_AI,
    EMPTY_HU,
    ai_analyses_frame,
    ai_feedback_frame,
    ai_issues,
    ai_metrics_frame,
    ai_model_names,
    ai_overview_frame,
    ai_recent_analyses,
    ai_trend_figure,
    hu_checks_frame,
    hu_overview_frame,
    hu_recommendations,
    hu_slice_figure,
    open_history,
)
from noctis_lab.reports._panels import (
    message_html,
    render_into,
    safe_call,
    show_figure,
    status_badge,
    status_html,
    styled_table,
)
from noctis_lab.reports._records_badge import records_badge, records_badge_html
from noctis_lab.reports._thresholds_panel import ThresholdsPanel

#: Alarms (drift, overdue) in the text colour of a failure.
_ALARM = PALETTE[Status.FAIL].fg

__all__ = ["AiDashboard", "HuDashboard"]


def _display_html(text: str) -> None:
    from IPython.display import HTML, display

    display(HTML(text))


def _output(cls: str) -> w.Output:
    out = w.Output()
    out.add_class(cls)
    return out


def _header(title: str) -> tuple[w.HBox, w.Button, w.HTML, w.HTML]:
    """Title, Refresh button, read-at stamp and the record-chain badge."""
    button = w.Button(description="Refresh", tooltip="Read the stores again")
    button.add_class("noctis-refresh")
    stamp = w.HTML()
    stamp.add_class("noctis-stamp")
    chain = w.HTML()
    chain.add_class("noctis-records")
    head = w.HBox(
        [w.HTML(f"<h2 style='margin:0 16px 0 0'>{html.escape(title)}</h2>"), button, stamp, chain],
        layout=w.Layout(align_items="center", flex_flow="row wrap"),
    )
    return head, button, stamp, chain


def _stamp(label: w.HTML, n: int) -> None:
    label.value = (
        f"<span style='color:#607d8b;margin-left:12px'>read {datetime.now():%Y-%m-%d %H:%M:%S}"
        f" (refresh #{n})</span>"
    )


def _show_records(label: w.HTML) -> None:
    """Verify the record chains and show the verdict in the header's badge."""
    badge, err = safe_call(records_badge, "record chain check")
    label.value = (
        records_badge_html(badge) if badge is not None else message_html(str(err), "error")
    )


#: Columns of the scanner table: (title, CSS width).
_HU_COLUMNS = (
    ("Station", "minmax(110px, 1fr)"),
    ("Scanner", "minmax(200px, 2fr)"),
    ("Status", "110px"),
    ("Last calibration", "110px"),
    ("Days since", "70px"),
    ("Overdue", "80px"),
    ("Drift alarm", "minmax(220px, 3fr)"),
    ("Records", "64px"),
    ("Review", "110px"),
)


class HuDashboard(w.VBox):  # type: ignore[misc]  # ipywidgets has no type information: VBox is Any
    """Every scanner's latest status, its trend per material, latest slice and advice.

    The scanner table is clickable: a click on a scanner opens its trend, latest
    annotated slice and recommendations (so does the trend's drop-down). Scanners
    are named by station everywhere (``station — manufacturer model (serial)``).
    """

    def __init__(self) -> None:
        head, self.refresh_button, self.stamp, self.records = _header("HU calibration")
        self.message = w.HTML()
        self.message.add_class("noctis-message")
        self.overview = w.GridBox(layout=w.Layout(width="100%"))
        self.overview.add_class("noctis-hu-overview")
        self.row_buttons: dict[str, w.Button] = {}
        self.labels: dict[str, str] = {}
        self.trend_box = w.VBox()
        self.trend_box.add_class("noctis-hu-trend")
        self.caption = w.HTML()
        self.caption.add_class("noctis-hu-caption")
        self.slice_out = _output("noctis-hu-slice")
        self.advice = _output("noctis-hu-advice")
        self.trend: Any = None
        self.n_refresh = 0
        super().__init__(
            [
                head,
                self.message,
                w.HTML(
                    "<h3>Scanners <small style='color:#607d8b'>(click one to open it)</small></h3>"
                ),
                self.overview,
                self.caption,
                w.HBox(
                    [self.slice_out, self.advice],
                    layout=w.Layout(align_items="flex-start", flex_flow="row wrap"),
                ),
                w.HTML("<h3>Trend per material</h3>"),
                self.trend_box,
            ]
        )
        self.add_class("noctis-hu-dashboard")
        self.refresh_button.on_click(lambda _: self.safe_refresh())
        self.safe_refresh()

    def safe_refresh(self) -> None:
        """:meth:`refresh`, with any failure shown as a message at the top."""
        _, err = safe_call(self.refresh, "the dashboard")
        if err is not None:
            self.message.value = message_html(err, "error")

    @property
    def scanner(self) -> str | None:
        """The scanner selected (its key)."""
        return None if self.trend is None else self.trend.scanner

    def select(self, key: str) -> None:
        """Open a scanner: its trend, latest slice and advice (what a row click does)."""
        if self.trend is None or key not in self.labels:
            return
        if self.trend.scanner != key:
            self.trend.scanner_select.value = key  # redraws through the observers
        else:
            self.show_scanner()

    def refresh(self) -> None:
        """Read the calibration history again and redraw every panel."""
        self.n_refresh += 1
        _stamp(self.stamp, self.n_refresh)
        _show_records(self.records)
        self.message.value = ""
        history, err = safe_call(open_history, "calibration history")
        frame = None
        if err is None:
            frame, err = safe_call(lambda: hu_overview_frame(history), "scanner overview")
        if err is not None or frame is None or frame.empty:
            level = "empty" if err is None or EMPTY_HU in err else "error"
            self.message.value = message_html(err or EMPTY_HU, level)
            for out in (self.slice_out, self.advice):
                out.clear_output()
            self.overview.children = ()
            self.trend_box.children = ()
            self.caption.value = ""
            return
        self.labels = dict(zip(frame["Key"].astype(str), frame["Scanner"].astype(str), strict=True))
        self._fill_overview(frame)
        self._refresh_trend(history, list(self.labels))
        self.show_scanner()

    def _fill_overview(self, frame: Any) -> None:
        cells: list[w.Widget] = []
        for title, _ in _HU_COLUMNS:
            cell = w.HTML(f"<b>{html.escape(title)}</b>")
            cell.add_class("noctis-hu-head")
            cells.append(cell)
        self.row_buttons = {}
        for _, row in frame.iterrows():
            key = str(row["Key"])
            station, _, model = str(row["Scanner"]).partition(" — ")
            button = w.Button(
                description=station,
                tooltip=f"Open {row['Scanner']}: trend, latest slice, recommendations",
                layout=w.Layout(width="auto", justify_content="flex-start"),
            )
            button.add_class("noctis-scanner-row")
            button.on_click(lambda _, k=key: self.select(k))
            self.row_buttons[key] = button
            drift = str(row["Drift alarm"])
            drift_html = (
                f"<span style='color:{_ALARM};font-weight:600'>{html.escape(drift)}</span>"
                if drift != "none"
                else "none"
            )
            values = [
                html.escape(model),
                status_html(row["Status"]),
                html.escape(str(row["Last calibration"])),
                html.escape(str(row["Days since"])),
                f"<b style='color:{_ALARM}'>OVERDUE</b>" if row["Overdue"] else "",
                drift_html,
                html.escape(str(row["Records"])),
                html.escape(str(row["Review"])),
            ]
            cells.append(button)
            cells.extend(w.HTML(v) for v in values)
        self.overview.layout.grid_template_columns = " ".join(c for _, c in _HU_COLUMNS)
        self.overview.layout.grid_gap = "2px 10px"
        self.overview.layout.align_items = "center"
        self.overview.children = tuple(cells)
        self._mark_selected()

    def _mark_selected(self) -> None:
        for key, button in self.row_buttons.items():
            button.button_style = "info" if key == self.scanner else ""

    def _refresh_trend(self, history: Any, keys: list[str]) -> None:
        from noctis_lab.widgets import TrendView

        if self.trend is None:
            trend, err = safe_call(lambda: TrendView(history=history), "trend")
            if err is not None:
                self.trend_box.children = (w.HTML(message_html(err, "error")),)
                return
            self.trend = trend
            self.trend.scanner_select.observe(lambda _: self.show_scanner(), names="value")
            self.trend_box.children = (self.trend,)
            return
        current = self.trend.scanner
        options = [(self.labels.get(k, k), k) for k in keys]
        if list(self.trend.scanner_select.options) != options:
            self.trend.scanner_select.options = options
            target = current if current in keys else keys[0]
            if self.trend.scanner != target:
                self.trend.scanner_select.value = target
        _, err = safe_call(self.trend.refresh, "trend")
        if err is not None:
            self.trend_box.children = (self.trend, w.HTML(message_html(err, "error")))

    def show_scanner(self) -> None:
        """Draw the latest slice and the recommendations of the selected scanner."""
        key = self.scanner
        if key is None:
            return
        self._mark_selected()
        name = self.labels.get(key, key)
        rec, err = safe_call(lambda: open_history().latest(key), f"latest calibration of {name}")
        if err is not None:
            self.caption.value = message_html(err, "error")
            self.slice_out.clear_output()
            self.advice.clear_output()
            return
        self.caption.value = (
            f"<h3>Latest calibration of {html.escape(name)}: #{rec.id} on "
            f"{rec.time:%Y-%m-%d} — {status_html(rec.status)}</h3>"
        )
        render_into(self.slice_out, lambda: show_figure(hu_slice_figure(rec)), "annotated slice")

        def advice() -> None:
            items = "".join(f"<li>{html.escape(t)}</li>" for t in hu_recommendations(rec))
            _display_html(f"<h4>Recommendations</h4><ul>{items}</ul>")
            checks = hu_checks_frame(rec)
            bad = checks[checks["Status"] != "pass"] if "Status" in checks else checks
            if len(bad):
                _display_html("<h4>Checks not passed</h4>" + styled_table(bad))

        render_into(self.advice, advice, "recommendations")


class AiDashboard(w.VBox):  # type: ignore[misc]  # ipywidgets has no type information: VBox is Any
    """Every model's status, metrics with CIs, trends, analyses, feedback, and a feedback form."""

    def __init__(self, window_days: float = 7.0) -> None:
        head, self.refresh_button, self.stamp, self.records = _header("AI models")
        self.window_days = window_days
        self.message = w.HTML()
        self.message.add_class("noctis-message")
        self.overview = _output("noctis-ai-overview")
        self.model_select = w.Dropdown(description="Model", layout=w.Layout(width="360px"))
        self.model_select.add_class("noctis-ai-model")
        self.metrics = _output("noctis-ai-metrics")
        self.findings = _output("noctis-ai-findings")
        self.trend = _output("noctis-ai-trend")
        self.usage = _output("noctis-ai-usage")
        self.analysis_select = w.Dropdown(description="Result", layout=w.Layout(width="520px"))
        self.analysis_select.add_class("noctis-fb-analysis")
        self.verdict = w.Dropdown(
            options=[
                ("agree", "agree"),
                ("false positive", "false_positive"),
                ("false negative", "false_negative"),
            ],
            description="Verdict",
        )
        self.verdict.add_class("noctis-fb-verdict")
        self.rating = w.Dropdown(
            options=[("—", 0), *[(str(i), i) for i in range(1, 6)]], description="Rating"
        )
        self.user = w.Text(description="Your name", placeholder="e.g. Dr A. Clinician")
        self.user.add_class("noctis-fb-user")
        self.comment = w.Textarea(description="Comment", layout=w.Layout(width="520px"))
        self.comment.add_class("noctis-fb-comment")
        self.submit = w.Button(description="Send feedback", button_style="primary")
        self.submit.add_class("noctis-fb-submit")
        self.submit_result = w.HTML()
        self.submit_result.add_class("noctis-fb-result")
        self._statuses: dict[str, Any] = {}
        self.n_refresh = 0
        self.thresholds = ThresholdsPanel(on_change=lambda _: self.safe_refresh())
        thresholds = w.Accordion(children=[self.thresholds], titles=("Status thresholds",))
        thresholds.selected_index = None
        form = w.VBox(
            [
                w.HTML("<h3>Leave feedback on a result</h3>"),
                self.analysis_select,
                w.HBox([self.verdict, self.rating]),
                self.user,
                self.comment,
                self.submit,
                self.submit_result,
            ]
        )
        form.add_class("noctis-ai-feedback-form")
        super().__init__(
            [
                head,
                self.message,
                w.HTML("<h3>Models</h3>"),
                self.overview,
                thresholds,
                self.model_select,
                w.HBox([self.metrics, self.findings], layout=w.Layout(flex_flow="row wrap")),
                self.trend,
                self.usage,
                form,
            ]
        )
        self.add_class("noctis-ai-dashboard")
        self.refresh_button.on_click(lambda _: self.safe_refresh())
        self.model_select.observe(lambda _: self.show_model(), names="value")
        self.submit.on_click(lambda _: self.send_feedback())
        self.safe_refresh()

    def safe_refresh(self) -> None:
        """:meth:`refresh`, with any failure shown as a message at the top."""
        _, err = safe_call(self.refresh, "the dashboard")
        if err is not None:
            self.message.value = message_html(err, "error")

    @property
    def model(self) -> str | None:
        """The model selected."""
        v = self.model_select.value
        return None if v is None else str(v)

    def refresh(self) -> None:
        """Read MLflow and the analyses store again and redraw every panel."""
        from noctis_lab.ai import model_status

        self.n_refresh += 1
        _stamp(self.stamp, self.n_refresh)
        _show_records(self.records)
        self.message.value = ""
        names, err = safe_call(ai_model_names, "AI models")
        if err is not None:
            level = "empty" if EMPTY_AI in err else "error"
            self.message.value = message_html(err, level)
            for out in (self.overview, self.metrics, self.findings, self.trend, self.usage):
                out.clear_output()
            self.model_select.options = []
            return
        statuses = []
        problems = []
        for name in names:
            judge = partial(model_status, name, thresholds=self.thresholds.current)
            st, e = safe_call(judge, f"status of {name}")
            if e is None:
                statuses.append(st)
            else:
                problems.append(e)
        self._statuses = {s.name: s for s in statuses}

        def overview() -> None:
            _display_html(styled_table(ai_overview_frame(statuses)))
            for p in problems:
                _display_html(message_html(p, "error"))

        render_into(self.overview, overview, "model overview")
        current = self.model
        if list(self.model_select.options) != names:
            self.model_select.options = names
        target = current if current in names else names[0]
        if self.model != target:
            self.model_select.value = target  # redraws through the observer
        else:
            self.show_model()

    def show_model(self) -> None:
        """Draw the panels of the selected model."""
        name = self.model
        if name is None:
            return
        status = self._statuses.get(name)
        if status is None:
            self.metrics.clear_output()
            with self.metrics:
                _display_html(message_html(f"the status of {name} could not be read", "error"))
            return

        def metrics() -> None:
            frame = ai_metrics_frame(status)
            _display_html(
                f"<h4>{html.escape(name)} v{html.escape(status.version or '?')}: "
                f"<span style='{status_badge(status.status)};padding:1px 6px'>"
                f"{html.escape(status.status)}</span></h4>"
            )
            if len(frame):
                _display_html(styled_table(frame.drop(columns=["Value", "CI low", "CI high"])))
            else:
                _display_html(message_html("No evaluation run yet.", "empty"))

        def findings() -> None:
            items = "".join(
                f"<li><b>{html.escape(s)}</b>: {html.escape(m)}</li>" for s, m in ai_issues(status)
            )
            _display_html(f"<h4>Findings</h4><ul>{items or '<li>none</li>'}</ul>")

        render_into(self.metrics, metrics, "metrics")
        render_into(self.findings, findings, "findings")
        render_into(self.trend, lambda: show_figure(ai_trend_figure(name, status)), "trend")
        self._show_usage(name)
        self._fill_analyses(name)

    def _show_usage(self, name: str) -> None:
        def usage() -> None:
            _display_html("<h4>Recent analyses</h4>")
            _display_html(styled_table(ai_analyses_frame(name, self.window_days)))
            _display_html("<h4>Feedback</h4>")
            _display_html(styled_table(ai_feedback_frame(name)))

        render_into(self.usage, usage, "analyses and feedback")

    def _fill_analyses(self, name: str) -> None:
        recent, err = safe_call(lambda: ai_recent_analyses(name), "recent analyses")
        if err is not None or recent is None or not len(recent):
            self.analysis_select.options = []
            return
        options = [
            (
                f"#{int(r['id'])} · study …{str(r['study_uid'])[-12:]} · {r['status']} · "
                f"v{r['model_version']}",
                (int(r["id"]), str(r["model_version"])),
            )
            for _, r in recent.iterrows()
        ]
        self.analysis_select.options = options
        self.analysis_select.value = options[0][1]

    def send_feedback(self) -> int | None:
        """Store the form's feedback with :func:`noctis_lab.ai.record_feedback`."""
        from noctis_lab.ai import record_feedback

        name = self.model
        choice = self.analysis_select.value
        if name is None or choice is None:
            self.submit_result.value = message_html("Pick a model and a result first.", "error")
            return None
        analysis_id, version = choice
        rating = int(self.rating.value) or None
        fid, err = safe_call(
            lambda: record_feedback(
                name,
                version,
                self.verdict.value,
                rating=rating,
                comment=self.comment.value.strip(),
                analysis_id=analysis_id,
                user=self.user.value.strip(),
            ),
            "feedback",
        )
        if err is not None:
            self.submit_result.value = message_html(err, "error")
            return None
        self.submit_result.value = message_html(
            f"Thank you: feedback #{fid} on result #{analysis_id} of {name} is stored.", "info"
        )
        self.comment.value = ""
        self._show_usage(name)
        return int(fid)
