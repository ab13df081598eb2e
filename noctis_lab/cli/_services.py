"""``noctis-lab services up|status|down|env``: PostgreSQL and an MLflow server for a team."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from noctis_lab.cli._args import Subparsers

__all__ = ["register"]

_DIR_HELP = "state folder (default: <home>/services; see `noctis-lab doctor`)"


def _print_report(report: Any, args: argparse.Namespace, headline: str) -> None:
    if args.json:
        print(report.to_json())
        return
    print(headline)
    for svc in (report.postgres, report.mlflow):
        where = f"{svc.url}" if svc.url else "not set up"
        state = f"running (pid {svc.pid})" if svc.running else "stopped"
        print(f"  {svc.name:<10} {state:<22} {where}  log: {svc.log}")


def _up(args: argparse.Namespace) -> int:
    from noctis_lab.services import services_up

    report = services_up(
        args.dir,
        pg_port=args.pg_port,
        mlflow_port=args.mlflow_port,
        workers=args.workers,
        run_as=args.run_as,
        timeout=args.timeout,
        progress=None if args.json else lambda msg: print(msg, file=sys.stderr),
    )
    if report.actions:
        headline = f"services up in {report.directory} ({', '.join(report.actions)})"
    else:
        headline = f"services already up in {report.directory}"
    _print_report(report, args, headline)
    if not args.json:
        print("\nUse these settings (credentials in credentials.json, mode 0600):")
        print("\n".join(report.env_lines()))
    return 0


def _status(args: argparse.Namespace) -> int:
    from noctis_lab.services import services_status

    report = services_status(args.dir)
    word = "up" if report.up else "down" if report.down else "partly up"
    _print_report(report, args, f"services {word} in {report.directory}")
    return 0 if report.up else 3


def _down(args: argparse.Namespace) -> int:
    from noctis_lab.services import services_down

    report = services_down(args.dir, timeout=args.timeout)
    if report.actions:
        headline = f"services stopped in {report.directory} ({', '.join(report.actions)})"
    else:
        headline = f"services were already down in {report.directory}"
    _print_report(report, args, headline)
    return 0 if report.down else 1


def _env(args: argparse.Namespace) -> int:
    from noctis_lab._errors import ServiceError
    from noctis_lab.services import services_status

    report = services_status(args.dir)
    if not report.env:
        raise ServiceError(f"{report.directory}: no services were set up here")
    print("\n".join(report.env_lines(export=args.export)))
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``services`` and its subcommands to the ``noctis-lab`` parser."""
    p = subparsers.add_parser(
        "services",
        help="shared PostgreSQL and MLflow server for a team (up/status/down/env)",
        description=(
            "Shared services for a team on one machine, on 127.0.0.1 only: a PostgreSQL "
            "server (calibration history and AI analyses; password authentication, "
            "generated passwords in DIR/credentials.json) and an MLflow tracking server on "
            "it. `up` is idempotent; `down` stops both cleanly."
        ),
    )
    sub = p.add_subparsers(dest="services_command", metavar="ACTION")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dir", default=None, help=_DIR_HELP)
        sp.add_argument("--json", action="store_true", help="print the report as JSON")

    up = sub.add_parser(
        "up",
        help="start PostgreSQL and the MLflow server (initialise on first run)",
        description=(
            "Start (and on first run initialise) PostgreSQL and the MLflow tracking server, "
            "then print the NOCTIS_DB_URL and MLFLOW_TRACKING_URI to use. Ports default to "
            "the ones used before, else free ones."
        ),
    )
    common(up)
    up.add_argument("--pg-port", type=int, default=None, help="PostgreSQL port on 127.0.0.1")
    up.add_argument("--mlflow-port", type=int, default=None, help="MLflow port on 127.0.0.1")
    up.add_argument(
        "--workers", type=int, default=2, help="MLflow server workers (default: %(default)s)"
    )
    up.add_argument(
        "--run-as",
        default=None,
        help="when root: account running PostgreSQL (default: postgres, else nobody)",
    )
    up.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait per server (default: 120)"
    )
    up.set_defaults(handler=_up)

    st = sub.add_parser("status", help="show what runs (exit 0 up, 3 otherwise)")
    common(st)
    st.set_defaults(handler=_status)

    down = sub.add_parser("down", help="stop the MLflow server and PostgreSQL")
    common(down)
    down.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait per server (default: 60)"
    )
    down.set_defaults(handler=_down)

    env = sub.add_parser(
        "env", help='print the settings (eval "$(noctis-lab services env --export)")'
    )
    env.add_argument("--dir", default=None, help=_DIR_HELP)
    env.add_argument("--export", action="store_true", help="print shell `export` lines")
    env.set_defaults(handler=_env)
