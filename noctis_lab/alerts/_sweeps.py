"""The sweeps: what is new in the history and the AI store, each claimed once and posted."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noctis_lab import _paths
from noctis_lab._errors import NoctisError
from noctis_lab.alerts._config import AlertConfig
from noctis_lab.alerts._links import study_link
from noctis_lab.alerts._results import Alert, Kind, Outcome
from noctis_lab.alerts._store import AlertStore, Taken
from noctis_lab.alerts._wording import ai_change, ai_text, calibration_text, drift_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from noctis_lab.hu._result import CalibrationResult
    from noctis_lab.hu.history import CalibrationHistory, HistoryRecord


__all__ = ["announce", "calibration_alert", "sweep_ai", "sweep_calibrations", "sweep_drift"]


def announce(
    store: AlertStore | None,
    *,
    kind: Kind,
    rows: list[dict[str, Any]],
    subject: str,
    room: str,
    text: str,
    link: dict[str, str] | None,
    root: Path,
    dry_run: bool,
    post: bool = True,
) -> Alert:
    """Claim ``rows`` and post the message (or only remember them when ``post`` is False)."""
    key = " ; ".join(r["key"] for r in rows)

    def make(outcome: Outcome, mid: str | None = None, error: str | None = None) -> Alert:
        return Alert(kind, key, subject, room, text, link, outcome, mid, error)

    if dry_run or store is None:
        return make("dry_run" if post else "noted")

    def send() -> str | None:
        if not post:
            return None
        import noctis_rooms

        return str(noctis_rooms.post_system_message(str(root), room, text, study_link=link))

    full = [
        {"kind": kind, "subject": subject, "posted": post, "room": room, "text": text, **r}
        for r in rows
    ]
    try:
        mid = store.claim(full, send)
    except Taken:
        return make("already_posted")
    except ImportError as exc:
        return make("failed", error=f"the chat extension (noctis_rooms) is not installed: {exc}")
    except (NoctisError, OSError) as exc:
        return make("failed", error=f"{type(exc).__name__}: {exc}")
    return make("posted" if post else "noted", mid)


def calibration_alert(
    store: AlertStore | None,
    record: HistoryRecord | None,
    result: CalibrationResult,
    record_id: int,
    config: AlertConfig,
    root: Path,
    *,
    dry_run: bool,
    study_uid: str | None = None,
) -> Alert:
    assert config.rooms.hu is not None
    text = calibration_text(result, record_id)
    if record is not None and record.kind == "correction" and record.supersedes is not None:
        text += f" This corrects record {record.supersedes}: {record.reason}"
    return announce(
        store,
        kind="calibration",
        rows=[{"key": str(record_id), "value": result.status}],
        subject=result.scanner.key,
        room=config.rooms.hu,
        text=text,
        link=study_link(result, record_id, config, root, study_uid),
        root=root,
        dry_run=dry_run,
    )


def sweep_calibrations(
    store: AlertStore,
    history: CalibrationHistory,
    recs: pd.DataFrame,
    config: AlertConfig,
    root: Path,
    cutoff: datetime,
    dry_run: bool,
) -> list[Alert]:
    import pandas as pd

    due = recs[
        recs["status"].isin(config.notify_on)
        & (recs["recorded_at"] >= pd.Timestamp(cutoff, tz="UTC"))
    ]
    ids = [int(i) for i in due["id"]]
    done = store.announced("calibration", (str(i) for i in ids))
    out: list[Alert] = []
    assert config.rooms.hu is not None
    for rid, scanner, status in zip(ids, due["scanner"], due["status"], strict=True):
        if str(rid) in done:
            out.append(
                Alert(
                    "calibration",
                    str(rid),
                    str(scanner),
                    config.rooms.hu,
                    f"record {rid} ({status}) was announced before",
                    None,
                    "already_posted",
                )
            )
            continue
        rec = history.get(rid)
        out.append(calibration_alert(store, rec, rec.result, rid, config, root, dry_run=dry_run))
    return out


def sweep_drift(
    store: AlertStore,
    history: CalibrationHistory,
    recs: pd.DataFrame,
    config: AlertConfig,
    root: Path,
    cutoff: datetime,
    dry_run: bool,
) -> list[Alert]:
    import pandas as pd

    recorded = {int(i): t for i, t in zip(recs["id"], recs["recorded_at"], strict=True)}
    limit = pd.Timestamp(cutoff, tz="UTC")
    out: list[Alert] = []
    assert config.rooms.drift is not None
    for scanner in sorted(set(recs["scanner"])):
        alarms = [
            d
            for d in history.drift(str(scanner))
            if d.alarm
            and d.record_ids
            and recorded.get(d.record_ids[-1], limit - timedelta(days=1)) >= limit
        ]
        if not alarms:
            continue
        keys = {
            id(d): f"{d.scanner}|{d.phantom}|{d.module}|{d.material}|{d.first_alarm_record}"
            for d in alarms
        }
        done = store.announced("drift", keys.values())
        for d in alarms:
            if keys[id(d)] in done:
                out.append(
                    Alert(
                        "drift",
                        keys[id(d)],
                        str(scanner),
                        config.rooms.drift,
                        d.message,
                        None,
                        "already_posted",
                    )
                )
        fresh = [d for d in alarms if keys[id(d)] not in done]
        if not fresh:
            continue
        latest = max(fresh, key=lambda d: d.times[-1]).record_ids[-1]
        rec = history.get(int(latest))
        rows = [
            {"key": keys[id(d)], "value": f"{d.direction or ''} {d.drift_hu or 0:+.1f} HU"}
            for d in fresh
        ]
        out.append(
            announce(
                store,
                kind="drift",
                rows=rows,
                subject=str(scanner),
                room=config.rooms.drift,
                text=drift_text(rec.result, fresh),
                link=study_link(rec.result, rec.id, config, root),
                root=root,
                dry_run=dry_run,
            )
        )
    return out


def sweep_ai(
    store: AlertStore,
    config: AlertConfig,
    root: Path,
    *,
    tracking_uri: str | None,
    db_url: str | None,
    dry_run: bool,
) -> tuple[list[Alert], list[str]]:
    uri = tracking_uri or _paths.mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return [], [f"AI status not checked: no model store at {uri}"]
    from noctis_lab.ai import all_model_statuses

    try:
        table = all_model_statuses(tracking_uri=uri, db_url=db_url)
    except NoctisError as exc:
        return [], [f"AI status not checked: {exc}"]
    levels = config.ai_levels()
    out: list[Alert] = []
    assert config.rooms.ai is not None
    for row in table.itertuples(index=False):
        name, status = str(row.name), str(row.status)
        n, previous = store.last("ai_status", name)
        if previous == status:
            continue
        text = ai_text(name, str(row.version or ""), previous, status, str(row.issues or ""))
        out.append(
            announce(
                store,
                kind="ai_status",
                rows=[{"key": f"{name}@{n + 1}", "value": status}],
                subject=name,
                room=config.rooms.ai,
                text=text,
                link=None,
                root=root,
                dry_run=dry_run,
                post=ai_change(previous, status, levels),
            )
        )
    return out, []
