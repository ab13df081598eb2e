"""Reports and dashboards: papermill reports, their schedules, and the Voila dashboards.

>>> from noctis_lab.reports import run_report
>>> out = run_report("hu", "reports", scanner="CT-ONC-1")  # doctest: +SKIP
>>> out.status, out.verdict, out.html  # doctest: +SKIP

- :func:`run_report` runs ``notebooks/reports/<kind>`` with papermill and writes the
  executed notebook, one self-contained HTML without code, a PDF (when Chromium is
  installed) and ``summary.json`` under ``OUT/<kind>/<YYYY-MM-DD>/``.
- :func:`hu_report` / :func:`ai_report` build what the report notebooks show.
- :func:`hu_dashboard` / :func:`ai_dashboard` are the ipywidgets apps that the Voila
  dashboards display; :func:`start_voila` serves them.
- :func:`cron_lines`, :func:`systemd_units` and friends schedule the reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noctis_lab.reports._output import SUMMARY_NAME, ReportOutput
from noctis_lab.reports._runner import (
    REPORT_KINDS,
    html_to_pdf,
    notebook_to_html,
    notebooks_dir,
    report_notebook,
    run_report,
)
from noctis_lab.reports._schedule import (
    Schedule,
    cron_lines,
    install_cron,
    install_systemd,
    make_schedules,
    merge_crontab,
    systemd_units,
)

if TYPE_CHECKING:  # pragma: no cover
    from noctis_lab.reports._ai_report import AiReport
    from noctis_lab.reports._dashboards import AiDashboard, HuDashboard
    from noctis_lab.reports._hu_report import HuReport
    from noctis_lab.reports._voila import VoilaServer

__all__ = [
    "REPORT_KINDS",
    "SUMMARY_NAME",
    "ReportOutput",
    "Schedule",
    "ai_dashboard",
    "ai_report",
    "cron_lines",
    "html_to_pdf",
    "hu_dashboard",
    "hu_report",
    "install_cron",
    "install_systemd",
    "make_schedules",
    "merge_crontab",
    "notebook_to_html",
    "notebooks_dir",
    "report_notebook",
    "run_report",
    "start_voila",
    "systemd_units",
]


def hu_report(
    scanner: str | None = None,
    since: str | None = None,
    until: str | None = None,
    calibration: str | int | None = None,
) -> HuReport:
    """The HU QA report's content (see :class:`noctis_lab.reports._hu_report.HuReport`).

    Parameters
    ----------
    scanner : str, optional
        One scanner (its key, serial or station name); default: every scanner.
    since, until : str, optional
        The period (inclusive, ``YYYY-MM-DD``).
    calibration : str or int, optional
        One calibration (record id or result id) instead of a period.
    """
    from noctis_lab.reports._hu_report import HuReport

    return HuReport(scanner=scanner, since=since, until=until, calibration=calibration)


def ai_report(
    model: str | None = None, since: str | None = None, until: str | None = None
) -> AiReport:
    """The AI performance report's content (see :class:`noctis_lab.reports._ai_report.AiReport`)."""
    from noctis_lab.reports._ai_report import AiReport

    return AiReport(model=model, since=since, until=until)


def hu_dashboard() -> HuDashboard:
    """The HU calibration dashboard (an ipywidgets app; display it)."""
    from noctis_lab.reports._dashboards import HuDashboard

    return HuDashboard()


def ai_dashboard() -> AiDashboard:
    """The AI models dashboard (an ipywidgets app; display it)."""
    from noctis_lab.reports._dashboards import AiDashboard

    return AiDashboard()


def start_voila(*args: Any, **kwargs: Any) -> VoilaServer:
    """Serve the dashboards with Voila (see :func:`noctis_lab.reports._voila.start_voila`)."""
    from noctis_lab.reports._voila import start_voila as _start

    return _start(*args, **kwargs)
