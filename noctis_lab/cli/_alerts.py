"""``noctis-lab alerts``: post QA alerts to chat rooms (schedulable), show the config.

Exit status: 0 when the command ran (alerts that could not be posted are listed on
stderr and retried by the next run); 2 when it could not run (bad configuration,
unreachable database: ``noctis_lab.cli.main`` prints the error in one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from noctis_lab.cli._args import Subparsers

__all__ = ["register"]


def _check_handler(args: argparse.Namespace) -> int:
    from noctis_lab.alerts import check_and_post, load_config

    config = load_config(args.config) if args.config else load_config()
    run = check_and_post(
        config=config,
        dry_run=args.dry_run,
        db_url=args.db,
        tracking_uri=args.tracking_uri,
    )
    if args.json:
        print(run.to_json())
    else:
        verb = "would post" if run.dry_run else "posted"
        print(
            f"alerts {run.checked_at}: {verb} {len(run.posted)}, skipped {len(run.skipped)}, "
            f"failed {len(run.failed)} (chat root {run.chat_root})"
        )
        for a in run.posted:
            print(f"  [{a.kind}] -> {a.room}: {a.text}")
        for note in run.notes:
            print(f"  note: {note}")
    for a in run.failed:
        print(f"noctis-lab alerts: not posted to {a.room} ({a.kind} {a.key}): {a.error}",
              file=sys.stderr)  # fmt: skip
    return 0


def _config_handler(args: argparse.Namespace) -> int:
    from noctis_lab.alerts import config_path, load_config

    path = config_path() if not args.config else None
    config = load_config(args.config) if args.config else load_config()
    source = args.config or (str(path) if path is not None and path.is_file() else None)
    d: dict[str, Any] = {"source": source, **config.to_dict()}
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"# alerts config from {source or 'built-in defaults (no alerts.json)'}")
    print(json.dumps(d, indent=2))
    return 0


def register(subparsers: Subparsers) -> None:
    """Add the ``alerts`` command (``check``, ``config``) to the top-level parser."""
    p = subparsers.add_parser(
        "alerts",
        help="post QA alerts to chat rooms",
        description=(
            "The QA bot: post HU calibration failures, drift alarms and AI model status "
            "changes to chat rooms, each once. Configuration: $NOCTIS_ALERTS or "
            "<NOCTIS_HOME>/alerts.json."
        ),
    )
    sub = p.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")

    def _help(_args: argparse.Namespace) -> int:
        p.print_help(sys.stdout)
        return 0

    p.set_defaults(handler=_help)
    c = sub.add_parser(
        "check",
        help="post what is new since the last run (schedule it, e.g. every 15 minutes)",
        description=(
            "Sweep the calibration history and the AI models; post each new calibration "
            "failure, drift alarm and AI status change once. Exit 0 when it ran."
        ),
    )
    c.add_argument("--dry-run", action="store_true", help="show what would be posted; post nothing")
    c.add_argument("--json", action="store_true", help="print the run as JSON")
    c.add_argument("--config", help="alerts config file (default: $NOCTIS_ALERTS or alerts.json)")
    c.add_argument(
        "--db-url", dest="db", metavar="URL", help="database URL (default: $NOCTIS_DB_URL)"
    )
    c.add_argument("--db", dest="db", help=argparse.SUPPRESS)  # the old spelling
    c.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or mlflow/)")
    c.set_defaults(handler=_check_handler)
    g = sub.add_parser(
        "config",
        help="print the effective alerts configuration",
        description="Print the alerts configuration in effect (file values over defaults).",
    )
    g.add_argument("--config", help="alerts config file (default: $NOCTIS_ALERTS or alerts.json)")
    g.add_argument("--json", action="store_true", help="print JSON only")
    g.set_defaults(handler=_config_handler)
