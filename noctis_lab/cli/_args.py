"""What every command module shares: the type of ``register``'s argument, lazy defaults."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

__all__ = ["HomeDefault", "Register", "Subparsers"]

#: What ``register`` receives: the subparsers action of the parser one level up
#: (``noctis-lab`` for a command, ``noctis-lab hu`` for ``hu history`` and ``hu batch``).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: The one signature of every command module's ``register``.
Register: TypeAlias = Callable[[Subparsers], None]


@dataclass(frozen=True)
class HomeDefault:
    """A default path under the Noctis home, located only when it is used.

    Every command is registered on each run, so a default that needs the home (for
    instance ``<home>/reports``) must not locate it at registration: a broken home
    config would then stop every command, ``doctor`` (which reports it) included.
    The path is found when the help shows it (``%(default)s``) or the command opens it
    (:class:`os.PathLike`).

    Parameters
    ----------
    find : callable
        Returns the path (e.g. :func:`noctis_lab._paths.demo_dir`).
    """

    find: Callable[[], Path]

    def __fspath__(self) -> str:
        """The path, located now."""
        return str(self.find())

    def __str__(self) -> str:
        """The path as text (what ``%(default)s`` shows)."""
        return self.__fspath__()
