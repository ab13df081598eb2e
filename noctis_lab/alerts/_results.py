"""What a run of the QA bot gives: one :class:`Alert` per message, an :class:`AlertRun`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


__all__ = ["ALERT_KINDS", "OUTCOMES", "Alert", "AlertRun", "Kind", "Outcome"]

#: The kinds of alert, as stored in ``alerts_posted.kind``.
ALERT_KINDS: tuple[str, ...] = ("calibration", "drift", "ai_status")

#: What happened to an alert in a run.
OUTCOMES: tuple[str, ...] = ("posted", "dry_run", "already_posted", "noted", "failed")

Kind = Literal["calibration", "drift", "ai_status"]

Outcome = Literal["posted", "dry_run", "already_posted", "noted", "failed"]


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
