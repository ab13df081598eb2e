"""The HU QA report: what the report notebook shows, read from the calibration history.

One calibration (``calibration=``), or every current calibration of one scanner (or
of every scanner) in a period. The verdict is the worst status of the latest
calibration of each scanner covered (or of the one calibration); statuses, checks,
drift and recommendations are the analysis' and the history's own.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from noctis_lab._errors import HistoryError, ReportError
from noctis_lab.reports._dashboard_data import (
    EMPTY_HU,
    hu_checks_frame,
    hu_overview_frame,
    hu_recommendations,
    hu_slice_figure,
    open_history,
    period_text,
    resolve_scanner,
    scanner_label,
    status_counts,
)
from noctis_lab.reports._panels import message_html, safe_call, styled_table
from noctis_lab.reports._panels import show_figure as _show_figure

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from noctis_lab.hu.history import CalibrationHistory, HistoryRecord

__all__ = ["HuReport"]


def _show(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def _html(text: str) -> Any:
    from IPython.display import HTML

    return HTML(text)


class HuReport:
    """The content of one HU QA report.

    Parameters
    ----------
    scanner : str, optional
        One scanner (key, serial or station); default every scanner.
    since, until : str, optional
        The period, ``YYYY-MM-DD`` (inclusive).
    calibration : str or int, optional
        One calibration record id instead of a scanner and period.
    history : CalibrationHistory, optional
        Default: the project's history.

    Raises
    ------
    ReportError
        When the history is empty, the scanner or calibration unknown, or the period
        holds no calibration.
    """

    def __init__(
        self,
        scanner: str | None = None,
        since: str | None = None,
        until: str | None = None,
        calibration: str | int | None = None,
        history: CalibrationHistory | None = None,
    ) -> None:
        self.history = history if history is not None else open_history()
        self.since, self.until = since, until
        self.generated_at = datetime.now(UTC)
        overview = self.history.scanners(drift=False)
        if overview.empty:
            raise ReportError(f"the HU report has nothing to show: {EMPTY_HU}")
        self.records: pd.DataFrame
        if calibration is not None:
            try:
                rid = int(calibration)
            except ValueError:
                raise ReportError(
                    f"--calibration {calibration!r} is not a record id (a whole number)"
                ) from None
            try:
                rec = self.history.get(rid)
            except HistoryError as exc:
                raise ReportError(f"no calibration #{rid}: {exc}") from None
            self.scanner_keys: list[str] = [rec.scanner]
            recs = self.history.records(scanner=rec.scanner)
            self.records = recs[recs["id"] == rid]
            self.latest: dict[str, HistoryRecord] = {rec.scanner: rec}
            self.since = self.until = rec.time.date().isoformat()
        else:
            keys = (
                [resolve_scanner(self.history, scanner)]
                if scanner is not None
                else [str(k) for k in overview["scanner"]]
            )
            end = f"{until}T23:59:59" if until is not None and len(str(until)) == 10 else until
            recs = self.history.records(since=since, until=end, current_only=True)
            self.records = recs[recs["scanner"].isin(keys)]
            if self.records.empty:
                raise ReportError(
                    f"no calibration of {scanner or 'any scanner'} in "
                    f"{period_text(since, until)} in the history {self.history.url}"
                )
            self.scanner_keys = [k for k in keys if k in set(self.records["scanner"])]
            self.latest = {}
            for key in self.scanner_keys:
                last_id = int(self.records[self.records["scanner"] == key]["id"].iloc[-1])
                self.latest[key] = self.history.get(last_id)
        self.overview = hu_overview_frame(self.history)
        self.overview = self.overview[self.overview["Key"].isin(self.scanner_keys)]
        self.verdict = self._verdict()

    # -- facts ------------------------------------------------------------------------
    def _verdict(self) -> str:
        from noctis_lab.hu._result import worst_status

        return str(worst_status(r.status for r in self.latest.values()))

    def facts(self) -> dict[str, Any]:
        """Machine-readable facts for ``summary.json``."""
        counts: dict[str, Any] = {"calibrations": len(self.records)}
        counts.update(status_counts(list(self.records["status"])))
        counts["failed_checks"] = sum(len(r.result.failed_checks) for r in self.latest.values())
        counts["overdue"] = int((self.overview["Overdue"] != "").sum())
        counts["drift_alarms"] = int((self.overview["Drift alarm"] != "none").sum())
        return {
            "verdict": self.verdict,
            "scanners": self.scanner_keys,
            "since": self.since,
            "until": self.until,
            "counts": counts,
            "latest": {k: {"record": r.id, "status": r.status} for k, r in self.latest.items()},
        }

    def save_facts(self, path: str | None) -> None:
        """Write :meth:`facts` for the report runner (no-op when ``path`` is None)."""
        from noctis_lab.reports._runner import write_facts

        write_facts(path, self.facts())

    # -- sections ---------------------------------------------------------------------
    def show_header(self) -> None:
        """Title block: verdict, scanners, period, store and time."""
        from noctis_lab.reports._panels import status_badge

        names = ", ".join(
            scanner_label(self.overview[self.overview["Key"] == k].iloc[0])
            for k in self.scanner_keys
        )
        _show(
            _html(
                f"<h2>HU QA report — verdict: <span style='{status_badge(self.verdict)};"
                f"padding:2px 8px'>{html.escape(self.verdict.upper())}</span></h2>"
                f"<p><b>Scanners:</b> {html.escape(names)}<br>"
                f"<b>Period:</b> {html.escape(period_text(self.since, self.until))} "
                f"({len(self.records)} calibrations)<br>"
                f"<b>History:</b> {html.escape(self.history.url)}<br>"
                f"<b>Generated:</b> {self.generated_at:%Y-%m-%d %H:%M} UTC</p>"
            )
        )

    def show_summary(self) -> None:
        """One row per scanner: latest status, last date, overdue marker, drift alarm."""
        _show(_html(styled_table(self.overview.drop(columns=["Key"]))))

    def show_checks(self) -> None:
        """Every check of the latest calibration of each scanner, with its source."""
        for key, rec in self.latest.items():
            _show(
                _html(
                    f"<h3>{html.escape(key)} — calibration #{rec.id} "
                    f"({rec.time:%Y-%m-%d}, {html.escape(rec.phantom)}, profile "
                    f"{html.escape(rec.profile)} v{html.escape(rec.profile_version)}): "
                    f"{html.escape(rec.status)}</h3>"
                )
            )
            frame, err = safe_call(partial(hu_checks_frame, rec), "checks")
            _show(_html(message_html(err, "error") if err else styled_table(frame)))

    def show_images(self) -> None:
        """The annotated slice (ROIs by status) and the linearity plot of each latest result."""
        for key, rec in self.latest.items():
            _show(_html(f"<h3>{html.escape(key)} — calibration #{rec.id}</h3>"))
            fig, err = safe_call(partial(hu_slice_figure, rec), "annotated slice")
            if err:
                _show(_html(message_html(err, "error")))
            else:
                _show_figure(fig)
            if rec.result.linearity is not None:
                fig, err = safe_call(rec.result.plot_linearity, "linearity plot")
                if err:
                    _show(_html(message_html(err, "error")))
                else:
                    _show_figure(fig)

    def show_trends(self) -> None:
        """HU per material over time with tolerance bands and drift alarms, per scanner."""
        for key in self.scanner_keys:
            _show(_html(f"<h3>{html.escape(key)}</h3>"))
            fig, err = safe_call(partial(self.history.plot_trend, key), "trend")
            if err:
                _show(_html(message_html(err, "error")))
            else:
                _show_figure(fig)

    def show_recommendations(self) -> None:
        """The latest recommendations of each scanner, in words."""
        parts = []
        for key, rec in self.latest.items():
            items = "".join(f"<li>{html.escape(t)}</li>" for t in hu_recommendations(rec))
            parts.append(f"<h3>{html.escape(key)} ({html.escape(rec.status)})</h3><ul>{items}</ul>")
        _show(_html("".join(parts)))
