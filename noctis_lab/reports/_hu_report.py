"""The HU QA report: what the report notebook shows, read from the calibration history.

One calibration (``calibration=``), or every current calibration of one scanner (or
of every scanner) in a period. The verdict is the worst status of the latest
calibration of each scanner covered (or of the one calibration); statuses, checks,
drift and recommendations are the analysis' and the history's own.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from noctis_lab._errors import HistoryError, ReportError
from noctis_lab.reports._dashboard_data import (
    EMPTY_HU,
    hu_checks_frame,
    hu_drift_frame,
    hu_overview_frame,
    hu_recommendations,
    hu_slice_figure,
    not_checked_note,
    not_checked_rois,
    open_history,
    period_text,
    profile_facts,
    report_verdict,
    resolve_scanner,
    status_counts,
)
from noctis_lab.reports._panels import (
    cover_html,
    figure_html,
    message_html,
    safe_call,
    status_html,
    styled_table,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from noctis_lab.hu.history import CalibrationHistory, HistoryRecord

__all__ = ["HuReport", "HuSelection", "check_hu_report", "select_calibrations"]


def _show(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def _html(text: str) -> Any:
    from IPython.display import HTML

    return HTML(text)


@dataclass(frozen=True)
class HuSelection:
    """The calibrations a report covers: the scanners, their records and latest record.

    ``since``/``until`` are the period asked for (one calibration: its day).
    """

    scanner_keys: tuple[str, ...]
    records: pd.DataFrame
    latest: Mapping[str, HistoryRecord]
    since: str | None
    until: str | None


def select_calibrations(
    history: CalibrationHistory,
    *,
    scanner: str | None = None,
    since: str | None = None,
    until: str | None = None,
    calibration: str | int | None = None,
) -> HuSelection:
    """The calibrations of one HU report: one record, or the current records of a period.

    Parameters
    ----------
    history : CalibrationHistory
        The history to read.
    scanner : str, optional
        One scanner (key, serial or station); default every scanner.
    since, until : str, optional
        The period, ``YYYY-MM-DD`` (inclusive).
    calibration : str or int, optional
        One calibration record id instead of a scanner and period.

    Raises
    ------
    ReportError
        When the history is empty, the scanner or calibration unknown, or the period
        holds no calibration.
    """
    overview = history.scanners(drift=False)
    if overview.empty:
        raise ReportError(f"the HU report has nothing to show: {EMPTY_HU}")
    if calibration is not None:
        return _one_calibration(history, calibration)
    keys = (
        [resolve_scanner(history, scanner)]
        if scanner is not None
        else [str(k) for k in overview["scanner"]]
    )
    end = f"{until}T23:59:59" if until is not None and len(str(until)) == 10 else until
    recs = history.records(since=since, until=end, current_only=True)
    recs = recs[recs["scanner"].isin(keys)]
    if recs.empty:
        raise ReportError(
            f"no calibration of {scanner or 'any scanner'} in the period "
            f"({period_text(since, until)}) in the history {history.url}"
        )
    present = tuple(k for k in keys if k in set(recs["scanner"]))
    latest = {key: history.get(int(recs[recs["scanner"] == key]["id"].iloc[-1])) for key in present}
    return HuSelection(present, recs, latest, since, until)


def _one_calibration(history: CalibrationHistory, calibration: str | int) -> HuSelection:
    try:
        rid = int(calibration)
    except ValueError:
        raise ReportError(
            f"--calibration {calibration!r} is not a record id (a whole number)"
        ) from None
    try:
        rec = history.get(rid)
    except HistoryError as exc:
        raise ReportError(f"no calibration #{rid}: {exc}") from None
    recs = history.records(scanner=rec.scanner)
    day = rec.time.date().isoformat()
    return HuSelection((rec.scanner,), recs[recs["id"] == rid], {rec.scanner: rec}, day, day)


def check_hu_report(
    *,
    scanner: str | None = None,
    since: str | None = None,
    until: str | None = None,
    calibration: str | int | None = None,
) -> None:
    """Refuse, before any notebook runs, what the HU report could not show.

    Raises
    ------
    ReportError
        No history, an unknown scanner or calibration, an empty period.
    HistoryError
        The history cannot be opened (a bad or unreachable database URL).
    """
    history = open_history()
    try:
        select_calibrations(
            history, scanner=scanner, since=since, until=until, calibration=calibration
        )
    finally:
        history.close()


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
        self.generated_at = datetime.now(UTC)
        chosen = select_calibrations(
            self.history, scanner=scanner, since=since, until=until, calibration=calibration
        )
        self.since, self.until = chosen.since, chosen.until
        self.records: pd.DataFrame = chosen.records
        self.scanner_keys: list[str] = list(chosen.scanner_keys)
        self.latest: dict[str, HistoryRecord] = dict(chosen.latest)
        self.overview = hu_overview_frame(self.history)
        self.overview = self.overview[self.overview["Key"].isin(self.scanner_keys)]
        self.labels: dict[str, str] = dict(
            zip(self.overview["Key"].astype(str), self.overview["Scanner"].astype(str), strict=True)
        )
        self.verdict = self._verdict()

    # -- facts ------------------------------------------------------------------------
    def _verdict(self) -> str:
        return report_verdict([r.status for r in self.latest.values()])

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
            "stations": [self.label(k) for k in self.scanner_keys],
            "since": self.since,
            "until": self.until,
            "counts": counts,
            "latest": {k: {"record": r.id, "status": r.status} for k, r in self.latest.items()},
        }

    def save_facts(self, path: str | None) -> None:
        """Write :meth:`facts` for the report runner (no-op when ``path`` is None)."""
        from noctis_lab.reports._output import write_facts

        write_facts(path, self.facts())

    # -- sections ---------------------------------------------------------------------
    def label(self, key: str) -> str:
        """A scanner as a reader knows it: ``station — manufacturer model (serial)``."""
        return self.labels.get(key, key)

    def period(self) -> str:
        """The period asked for, or else the dates the calibrations span."""
        if self.since is None and self.until is None and not self.records.empty:
            times = self.records["time"]
            return f"{times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}"
        return period_text(self.since, self.until)

    def show_cover(self) -> None:
        """The cover: verdict, scanners, period, profile with its source, sign-off fields."""
        _show(_html(self.cover_html()))

    show_header = show_cover

    def cover_html(self) -> str:
        """HTML of :meth:`show_cover`."""
        from noctis_lab import __version__

        scanners = "".join(
            f"<li>{html.escape(self.label(k))} — latest #{r.id} on {r.time:%Y-%m-%d}: "
            f"{status_html(r.status)}</li>"
            for k, r in self.latest.items()
        )
        phantoms = ", ".join(sorted({str(p) for p in self.records["phantom"]}))
        profiles = []
        for name in sorted({str(p) for p in self.records["profile"]}):
            facts = profile_facts(name)
            judges = "; ".join(facts["judges"])
            sources = "".join(f"<li>{html.escape(src)}</li>" for src in facts["sources"])
            profiles.append(
                f"<b>{html.escape(name)}</b> v{html.escape(facts['version'])} — "
                f"{html.escape(facts['title'])}. It judges: {html.escape(judges)}. "
                "Inserts of other materials are measured and shown, marked "
                "<i>not checked</i> (no criterion of this profile applies to them)."
                f"<br>Sources:<ul class='noctis-sources'>{sources}</ul>"
            )
        reviews = []
        for key, rec in self.latest.items():
            for rv in rec.reviews:
                reviews.append(
                    f"<li>{html.escape(self.label(key))} #{rec.id}: {html.escape(rv.decision)} "
                    f"by {html.escape(rv.reviewer)} on {rv.reviewed_at:%Y-%m-%d}"
                    f"{' — ' + html.escape(rv.comment) if rv.comment else ''}</li>"
                )
        recorded = (
            f"<p>Reviews already recorded: <ul>{''.join(reviews)}</ul></p>" if reviews else ""
        )
        rows = [
            ("Verdict", f"{status_html(self.verdict, '2px 10px')} (worst latest status)"),
            ("Scanners", f"<ul class='noctis-scanners'>{scanners}</ul>"),
            ("Period", f"{html.escape(self.period())} ({len(self.records)} calibrations)"),
            ("Phantoms", html.escape(phantoms)),
            ("Tolerance profile", "<br>".join(profiles)),
            (
                "Generated",
                f"{self.generated_at:%Y-%m-%d %H:%M} UTC by Noctis Lab {html.escape(__version__)}",
            ),
        ]
        return cover_html("HU QA report", rows, recorded)

    def show_summary(self) -> None:
        """One row per scanner: latest status, last date, overdue marker, drift alarm."""
        _show(
            _html(
                "<h2>Summary per scanner</h2>" + styled_table(self.overview.drop(columns=["Key"]))
            )
        )

    def show_checks(self) -> None:
        """Every check of the latest calibration of each scanner, with its source."""
        parts = ["<h2>Checks of the latest calibration</h2>"]
        for key, rec in self.latest.items():
            head = (
                f"<h3>{html.escape(self.label(key))} — calibration #{rec.id} "
                f"({rec.time:%Y-%m-%d}, {html.escape(rec.phantom)}, profile "
                f"{html.escape(rec.profile)} v{html.escape(rec.profile_version)}): "
                f"{status_html(rec.status)}</h3>"
            )
            frame, err = safe_call(partial(hu_checks_frame, rec), "checks")
            body = message_html(err, "error") if err else _checks_table(frame)
            skipped = not_checked_rois(rec)
            note = (
                f"<p class='noctis-note'>{html.escape(not_checked_note(rec.result))} "
                f"Not checked here: {html.escape(', '.join(skipped))}; their values are in "
                "the annotated image.</p>"
                if skipped
                else ""
            )
            parts.append(f"<div class='noctis-keep'>{head}{body}</div>{note}")
            _show(_html("".join(parts)))
            parts = []

    def show_images(self) -> None:
        """The annotated slice (ROIs by status) and the linearity plot of each latest result."""
        first = True
        for key, rec in self.latest.items():
            title = "<h2>Annotated images</h2>" if first else ""
            first = False
            head = f"<h3>{html.escape(self.label(key))} — calibration #{rec.id}</h3>"
            fig, err = safe_call(partial(hu_slice_figure, rec), "annotated slice")
            imgs = [message_html(err, "error") if err else figure_html(fig, alt="annotated slice")]
            if rec.result.linearity is not None:
                fig, err = safe_call(rec.result.plot_linearity, "linearity plot")
                imgs.append(
                    message_html(err, "error") if err else figure_html(fig, alt="linearity")
                )
            row = "<div class='noctis-row'>" + "".join(f"<div>{i}</div>" for i in imgs) + "</div>"
            _show(_html(f"{title}<div class='noctis-keep'>{head}{row}</div>"))

    def show_trends(self) -> None:
        """HU per material over time with tolerance bands and drift alarms, per scanner."""
        first = True
        for key in self.scanner_keys:
            title = (
                "<h2>Trends and drift</h2><p>Measured HU per material over time, with the "
                "tolerance band. Drift is judged by two tests: a CUSUM against the "
                "scanner's baseline (its first ten records) and a trend test (the slope of "
                "the last twelve records with its 95 % confidence interval), which works "
                "from five records.</p>"
                if first
                else ""
            )
            first = False
            head = f"<h3>{html.escape(self.label(key))}</h3>"
            fig, err = safe_call(
                partial(self.history.plot_trend, key, title=f"HU trend: {self.label(key)}"),
                "trend",
            )
            img = message_html(err, "error") if err else figure_html(fig, alt="trend")
            drifts, derr = safe_call(partial(self.history.drift, key), "drift")
            if derr:
                table = message_html(derr, "error")
            else:
                frame = hu_drift_frame(drifts)
                table = (
                    "<div class='noctis-keep'><p><b>Drift alarms</b></p>"
                    + styled_table(frame)
                    + "</div>"
                    if len(frame)
                    else "<p>No drift alarm.</p>"
                )
            _show(_html(f"{title}<div class='noctis-keep'>{head}{img}</div>{table}"))

    def show_recommendations(self) -> None:
        """The latest recommendations of each scanner, in words."""
        parts = ["<h2>Recommendations</h2>"]
        for key, rec in self.latest.items():
            items = "".join(f"<li>{html.escape(t)}</li>" for t in hu_recommendations(rec))
            parts.append(
                f"<div class='noctis-keep'><h3>{html.escape(self.label(key))} "
                f"({status_html(rec.status)})</h3><ul>{items}</ul></div>"
            )
        _show(_html("".join(parts)))


def _checks_table(frame: pd.DataFrame) -> str:
    """The checks with short source ids, and each cited source once below."""
    if frame.empty:
        return message_html("No check was made.", "empty")
    table = frame.copy()
    cites: dict[str, str] = {}
    if "Source" in table:
        short = []
        for text in table["Source"].astype(str):
            sid, _, cite = text.partition(": ")
            cites.setdefault(sid, cite or text)
            short.append(sid)
        table["Source"] = short
    notes = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in cites.items())
    return styled_table(table) + (f"<ul class='noctis-sources'>{notes}</ul>" if notes else "")
