"""The ``noctis-lab`` command.

Each area of the package contributes its own subcommands through a private
``_cli`` module exposing ``register(subparsers)``; they are imported only when
the command line names them, so ``noctis-lab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import sys
from collections.abc import Sequence
from typing import NoReturn

from noctis_lab import _paths
from noctis_lab._errors import NoctisError
from noctis_lab._version import __version__

__all__ = ["build_parser", "main"]

#: subcommand -> (module providing ``register``, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("noctis_lab._demo_cli", "write the demo data set (phantom series, history, models)"),
    "doctor": ("noctis_lab._doctor", "print versions and check the stack"),
    "hu": ("noctis_lab.hu._cli", "HU phantom analysis and calibration history"),
    "ai": ("noctis_lab.ai._cli", "AI model registry, checks, evaluation and status"),
    "report": ("noctis_lab.reports._cli", "run a papermill report to HTML"),
    "schedule": ("noctis_lab.reports._schedule_cli", "print or install report schedules"),
    "dashboards": ("noctis_lab.reports._dashboards_cli", "serve the Voila dashboards"),
    "lab": ("noctis_lab._lab", "start JupyterLab with collaboration and chat"),
    "alerts": ("noctis_lab._alerts_cli", "post QA alerts to chat rooms"),
    "mlflow": ("noctis_lab._mlflow_cli", "open the MLflow UI on the project's store (runs view)"),
    "services": (
        "noctis_lab._services_cli",
        "shared PostgreSQL and MLflow server for a team (up/status/down/env)",
    ),
    "verify": ("noctis_lab.records._cli", "check that no record was rewritten, deleted or moved"),
}


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line on stderr and exit 2, like every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    Only the subcommand named by ``only`` is imported and fully built; the others
    appear in the top-level help as one line each, so ``--help`` stays fast.
    """
    parser = _Parser(
        prog="noctis-lab",
        description="Noctis Lab: CT HU quality assurance and AI verification.",
    )
    parser.add_argument("--version", action="version", version=f"noctis-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _COMMANDS.items():
        if name == only:
            importlib.import_module(module).register(sub, name, help_text)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _refuse(args_list: list[str], command: str | None, message: str) -> int:
    """Print why the command could not run, as one line on stderr; return 2."""
    words = list(itertools.takewhile(lambda a: not a.startswith("-"), args_list))[:2]
    where = " ".join(["noctis-lab", *words]) if command else "noctis-lab"
    text = " | ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"{where}: error: {text}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    The whole run happens under the located home (:func:`noctis_lab._paths.pinned_home`),
    so the processes a command starts find the same data whatever their working folder.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_list if not a.startswith("-")), None)
    command = first if first in _COMMANDS else None
    try:
        parser = build_parser(command)
        args = parser.parse_args(args_list)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0 if args.command is None else 2
        if not getattr(args, "pin_home", True):  # e.g. doctor: reports how the home was found
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
