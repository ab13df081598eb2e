"""The QA bot's configuration: :class:`AlertConfig` from ``alerts.json`` or ``$NOCTIS_ALERTS``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from noctis_lab import _paths
from noctis_lab._errors import ReportError

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "AlertConfig",
    "AlertRooms",
    "config_path",
    "configured",
    "load_config",
]

#: The default configuration file name, under the project home.
CONFIG_NAME = "alerts.json"

#: Environment variable naming another configuration file.
CONFIG_ENV = "NOCTIS_ALERTS"

_AI_LEVELS = {
    "fail": ("error",),
    "review": (),
    "warning": ("warning",),
    "pass": ("excellent", "good"),
}


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
