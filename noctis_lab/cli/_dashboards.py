"""``noctis-lab dashboards``: serve the Voila dashboards on 127.0.0.1 with a token."""

from __future__ import annotations

import argparse
import sys

from noctis_lab.cli._args import Subparsers

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from noctis_lab.reports._voila import DASHBOARDS, start_voila

    server = start_voila(
        args.notebooks,
        port=args.port or None,
        token=args.token,
        preheat=args.preheat,
        pool_size=args.pool_size,
        log=args.log,
        wait_s=args.wait,
    )
    print(f"Voila is serving {len(DASHBOARDS)} dashboards (Ctrl-C stops it):", file=sys.stderr)
    for name, what in DASHBOARDS.items():
        print(f"  {what}:", file=sys.stderr)
        print(f"    {server.url(name)}")
    sys.stdout.flush()
    try:
        return int(server.process.wait() or 0)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


def register(subparsers: Subparsers) -> None:
    """Add ``dashboards``."""
    p = subparsers.add_parser(
        "dashboards",
        help="serve the Voila dashboards",
        description=(
            "Serve notebooks/dashboards with Voila (our offline template) on 127.0.0.1 with a "
            "token; each page view runs its own kernel. Inside JupyterLab the same dashboards "
            "are at /voila/render/notebooks/dashboards/<name>.ipynb."
        ),
    )
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--token", help="access token (default: a random one)")
    p.add_argument(
        "--preheat",
        action="store_true",
        help=(
            "keep kernels that ran each dashboard in advance (faster first view; Voila 0.5 "
            "hands out a pre-run that stalled or failed and the page stays at 'Running ...')"
        ),
    )
    p.add_argument("--pool-size", type=int, default=1, help="with --preheat: kernels per dashboard")
    p.add_argument("--no-preheat", action="store_false", dest="preheat", help=argparse.SUPPRESS)
    p.add_argument("--notebooks", help="folder to serve (default: notebooks/dashboards)")
    p.add_argument("--log", help="write Voila's log to this file")
    p.add_argument("--wait", type=float, default=90.0, help="seconds to wait for the server")
    p.set_defaults(handler=_run)
