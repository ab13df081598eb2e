"""``noctis-lab hu history`` and ``noctis-lab hu trend``.

The ``hu`` command's module (:mod:`noctis_lab.cli._hu`) calls :func:`register` with
its subparsers. Heavy imports (SQLAlchemy, pandas, matplotlib) happen inside the
handlers, so building the parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from noctis_lab.cli._args import Subparsers

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["register"]

_SCANNER_HELP = "scanner: key (manufacturer/model/serial), serial or station name"


def _frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (times ISO 8601, NaN/NA as null)."""
    return list(json.loads(df.to_json(orient="records", date_format="iso")))


def _print_frame(df: pd.DataFrame, columns: list[str]) -> None:
    import pandas as pd

    view = df[[c for c in columns if c in df.columns]].copy()
    for col in view.columns:
        if isinstance(view[col].dtype, pd.DatetimeTZDtype):
            view[col] = view[col].dt.strftime("%Y-%m-%d %H:%M")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(view.to_string(index=False))


def _scanner_key(history: Any, text: str) -> str:
    """The key of the scanner named by its key, serial, station name or label."""
    from noctis_lab.reports._dashboard_data import resolve_scanner

    return resolve_scanner(history, text)


def _add_db_url(p: argparse.ArgumentParser) -> None:
    """``--db-url`` as in every command (``--db``: the old spelling, hidden)."""
    help_text = "history database URL (default: $NOCTIS_DB_URL, else the home's data/noctis.db)"
    p.add_argument("--db-url", dest="db", metavar="URL", help=help_text)
    p.add_argument("--db", dest="db", help=argparse.SUPPRESS)


def _history_handler(args: argparse.Namespace) -> int:
    from noctis_lab.hu.history import CalibrationHistory

    scanner = args.scanner if args.scanner is not None else args.scanner_option
    with CalibrationHistory(args.db, overdue_after_days=args.overdue_days) as history:
        if scanner is None:
            df = history.scanners()
            if args.json:
                print(json.dumps({"db": history.url, "scanners": _frame_records(df)}, indent=2))
                return 0
            if df.empty:
                print(f"No calibration recorded yet in {history.url}.")
                return 0
            _print_frame(
                df,
                [
                    "station",
                    "scanner",
                    "n_records",
                    "last_calibration",
                    "latest_status",
                    "decision",
                    "days_since",
                    "overdue",
                    "drift_alarm",
                ],
            )
            for msg in df.loc[df["drift_alarm"], "drift"]:
                print(f"DRIFT: {msg}")
            return 0
        key = _scanner_key(history, scanner)
        records = history.records(scanner=key, phantom=args.phantom)
        if records.empty:
            # Let the history name the scanners it knows.
            history.latest(key)
        if args.limit is not None:
            records = records.tail(args.limit)
        if args.json:
            print(json.dumps({"db": history.url, "records": _frame_records(records)}, indent=2))
            return 0
        _print_frame(
            records,
            [
                "id",
                "time",
                "phantom",
                "status",
                "decision",
                "kind",
                "supersedes",
                "operator",
                "notes",
            ],
        )
        return 0


def _trend_handler(args: argparse.Namespace) -> int:
    from noctis_lab.hu._drift import drift_from_trend
    from noctis_lab.hu.history import CalibrationHistory, plot_trend

    params: dict[str, Any] = {"method": args.method}
    if args.baseline_n is not None:
        params["baseline_n"] = args.baseline_n
    with CalibrationHistory(args.db) as history:
        key = _scanner_key(history, args.scanner)
        df = history.trend(key, material=args.material, phantom=args.phantom)
    drifts = drift_from_trend(df, **params)
    if args.plot is not None:
        fig = plot_trend(df, **params)
        try:
            fig.savefig(args.plot, dpi=110)
        except (OSError, ValueError) as exc:
            from noctis_lab._errors import HistoryError

            raise HistoryError(f"cannot write the trend plot to {args.plot}: {exc}") from exc
    if args.json:
        payload = {
            "scanner": key,
            "trend": _frame_records(df),
            "drift": [d.to_dict() for d in drifts],
            "plot": args.plot,
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    _print_frame(
        df,
        [
            "time",
            "record_id",
            "phantom",
            "module",
            "roi",
            "material",
            "nominal",
            "mean",
            "deviation",
            "low",
            "high",
            "status",
        ],
    )
    for d in drifts:
        print(("DRIFT: " if d.alarm else "") + d.message)
    if args.plot is not None:
        print(f"Trend plot written to {args.plot}", file=sys.stderr)
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``history`` and ``trend`` to the ``hu`` command's subparsers."""
    p = subparsers.add_parser(
        "history",
        help="scanners' calibration status, or one scanner's records",
        description=(
            "Without SCANNER: one line per scanner (latest status, last calibration, "
            "overdue, drift alarm). With SCANNER: that scanner's records, oldest first."
        ),
    )
    p.add_argument("scanner", nargs="?", metavar="SCANNER", help=_SCANNER_HELP)
    p.add_argument("--scanner", dest="scanner_option", help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--phantom", help="only records of this phantom")
    p.add_argument("--limit", type=int, help="only the newest N records")
    p.add_argument(
        "--overdue-days",
        type=float,
        default=35.0,
        help="days after the last calibration before a scanner is overdue (default 35)",
    )
    _add_db_url(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_history_handler)

    t = subparsers.add_parser(
        "trend",
        help="one scanner's HU over time, with drift detection",
        description=(
            "Per-ROI HU over time for SCANNER (corrections replace the records they "
            "supersede) and a drift verdict per material against the scanner's baseline."
        ),
    )
    t.add_argument("scanner", metavar="SCANNER", help=_SCANNER_HELP)
    t.add_argument("--material", help="only this material (e.g. Teflon)")
    t.add_argument("--phantom", help="only this phantom")
    t.add_argument("--method", choices=["cusum", "ewma"], default="cusum", help="drift detector")
    t.add_argument("--baseline-n", type=int, help="baseline size when none is marked (default 10)")
    t.add_argument("--plot", metavar="FILE", help="write the trend plot (PNG, SVG, PDF)")
    _add_db_url(t)
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(handler=_trend_handler)
