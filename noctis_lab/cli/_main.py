"""The dispatcher of the ``noctis-lab`` command.

It builds the parser from the command modules' ``register`` functions, runs the
handler the arguments chose under the located home, and turns a refusal into one
line on stderr and exit 2. It knows nothing of any command beyond its ``register``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from noctis_lab import _paths
from noctis_lab._errors import NoctisError
from noctis_lab._version import __version__
from noctis_lab.cli import (
    _ai,
    _alerts,
    _dashboards,
    _demo,
    _doctor,
    _hu,
    _lab,
    _mlflow,
    _report,
    _schedule,
    _services,
    _verify,
)
from noctis_lab.cli._args import Register, Subparsers

__all__ = ["build_parser", "main"]

#: Each command's ``register``, in the order ``noctis-lab --help`` lists them.
_COMMANDS: tuple[Register, ...] = (
    _demo.register,
    _doctor.register,
    _hu.register,
    _ai.register,
    _report.register,
    _schedule.register,
    _dashboards.register,
    _lab.register,
    _alerts.register,
    _mlflow.register,
    _services.register,
    _verify.register,
)


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line on stderr and exit 2, like every other refusal."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` and the way to the help as one line; exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser: every command, as its module registers it.

    Returns
    -------
    argparse.ArgumentParser
        The ``noctis-lab`` parser; a parsed command carries its ``handler``.
    """
    parser = _Parser(
        prog="noctis-lab",
        description="Noctis Lab: CT HU quality assurance and AI verification.",
    )
    parser.add_argument("--version", action="version", version=f"noctis-lab {__version__}")
    # The commands' parsers are _Parser too (one-line errors); register takes the plain type.
    sub = cast("Subparsers", parser.add_subparsers(dest="command", metavar="COMMAND"))
    for register in _COMMANDS:
        register(sub)
    return parser


def _command(parser: argparse.ArgumentParser, args_list: list[str]) -> str | None:
    """The command the arguments name (the first word, when it is one), else None."""
    first = next((a for a in args_list if not a.startswith("-")), None)
    names = {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }
    return first if first in names else None


def _refuse(args_list: list[str], command: str | None, message: str) -> int:
    """Print why the command could not run, as one line on stderr; return 2."""
    words = list(itertools.takewhile(lambda a: not a.startswith("-"), args_list))[:2]
    where = " ".join(["noctis-lab", *words]) if command else "noctis-lab"
    text = " | ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"{where}: error: {text}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    The command runs under the located home (:func:`noctis_lab._paths.pinned_home`),
    so the processes it starts find the same data whatever their working folder;
    a command that reports how the home was found (``doctor``) sets ``pin_home=False``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 when the command ran, 2 when it could not (one line on
        stderr), 130 on Ctrl-C, or what the command returned.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    command: str | None = None
    try:
        parser = build_parser()
        command = _command(parser, args_list)
        args = parser.parse_args(args_list)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0 if command is None else 2
        if not getattr(args, "pin_home", True):
            return int(handler(args) or 0)
        with _paths.pinned_home():
            return int(handler(args) or 0)
    except NoctisError as exc:
        return _refuse(args_list, command, str(exc))
    except OSError as exc:  # the file system or the network refused: say which
        what = f"{exc.filename}: " if exc.filename else ""
        return _refuse(args_list, command, f"{what}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
