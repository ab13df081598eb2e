"""One run of the QA bot (:func:`check_and_post`) and the announcement of one calibration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from noctis_lab import _paths
from noctis_lab.alerts._config import AlertConfig, load_config
from noctis_lab.alerts._results import Alert, AlertRun
from noctis_lab.alerts._store import AlertStore, utcnow
from noctis_lab.alerts._sweeps import (
    calibration_alert,
    sweep_ai,
    sweep_calibrations,
    sweep_drift,
)

if TYPE_CHECKING:  # pragma: no cover
    from noctis_lab.hu._result import CalibrationResult
    from noctis_lab.hu.history import CalibrationHistory


__all__ = ["check_and_post", "notify_calibration"]


def _state_url(history: CalibrationHistory | None, db_url: str | None) -> str:
    if db_url is not None:
        return db_url
    if history is not None:
        return str(history._engine.url.render_as_string(hide_password=False))
    return _paths.db_url()


def _as_utc(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo is not None else now


def check_and_post(
    *,
    now: datetime | None = None,
    config: AlertConfig | None = None,
    history: CalibrationHistory | None = None,
    tracking_uri: str | None = None,
    db_url: str | None = None,
    dry_run: bool = False,
) -> AlertRun:
    """Sweep the history and the AI models; post what was not announced yet.

    Parameters
    ----------
    now : datetime, optional
        The time to judge ``lookback_days`` against (naive = UTC); default now.
    config : AlertConfig, optional
        Default :func:`load_config`.
    history : CalibrationHistory, optional
        Default ``CalibrationHistory(db_url)``.
    tracking_uri : str, optional
        MLflow store of the AI models (default :func:`noctis_lab._paths.mlflow_tracking_uri`).
    db_url : str, optional
        The history, analyses and ``alerts_posted`` database (default: the history's,
        else :func:`noctis_lab._paths.db_url`).
    dry_run : bool
        Compute the alerts without posting or remembering anything.

    Returns
    -------
    AlertRun
        Every alert considered, with its outcome. Posting failures (a missing room) are
        outcomes, not exceptions: the next run retries them.

    Raises
    ------
    ReportError
        A bad configuration file.
    HistoryError
        The database cannot be opened.
    """
    from noctis_lab.hu.history import CalibrationHistory

    cfg = config if config is not None else load_config()
    ref = _as_utc(now)
    root = cfg.root()
    own = history is None
    hist = CalibrationHistory(db_url) if history is None else history
    notes: list[str] = []
    alerts: list[Alert] = []
    store: AlertStore | None = None
    try:
        store = AlertStore(_state_url(hist, db_url))
        cutoff = ref - timedelta(days=cfg.lookback_days)
        recs = hist.records(current_only=True)
        if cfg.rooms.hu is not None:
            alerts += sweep_calibrations(store, hist, recs, cfg, root, cutoff, dry_run)
        else:
            notes.append("calibrations not checked: rooms.hu is null")
        if cfg.rooms.drift is not None:
            alerts += sweep_drift(store, hist, recs, cfg, root, cutoff, dry_run)
        else:
            notes.append("drift not checked: rooms.drift is null")
        if cfg.rooms.ai is not None:
            ai_alerts, ai_notes = sweep_ai(
                store, cfg, root, tracking_uri=tracking_uri, db_url=db_url, dry_run=dry_run
            )
            alerts += ai_alerts
            notes += ai_notes
        else:
            notes.append("AI status not checked: rooms.ai is null")
    finally:
        if store is not None:
            store.close()
        if own:
            hist.close()
    return AlertRun(
        checked_at=ref.replace(tzinfo=UTC).isoformat(timespec="seconds"),
        dry_run=dry_run,
        chat_root=str(root),
        alerts=tuple(alerts),
        notes=tuple(notes),
    )


def notify_calibration(
    result: CalibrationResult,
    record_id: int,
    *,
    config: AlertConfig | None = None,
    db_url: str | None = None,
    study_uid: str | None = None,
    dry_run: bool = False,
) -> Alert | None:
    """Announce one just-recorded calibration (the path ``hu analyze --record`` takes).

    Same words, link and ``alerts_posted`` row as :func:`check_and_post`, so the sweep
    will not announce it again (nor will a second call).

    Parameters
    ----------
    result : CalibrationResult
        The recorded result.
    record_id : int
        Its history record id.
    config : AlertConfig, optional
        Default :func:`load_config`.
    db_url : str, optional
        The database holding ``alerts_posted`` (default :func:`noctis_lab._paths.db_url`).
    study_uid : str, optional
        StudyInstanceUID of the series, when the caller knows it (else read from the
        DICOM at ``result.source``).
    dry_run : bool
        Build the alert without posting or remembering it.

    Returns
    -------
    Alert or None
        None when the status is not in ``notify_on`` or calibration alerts are off.
    """
    cfg = config if config is not None else load_config()
    if cfg.rooms.hu is None or result.status not in cfg.notify_on:
        return None
    store = AlertStore(db_url if db_url is not None else _paths.db_url())
    try:
        return calibration_alert(
            store,
            None,
            result,
            int(record_id),
            cfg,
            cfg.root(),
            dry_run=dry_run,
            study_uid=study_uid,
        )
    finally:
        store.close()
