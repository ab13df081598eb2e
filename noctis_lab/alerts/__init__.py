"""The QA bot: post HU calibration failures, drift alarms and AI status changes to chat rooms.

>>> from noctis_lab.alerts import check_and_post, load_config
>>> run = check_and_post()            # what is new since the last run, posted once
>>> run.to_dataframe()                # one row per alert: posted, already posted, failed ...

Configuration is a JSON file, ``$NOCTIS_ALERTS`` or ``<NOCTIS_HOME>/alerts.json``
(:class:`AlertConfig`; every field is optional)::

    {"chat_root": ".",
     "rooms": {"hu": "rooms/qa-hu.chat", "drift": "rooms/qa-hu.chat", "ai": "rooms/qa-ai.chat"},
     "notify_on": ["fail", "warning"],
     "lookback_days": 14}

``chat_root`` is the Jupyter server root the rooms are relative to (relative paths are
relative to the project home, the root of ``noctis-lab lab``); a room set to ``null``
switches that kind of alert off. ``notify_on`` lists the calibration statuses that are
announced (``fail``, ``warning``, ``pass``); for AI models ``fail`` stands for the status
``error`` and ``warning`` for ``warning`` (``pass``: every change of status).

What is announced, once each:

* **calibration**: every current history record with a status in ``notify_on``,
  recorded within ``lookback_days`` (so switching alerts on does not flood a room with
  last year's failures);
* **drift**: every drift alarm (per scanner, phantom, module and material; see
  :meth:`noctis_lab.hu.history.CalibrationHistory.drift`) whose series has a record
  within ``lookback_days``; alarms of one scanner found in one run share a message;
* **ai_status**: a registered model whose status differs from the last one seen (the
  first sighting of a model is announced only when it is at an alert level).

Each message is posted as the QA bot with :func:`noctis_rooms.post_system_message`
(into the live room when the server runs, else appended to the ``.chat`` file), with a
study link to the series and, where ``hu_calibration.ipynb`` exists under the chat root,
a link that opens it.

What was announced is kept in the append-only table ``alerts_posted`` of the history
database (:func:`noctis_lab._paths.db_url`), unique on ``(kind, key)``. A message is
posted inside the transaction that inserts its rows, so a failed post leaves no row
(it is retried by the next run) and of two runs at once only one posts: the other finds
the rows (SQLite: the write lock serialises them; PostgreSQL: the unique key).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from noctis_lab import _paths, records
from noctis_lab._errors import NoctisError, ReportError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from noctis_lab.hu._drift import DriftResult
    from noctis_lab.hu._result import CalibrationResult
    from noctis_lab.hu.history import CalibrationHistory, HistoryRecord

__all__ = [
    "ALERT_KINDS",
    "CONFIG_ENV",
    "CONFIG_NAME",
    "HU_NOTEBOOK",
    "OUTCOMES",
    "Alert",
    "AlertConfig",
    "AlertRooms",
    "AlertRun",
    "ai_change",
    "alerts_table",
    "calibration_text",
    "check_and_post",
    "config_path",
    "configured",
    "load_config",
    "notify_calibration",
]

#: The kinds of alert, as stored in ``alerts_posted.kind``.
ALERT_KINDS: tuple[str, ...] = ("calibration", "drift", "ai_status")
#: What happened to an alert in a run.
OUTCOMES: tuple[str, ...] = ("posted", "dry_run", "already_posted", "noted", "failed")
#: The default configuration file name, under the project home.
CONFIG_NAME = "alerts.json"
#: Environment variable naming another configuration file.
CONFIG_ENV = "NOCTIS_ALERTS"
#: The notebook a calibration's study link opens, when it exists under the chat root.
HU_NOTEBOOK = "hu_calibration.ipynb"

Kind = Literal["calibration", "drift", "ai_status"]
Outcome = Literal["posted", "dry_run", "already_posted", "noted", "failed"]

_AI_LEVELS = {
    "fail": ("error",),
    "review": (),
    "warning": ("warning",),
    "pass": ("excellent", "good"),
}
_MAX_CHECKS = 6


# --------------------------------------------------------------------------- configuration
def _room(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    v = value.strip().replace("\\", "/")
    if not v.endswith(".chat"):
        raise ValueError(f"{where} {value!r} is not a .chat file")
    if v.startswith("/") or ".." in v.split("/"):
        raise ValueError(f"{where} {value!r} must be a path relative to chat_root, without '..'")
    return v


class AlertRooms(BaseModel):
    """The room (a ``.chat`` file relative to the chat root) of each kind of alert.

    ``None`` switches that kind off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    hu: str | None = "rooms/qa-hu.chat"
    drift: str | None = "rooms/qa-hu.chat"
    ai: str | None = "rooms/qa-ai.chat"

    @field_validator("hu", "drift", "ai")
    @classmethod
    def _chat_file(cls, value: str | None) -> str | None:
        return _room(value, "room")


class AlertConfig(BaseModel):
    """Where and what the QA bot posts (see the module docstring for the file).

    Attributes
    ----------
    chat_root : str
        The Jupyter server root the rooms are relative to; a relative path is taken
        from the project home (default ``.``: the home itself, ``noctis-lab lab``'s root).
    rooms : AlertRooms
        Room per kind (``hu``: calibrations, ``drift``: drift alarms, ``ai``: AI status).
    notify_on : tuple of str
        Calibration statuses to announce (``fail``, ``review``, ``warning``, ``pass``;
        ``review``: the phantom was found with doubts, so a physicist must look before
        any verdict); they also set the AI statuses worth a message (``fail`` = ``error``).
    lookback_days : float
        Only records recorded within this many days are announced (default 14).
    open_path : str or None
        Notebook the study links open, relative to ``chat_root``; default
        ``hu_calibration.ipynb`` or ``notebooks/hu_calibration.ipynb``, whichever exists.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chat_root: str = "."
    rooms: AlertRooms = Field(default_factory=AlertRooms)
    notify_on: tuple[Literal["fail", "review", "warning", "pass"], ...] = (
        "fail",
        "review",
        "warning",
    )
    lookback_days: float = Field(14.0, gt=0)
    open_path: str | None = None

    @field_validator("notify_on")
    @classmethod
    def _some(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one status (fail, review, warning, pass)")
        return tuple(dict.fromkeys(value))

    @field_validator("open_path")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError(f"{value!r} must be a path relative to chat_root, without '..'")
        return value

    def root(self) -> Path:
        """The chat root as an absolute path."""
        p = Path(self.chat_root).expanduser()
        return (p if p.is_absolute() else _paths.home() / p).resolve()

    def ai_levels(self) -> frozenset[str]:
        """The AI model statuses at which a model is worth a message."""
        return frozenset(s for n in self.notify_on for s in _AI_LEVELS[n])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (with the resolved ``chat_root`` under ``chat_root_path``)."""
        d = self.model_dump(mode="json")
        d["chat_root_path"] = str(self.root())
        return d


def config_path() -> Path:
    """The configuration file: ``$NOCTIS_ALERTS`` or ``<NOCTIS_HOME>/alerts.json``."""
    env = os.environ.get(CONFIG_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else _paths.home() / CONFIG_NAME


def configured() -> bool:
    """True when an alerts configuration file exists (or ``$NOCTIS_ALERTS`` is set)."""
    return bool(os.environ.get(CONFIG_ENV, "").strip()) or config_path().is_file()


def _field_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"field {loc!r}: {msg}")
    return "; ".join(parts)


def load_config(path: str | os.PathLike[str] | None = None) -> AlertConfig:
    """Read and validate the alerts configuration.

    Parameters
    ----------
    path : path, optional
        The file; default :func:`config_path`. When that default does not exist the
        defaults apply (a file named by ``path`` or ``$NOCTIS_ALERTS`` must exist).

    Raises
    ------
    ReportError
        The file is missing (when named), not JSON, or a field is invalid; the message
        names the file and the field.
    """
    named = path is not None or bool(os.environ.get(CONFIG_ENV, "").strip())
    p = Path(path).expanduser().resolve() if path is not None else config_path()
    if not p.is_file():
        if named:
            raise ReportError(f"alerts config {p}: no such file")
        return AlertConfig()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"alerts config {p}: not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError(f"alerts config {p}: must be a JSON object")
    try:
        return AlertConfig.model_validate(data)
    except ValidationError as exc:
        raise ReportError(f"alerts config {p}: {_field_errors(exc)}") from None


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Alert:
    """One alert of a run: what it says, where it goes, and what happened to it.

    Attributes
    ----------
    kind : str
        ``calibration``, ``drift`` or ``ai_status``.
    key : str
        Its identity in ``alerts_posted`` (record id; ``scanner|phantom|module|material|
        first alarm record``; ``model@n``). A drift message covering several alarms
        lists their keys joined by ``" ; "``.
    subject : str
        The scanner key or model name.
    room : str
        The ``.chat`` file, relative to the chat root.
    text : str
        The message, plain words.
    study_link : dict or None
        ``study_uid``, ``description``, ``series_uid``, ``open_path``.
    outcome : str
        ``posted``, ``dry_run`` (would be posted), ``already_posted``, ``noted`` (an AI
        status remembered without a message) or ``failed``.
    message_id : str or None
        The chat message (or queued item) id when posted.
    error : str or None
        Why it failed.
    """

    kind: Kind
    key: str
    subject: str
    room: str
    text: str
    study_link: dict[str, str] | None
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AlertRun:
    """The result of :func:`check_and_post`.

    Attributes
    ----------
    checked_at : str
        ISO UTC time of the run (the ``now`` it judged against).
    dry_run : bool
        Nothing was posted or remembered.
    chat_root : str
        The resolved chat root.
    alerts : tuple of Alert
        Every alert considered, in order: calibrations, drift, AI.
    notes : tuple of str
        What was not checked, and why.
    """

    checked_at: str
    dry_run: bool
    chat_root: str
    alerts: tuple[Alert, ...]
    notes: tuple[str, ...] = ()

    def _with(self, outcome: str) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.outcome == outcome)

    @property
    def posted(self) -> tuple[Alert, ...]:
        """Alerts posted in this run (or that would be, in a dry run)."""
        return self._with("dry_run" if self.dry_run else "posted")

    @property
    def skipped(self) -> tuple[Alert, ...]:
        """Alerts not posted because they were announced before (or only noted)."""
        return tuple(a for a in self.alerts if a.outcome in ("already_posted", "noted"))

    @property
    def failed(self) -> tuple[Alert, ...]:
        """Alerts that could not be posted (retried by the next run)."""
        return self._with("failed")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary with counts."""
        return {
            "checked_at": self.checked_at,
            "dry_run": self.dry_run,
            "chat_root": self.chat_root,
            "n_posted": len(self.posted),
            "n_skipped": len(self.skipped),
            "n_failed": len(self.failed),
            "alerts": [a.to_dict() for a in self.alerts],
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per alert: kind, key, subject, room, outcome, message_id, error, text."""
        import pandas as pd

        cols = ["kind", "key", "subject", "room", "outcome", "message_id", "error", "text"]
        return pd.DataFrame([{c: getattr(a, c) for c in cols} for a in self.alerts], columns=cols)


# --------------------------------------------------------------------------- state store
_metadata = MetaData()

#: The append-only record of what the bot announced (or noted), one row per key.
alerts_table = Table(
    "alerts_posted",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("key", String(512), nullable=False),
    Column("subject", String(255), nullable=False, index=True),
    Column("value", String(64), nullable=False, default=""),
    Column("posted", Boolean, nullable=False),
    Column("room", String(512), nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    *records.chain_columns(),  # hash-chained: `noctis-lab verify` names a rewritten row
    UniqueConstraint("kind", "key", name="uq_alerts_posted_kind_key"),
)
_HINT = "what was announced stays announced"
records.mark_append_only(alerts_table, what="the QA bot's record", hint=_HINT)


class _Taken(Exception):
    """Another run announced (some of) these keys first."""


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class _Store:
    """``alerts_posted`` in the history database (created on first use)."""

    def __init__(self, url: str) -> None:
        from noctis_lab.hu._history_db import open_engine, retrying

        self.engine: Engine = open_engine(url)

        def create() -> None:
            # created, or an older copy chained (backfill); append-only triggers
            records.ensure_chained_table(self.engine, alerts_table, hint=_HINT)

        try:
            retrying(create, what="create the alerts_posted table")
        except IntegrityError:  # another process created it between check and create
            pass
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def announced(self, kind: str, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        t = alerts_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.key).where(t.c.kind == kind, t.c.key.in_(keys)))
            return {str(k) for k in rows.scalars()}

    def last(self, kind: str, subject: str) -> tuple[int, str | None]:
        """Rows stored for ``subject`` and the value of the newest."""
        t = alerts_table
        with self.engine.connect() as conn:
            n = conn.execute(
                select(func.count()).where(t.c.kind == kind, t.c.subject == subject)
            ).scalar()
            v = conn.execute(
                select(t.c.value)
                .where(t.c.kind == kind, t.c.subject == subject)
                .order_by(t.c.id.desc())
                .limit(1)
            ).scalar()
        return int(n or 0), None if v is None else str(v)

    def claim(self, rows: list[dict[str, Any]], post: Callable[[], str | None]) -> str | None:
        """Insert ``rows`` and run ``post`` in one transaction; :class:`_Taken` if beaten."""
        from noctis_lab.hu._history_db import retrying, write_transaction

        t = alerts_table
        kind = rows[0]["kind"]
        keys = [r["key"] for r in rows]

        def attempt() -> str | None:
            with write_transaction(self.engine) as conn:
                hit = conn.execute(
                    select(t.c.key).where(t.c.kind == kind, t.c.key.in_(keys)).limit(1)
                ).first()
                if hit is not None:
                    raise _Taken(str(hit[0]))
                now = _utcnow()
                records.append(conn, t, [{**r, "created_at": now} for r in rows])
                return post()

        try:
            return retrying(attempt, what="record an alert in alerts_posted")
        except IntegrityError as exc:
            raise _Taken(str(exc.orig)) from None


# --------------------------------------------------------------------------- wording
def _scanner_name(result: CalibrationResult) -> str:
    sc = result.scanner
    who = " ".join(x for x in (sc.manufacturer, sc.model) if x)
    name = sc.station or sc.serial or sc.key
    return f"{name} ({who})" if who else name


def _qa_date(result: CalibrationResult) -> str:
    for text in (result.acquisition_datetime, result.scanner.acquisition_datetime):
        if text:
            return str(text)[:10]
    return str(result.analysed_at)[:10]


def _tolerance(check: Any) -> str:
    tol = str(check.tolerance or "").strip()
    return re.sub(r"\s*ratio$", "", tol)


def _check_text(check: Any) -> str:
    """One check in a physicist's words: what, the value, and the tolerance."""
    m = check.measured
    target = str(check.target)
    unit = str(check.unit or "")
    if m is None or (isinstance(m, float) and not math.isfinite(m)):
        value = "not measured"
    elif unit == "ratio":
        value = f"{m:.3f}"
    elif unit == "HU" and check.kind in ("hu", "constancy_hu"):
        exp = check.expected
        if exp is not None and exp == 0:
            value = f"{m:+.1f} HU"
        elif check.deviation is not None:
            value = f"{m:.1f} HU ({check.deviation:+.1f})"
        else:
            value = f"{m:.1f} HU"
    else:
        value = f"{m:.3g} {unit}".strip()
    if check.kind == "hu":
        found = re.search(r"\(([^)]+)\)\s*$", target)
        label = found.group(1) if found else target
    elif check.kind == "linearity" and target.startswith("slope"):
        label = "linearity slope"
    else:
        label = target
    tol = _tolerance(check)
    return f"{label} {value}" + (f" (tolerance {tol})" if tol else "")


def calibration_text(result: CalibrationResult, record_id: int | None = None) -> str:
    """The message announcing a calibration: verdict, what is out, and the advice.

    E.g. ``CT-RT-4 (Canon Aquilion Prime SP) FAILED its CatPhan 604 QA on 2026-11-20:
    Water-equivalent +12.2 HU (tolerance 0 ± 5 HU). Recommendation: ...``; a doubtful
    localisation reads ``... NEEDS REVIEW after its CatPhan 604 QA ...`` with no verdict.
    """
    verdict = {
        "fail": "FAILED",
        "review": "NEEDS REVIEW after",
        "warning": "passed with WARNINGS",
        "pass": "PASSED",
    }.get(result.status, result.status.upper())
    head = f"{_scanner_name(result)} {verdict} its {result.phantom_title} QA on {_qa_date(result)}"
    order = {"review": 0, "fail": 1, "warning": 2}
    bad = sorted(
        (c for c in result.checks if c.status in order), key=lambda c: order[str(c.status)]
    )
    parts = [_check_text(c) + ("" if c.status == "fail" else f" [{c.status}]") for c in bad]
    if len(parts) > _MAX_CHECKS:
        parts = [*parts[:_MAX_CHECKS], f"and {len(parts) - _MAX_CHECKS} more"]
    text = head + (": " + "; ".join(parts) if parts else "") + "."
    if result.recommendations:
        text += " Recommendation: " + " ".join(result.recommendations)
    ref = f"record {record_id}, " if record_id is not None else ""
    return f"{text} ({ref}profile {result.profile} v{result.profile_version})"


def _outside(d: DriftResult) -> bool:
    last = d.values[-1] if d.values else None
    if last is None:
        return False
    return (d.high is not None and last > d.high) or (d.low is not None and last < d.low)


def _urgency(d: DriftResult) -> tuple[int, float, float]:
    """Sort key, most urgent first: outside tolerance, then leaving soonest, then largest."""
    exit_ts = d.projected_exit.timestamp() if d.projected_exit is not None else math.inf
    return (0 if _outside(d) else 1, exit_ts, -abs(d.drift_hu or 0.0))


def _drift_text(result: CalibrationResult, alarms: Sequence[DriftResult]) -> str:
    """One message for the new drift alarms of one scanner, the most urgent in full."""
    scanner = alarms[0].scanner
    ranked = sorted(alarms, key=_urgency)
    worst = ranked[0]
    detail = worst.message.replace(f" on {scanner}", "", 1)
    if len(ranked) == 1:
        body = detail
    else:
        listed = [f"{d.material} {d.drift_hu or 0.0:+.1f} HU" for d in ranked[:_MAX_CHECKS]]
        if len(ranked) > _MAX_CHECKS:
            listed.append(f"and {len(ranked) - _MAX_CHECKS} more")
        body = f"{len(ranked)} materials drift ({', '.join(listed)}). Most urgent: {detail}"
    advice = (
        "recalibrate the CT numbers before further clinical use"
        if any(_outside(d) for d in alarms)
        else "book a CT-number calibration check before it leaves tolerance"
    )
    return (
        f"Drift alarm on {_scanner_name(result)}, {result.phantom_title}: {body}. "
        f"Recommendation: review the trend (noctis-lab hu trend '{scanner}'), repeat "
        f"the daily air calibration and {advice}."
    )


def _ai_text(name: str, version: str, old: str | None, new: str, issues: str) -> str:
    label = f"AI model {name}" + (f" v{version}" if version else "")
    if old is None:
        head = f"{label} is at status {new.upper()}"
    elif new in ("excellent", "good") and old not in ("excellent", "good"):
        head = f"{label} is back to {new.upper()} (was {old.upper()})"
    else:
        head = f"{label} changed status from {old.upper()} to {new.upper()}"
    text = head + (f": {issues}" if issues else ".")
    if new == "error":
        text += (
            f" Recommendation: do not rely on this model's results until the issue is "
            f"resolved; details with `noctis-lab ai status {name}`."
        )
    elif new == "warning":
        text += f" Recommendation: review `noctis-lab ai status {name}` before the next use."
    return text


def ai_change(previous: str | None, current: str, levels: Iterable[str]) -> bool:
    """Whether a model's status change is worth a message.

    Parameters
    ----------
    previous : str or None
        The last status seen (None: the model was never seen).
    current : str
        Its status now.
    levels : iterable of str
        The statuses worth a message (:meth:`AlertConfig.ai_levels`).

    Returns
    -------
    bool
        No change: False. First sighting: True when ``current`` is at an alert level.
        A change: True when either side is at an alert level (entering, moving within,
        or leaving the alert levels).
    """
    lv = set(levels)
    if previous == current:
        return False
    if previous is None:
        return current in lv
    return previous in lv or current in lv


# --------------------------------------------------------------------------- study links
def _study_uid(source: str, series_uid: str) -> str | None:
    """The StudyInstanceUID of ``series_uid`` in the DICOM at ``source``, if found.

    Read by the loader (:func:`noctis_lab.dicom.list_series`: its zip-bomb and size
    limits, its skipping of non-DICOM files); ``series_uid`` may join the series of
    one acquisition with ``+``.
    """
    from noctis_lab.dicom import list_series

    try:
        infos = list_series(source)
    except (NoctisError, OSError):
        return None
    wanted = set(series_uid.split("+")) if series_uid else set()
    for info in infos:
        if info.study_uid and (not wanted or info.uid in wanted):
            return info.study_uid
    return None


def _open_path(config: AlertConfig, root: Path) -> str:
    candidates = (
        [config.open_path] if config.open_path else [HU_NOTEBOOK, f"notebooks/{HU_NOTEBOOK}"]
    )
    for c in candidates:
        if c and (root / c).is_file():
            return c
    return ""


def _study_link(
    result: CalibrationResult,
    record_id: int | None,
    config: AlertConfig,
    root: Path,
    study_uid: str | None = None,
) -> dict[str, str] | None:
    uid = study_uid or result.study_uid or _study_uid(result.source, result.series_uid)
    if not uid:
        return None
    sc = result.scanner
    desc = f"{result.phantom_title} QA — {sc.station or sc.model or sc.key}, {_qa_date(result)}"
    if record_id is not None:
        desc += f" (record {record_id})"
    link = {"study_uid": uid, "description": desc, "series_uid": result.series_uid}
    path = _open_path(config, root)
    if path:
        link["open_path"] = path
    return link


# --------------------------------------------------------------------------- posting
def _announce(
    store: _Store | None,
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
    except _Taken:
        return make("already_posted")
    except ImportError as exc:
        return make("failed", error=f"the chat extension (noctis_rooms) is not installed: {exc}")
    except (NoctisError, OSError) as exc:
        return make("failed", error=f"{type(exc).__name__}: {exc}")
    return make("posted" if post else "noted", mid)


def _calibration_alert(
    store: _Store | None,
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
    return _announce(
        store,
        kind="calibration",
        rows=[{"key": str(record_id), "value": result.status}],
        subject=result.scanner.key,
        room=config.rooms.hu,
        text=text,
        link=_study_link(result, record_id, config, root, study_uid),
        root=root,
        dry_run=dry_run,
    )


def _sweep_calibrations(
    store: _Store,
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
        out.append(_calibration_alert(store, rec, rec.result, rid, config, root, dry_run=dry_run))
    return out


def _sweep_drift(
    store: _Store,
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
            _announce(
                store,
                kind="drift",
                rows=rows,
                subject=str(scanner),
                room=config.rooms.drift,
                text=_drift_text(rec.result, fresh),
                link=_study_link(rec.result, rec.id, config, root),
                root=root,
                dry_run=dry_run,
            )
        )
    return out


def _sweep_ai(
    store: _Store,
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
        text = _ai_text(name, str(row.version or ""), previous, status, str(row.issues or ""))
        out.append(
            _announce(
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


def _state_url(history: CalibrationHistory | None, db_url: str | None) -> str:
    if db_url is not None:
        return db_url
    if history is not None:
        return str(history._engine.url.render_as_string(hide_password=False))
    return _paths.db_url()


def _as_utc(now: datetime | None) -> datetime:
    if now is None:
        return _utcnow()
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
    store: _Store | None = None
    try:
        store = _Store(_state_url(hist, db_url))
        cutoff = ref - timedelta(days=cfg.lookback_days)
        recs = hist.records(current_only=True)
        if cfg.rooms.hu is not None:
            alerts += _sweep_calibrations(store, hist, recs, cfg, root, cutoff, dry_run)
        else:
            notes.append("calibrations not checked: rooms.hu is null")
        if cfg.rooms.drift is not None:
            alerts += _sweep_drift(store, hist, recs, cfg, root, cutoff, dry_run)
        else:
            notes.append("drift not checked: rooms.drift is null")
        if cfg.rooms.ai is not None:
            ai_alerts, ai_notes = _sweep_ai(
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
    store = _Store(db_url if db_url is not None else _paths.db_url())
    try:
        return _calibration_alert(
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
