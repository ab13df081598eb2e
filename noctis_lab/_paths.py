"""Where Noctis Lab keeps its files: one place for every default path and URL.

The *home* holds the calibration history (``data/``), the MLflow store (``mlflow/``),
the demo set and the reports. Every entry point (the command line, lab kernels, Voila,
papermill, cron) finds it the same way, first match wins:

1. ``$NOCTIS_HOME``;
2. a ``noctis.toml`` found in the working folder or any folder above it, as git finds
   ``.git`` (its folder is the home unless the file says ``home = "..."``);
3. the per-user data folder (``platformdirs``: ``~/.local/share/noctis-lab`` on Linux).

Finding the home creates nothing; folders and stores are made on first write.
``noctis.toml`` may also set ``db_url`` and ``mlflow_tracking_uri`` (the environment
variables ``NOCTIS_DB_URL`` and ``MLFLOW_TRACKING_URI`` still win).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from noctis_lab._errors import NoctisError

__all__ = [
    "CONFIG_NAME",
    "ConfigError",
    "Home",
    "HomeSource",
    "db_url",
    "demo_dir",
    "find_config",
    "home",
    "locate_home",
    "mlflow_tracking_uri",
    "pinned_home",
]

#: The config file that marks a folder (and everything below it) as one home.
CONFIG_NAME = "noctis.toml"
_KEYS = frozenset({"home", "db_url", "mlflow_tracking_uri"})
_APP = "noctis-lab"


class ConfigError(NoctisError, ValueError):
    """A ``noctis.toml`` that cannot be read."""


class HomeSource(StrEnum):
    """How the home was found."""

    ENV = "NOCTIS_HOME"
    CONFIG = "config file"
    USER = "per-user data folder"


@dataclass(frozen=True)
class Home:
    """The project home, how it was found, and the settings of its config file."""

    path: Path
    source: HomeSource
    config: Path | None = None
    settings: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: the folder and why it is the home."""
        if self.source is HomeSource.CONFIG:
            return f"{self.path} (from {self.config})"
        if self.source is HomeSource.ENV:
            return f"{self.path} (from $NOCTIS_HOME)"
        return f"{self.path} (the per-user data folder; no $NOCTIS_HOME, no {CONFIG_NAME})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "path": str(self.path),
            "source": self.source.value,
            "config": None if self.config is None else str(self.config),
            "settings": dict(self.settings),
        }


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``noctis.toml`` in ``start`` (default: the working folder) or above it."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _read_config(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the home config: {exc}") from exc
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    bad = sorted(k for k, v in data.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise ConfigError(f"{path}: {', '.join(bad)} must be a non-empty string")
    return {k: str(v).strip() for k, v in data.items()}


def _user_data_folder() -> Path:
    from platformdirs import user_data_path

    return Path(user_data_path(_APP, appauthor=False)).resolve()


def locate_home(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Home:
    """Find the home as described in the module docstring; creates nothing.

    Parameters
    ----------
    cwd : Path, optional
        Folder to search upward from (default: the working folder).
    environ : Mapping, optional
        Environment to read ``NOCTIS_HOME`` from (default: ``os.environ``).

    Raises
    ------
    ConfigError
        When the ``noctis.toml`` that decides the home cannot be read.
    """
    env = os.environ if environ is None else environ
    explicit = (env.get("NOCTIS_HOME") or "").strip()
    if explicit:
        path = Path(explicit).expanduser().resolve()
        own = path / CONFIG_NAME
        settings = _read_config(own) if own.is_file() else {}
        settings.pop("home", None)  # $NOCTIS_HOME already decided where the home is
        return Home(path, HomeSource.ENV, own if own.is_file() else None, settings)
    config = find_config(cwd)
    if config is not None:
        settings = _read_config(config)
        target = Path(settings.pop("home", ".")).expanduser()
        path = (target if target.is_absolute() else config.parent / target).resolve()
        return Home(path, HomeSource.CONFIG, config, settings)
    return Home(_user_data_folder(), HomeSource.USER)


def home() -> Path:
    """The project home folder (see the module docstring)."""
    return locate_home().path


@contextmanager
def pinned_home() -> Iterator[Home]:
    """Set ``$NOCTIS_HOME`` to the located home for the duration (restored afterwards).

    The command line runs under it, so every process it starts (lab and Voila kernels,
    papermill, MLflow) uses the same home whatever its working folder.
    """
    where = locate_home()
    old = os.environ.get("NOCTIS_HOME")
    os.environ["NOCTIS_HOME"] = str(where.path)
    try:
        yield where
    finally:
        if old is None:
            os.environ.pop("NOCTIS_HOME", None)
        else:
            os.environ["NOCTIS_HOME"] = old


def demo_dir() -> Path:
    """The demo data set: ``$NOCTIS_DEMO`` if set, else ``<home>/data/demo``."""
    env = os.environ.get("NOCTIS_DEMO")
    return Path(env).resolve() if env else home() / "data" / "demo"


def db_url() -> str:
    """The calibration/analysis database.

    ``$NOCTIS_DB_URL``, else ``db_url`` of the home's ``noctis.toml``, else SQLite in
    ``<home>/data/noctis.db``.
    """
    env = os.environ.get("NOCTIS_DB_URL", "").strip()
    if env:
        return env
    where = locate_home()
    return where.settings.get("db_url") or f"sqlite:///{where.path / 'data' / 'noctis.db'}"


def mlflow_tracking_uri() -> str:
    """The MLflow store.

    ``$MLFLOW_TRACKING_URI``, else ``mlflow_tracking_uri`` of the home's ``noctis.toml``,
    else SQLite in ``<home>/mlflow/mlflow.db``.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    where = locate_home()
    return where.settings.get("mlflow_tracking_uri") or (
        f"sqlite:///{where.path / 'mlflow' / 'mlflow.db'}"
    )
