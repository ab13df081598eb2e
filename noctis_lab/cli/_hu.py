"""``noctis-lab hu``: analyse a phantom series, list phantoms and profiles.

Subcommands are registered by the functions in :data:`_REGISTRARS` on one
subparsers group; ``hu history``, ``hu trend`` (:mod:`noctis_lab.cli._hu_history`) and
``hu batch`` (:mod:`noctis_lab.cli._hu_batch`) register there with the same
``register(subparsers)`` as every command. Heavy imports happen inside the handlers.

Exit status: 0 when a command ran (whatever the verdict of an analysis); 2 when
it could not (``noctis_lab.cli.main`` prints the error in one line).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import warnings
from typing import Any

from noctis_lab._errors import HistoryError
from noctis_lab.cli import _hu_batch, _hu_history
from noctis_lab.cli._args import Register, Subparsers

__all__ = ["register"]


def _read_baseline(path: str | None) -> Any:
    if path is None:
        return None
    from pathlib import Path

    from noctis_lab._errors import ProfileError
    from noctis_lab.hu._result import CalibrationResult

    p = Path(path)
    try:
        return CalibrationResult.from_json(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProfileError(f"--baseline {p} cannot be read: {exc}") from None


def _phantom_series(
    args: argparse.Namespace, baseline: Any
) -> tuple[list[tuple[Any, Any]], list[str]]:
    """Analyse the series asked for, or every acquisition of a multi-series folder.

    Returns (result, volume) pairs — the volume kept only when ``--plot`` needs it, so the
    series is not read twice — and one line per acquisition skipped, with why.
    """
    from noctis_lab._errors import AmbiguousSeriesError, PhantomNotFoundError
    from noctis_lab.dicom import list_acquisitions, load_series
    from noctis_lab.hu._analyze import analyze

    centre = (args.centre[0], args.centre[1]) if args.centre is not None else None
    manual = {"slice": args.slice, "centre": centre, "roll": args.roll}

    def run(volume: Any) -> tuple[Any, Any]:
        result = analyze(
            volume, phantom=args.phantom, profile=args.profile, baseline=baseline, **manual
        )
        return result, (volume if args.plot is not None else None)

    if args.series:
        return [run(load_series(args.path, series_uid=args.series))], []
    try:
        volume = load_series(args.path)
    except AmbiguousSeriesError:
        pass
    else:
        return [run(volume)], []
    results, skipped = [], []
    for acq in list_acquisitions(args.path):
        uids = [s.uid for s in acq]
        label = " + ".join(f"{s.uid} ({s.description or 'no description'})" for s in acq)
        try:
            results.append(run(load_series(args.path, series_uid=uids)))
        except PhantomNotFoundError as exc:
            skipped.append(f"{label}: {exc}")
    if not results:
        raise PhantomNotFoundError(
            f"no phantom in any of the {len(skipped)} CT acquisitions of {args.path} "
            f"({'; '.join(skipped)}); choose one with --series UID"
        )
    return results, skipped


def _analyze_handler(args: argparse.Namespace) -> int:
    baseline = _read_baseline(args.baseline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analysed, skipped = _phantom_series(args, baseline)
    # warnings about the files (a slice gap, a malformed tag) become one line each,
    # and only when the command ran: an error stays the one line that explains it
    for text in dict.fromkeys(str(w.message).splitlines()[0] for w in caught):
        print(f"noctis-lab hu analyze: note: {text}", file=sys.stderr)
    for line in skipped:
        print(f"noctis-lab hu analyze: skipped {line}", file=sys.stderr)
    results = [result for result, _ in analysed]
    outputs = [_record_and_plot(args, result, volume) for result, volume in analysed]
    if args.json:
        docs = [d for d, _ in outputs]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        return 0
    for result, (_, lines) in zip(results, outputs, strict=True):
        if len(results) > 1:
            print(f"\n=== series {result.series_uid}")
        _print_result(result)
        for line in lines:
            print(line)
    return 0


def _record_and_plot(
    args: argparse.Namespace, result: Any, volume: Any
) -> tuple[dict[str, Any], list[str]]:
    """Record and plot one result as asked; its JSON document and the lines to print."""
    lines: list[str] = []
    record_id = None
    if args.record:
        try:
            from noctis_lab.hu.history import CalibrationHistory
        except ImportError as exc:  # pragma: no cover - the history module ships with hu
            raise HistoryError(f"the calibration history is not available: {exc}") from None
        operator = args.operator or getpass.getuser()
        history = CalibrationHistory(args.db) if args.db else CalibrationHistory()
        try:
            existing = history.recorded_as(result)  # same series, phantom and profile
            record_id = existing
            if existing is None:
                record_id = history.record(result, operator=operator, notes=args.notes or "")
        finally:
            close = getattr(history, "close", None)
            if callable(close):
                close()
        if existing is not None:
            lines.append(
                f"\nalready recorded as history record {existing} (same series, phantom and "
                "profile): nothing stored"
            )
        elif record_id is not None:
            lines.append(f"\nrecorded as history record {record_id}")
            alert_note = _post_alert(result, record_id, args.db)
            if alert_note is not None:
                lines.append(alert_note)
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        fig = result.plot_slice(volume)
        fig.savefig(args.plot, dpi=110)
        lines.append(f"overlay written to {args.plot}")
    d = json.loads(result.to_json())
    if record_id is not None:
        d["record_id"] = record_id
    return d, lines


def _post_alert(result: Any, record_id: int, db: str | None) -> str | None:
    """Announce the recorded calibration to the QA room when alerts are configured.

    Returns a line saying where it was posted. The record is stored either way: a
    failure to post is a note on stderr (``noctis-lab alerts check`` retries it).
    """
    from noctis_lab import alerts
    from noctis_lab._errors import NoctisError

    if not alerts.configured():
        return None
    try:
        alert = alerts.notify_calibration(result, record_id, db_url=db)
    except NoctisError as exc:
        print(f"noctis-lab hu analyze: alert not posted: {exc}", file=sys.stderr)
        return None
    if alert is not None and alert.outcome == "failed":
        print(f"noctis-lab hu analyze: alert not posted: {alert.error}", file=sys.stderr)
    elif alert is not None and alert.outcome == "posted":
        return f"alert posted to {alert.room}"
    return None


def _print_result(result: Any) -> None:
    sc = result.scanner
    print(f"{result.phantom_title} — profile {result.profile} v{result.profile_version}")
    print(f"scanner {sc.key}  kVp {sc.kvp}  kernel {sc.convolution_kernel or '-'}")
    print(f"source {result.source}")
    print(f"STATUS: {result.status.upper()}\n")
    print(
        f"{'module':8} {'ROI':12} {'material':18} {'nominal':>8} {'mean':>9} {'SD':>6} "
        f"{'SEM':>5} status"
    )
    for r in result.rois:
        nom = "" if r.nominal_hu is None else f"{r.nominal_hu:8.0f}"
        print(
            f"{r.module:8} {r.name:12} {r.material[:18]:18} {nom:>8} {r.mean:9.1f} "
            f"{r.sd:6.1f} {r.sem:5.2f} {r.status}"
        )
    print("\nchecks:")
    for c in result.checks:
        meas = "-" if c.measured is None else f"{c.measured:.3f}"
        print(f"  [{c.status:7}] {c.target}: {meas} {c.unit} (tolerance {c.tolerance})")
    print("\nrecommendations:")
    for line in result.recommendations:
        print(f"  - {line}")
    if result.status == "review":
        loc = result.localisation
        print(
            "\nto place the ROIs by hand: --slice N (reference module's central slice), "
            "--centre X Y (pixels), --roll DEG; found here: --slice "
            f"{loc.reference_slice} --centre {loc.centre_px[0]:.1f} {loc.centre_px[1]:.1f} "
            f"--roll {loc.roll_deg:.1f}"
        )


def _phantoms_handler(args: argparse.Namespace) -> int:
    from noctis_lab.hu._phantoms import list_phantoms, load_phantom

    rows: list[dict[str, Any]] = []
    for name in list_phantoms():
        ph = load_phantom(name)
        rows.append(
            {
                "name": ph.name,
                "title": ph.title,
                "reference_module": ph.reference_module,
                "modules": [m.name for m in ph.modules],
                "n_rois": sum(len(m.rois) for m in ph.modules),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(
            f"{r['name']:12} {r['title']:28} modules: {', '.join(r['modules'])} "
            f"({r['n_rois']} ROIs)"
        )
    return 0


def _profiles_handler(args: argparse.Namespace) -> int:
    from noctis_lab.hu._profiles import list_profiles, load_profile

    rows: list[dict[str, Any]] = []
    for name in list_profiles():
        p = load_profile(name)
        rows.append(
            {
                "name": p.name,
                "version": p.version,
                "title": p.title,
                "requires_baseline": p.requires_baseline,
                "criteria": [c.id for c in p.criteria],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        extra = " (needs --baseline)" if r["requires_baseline"] else ""
        print(
            f"{r['name']:13} v{r['version']:7} {r['title']}{extra}\n"
            f"{'':23}criteria: {', '.join(r['criteria'])}"
        )
    return 0


def _register_analyze(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a phantom series against a tolerance profile",
        description=(
            "Locate the phantom in a DICOM series, measure its ROIs and judge them against "
            "a tolerance profile. Exit status 0 whenever the analysis ran, whatever the "
            "verdict; 2 when it could not run."
        ),
    )
    p.add_argument(
        "path",
        help=(
            "folder, zip or file of the DICOM series; a folder with several series "
            "analyses every phantom acquisition in it (one series per module is read "
            "as one acquisition)"
        ),
    )
    p.add_argument(
        "--phantom",
        default="auto",
        help=(
            "phantom name or file (default: identified from the images; "
            "see 'noctis-lab hu phantoms')"
        ),
    )
    p.add_argument(
        "--profile",
        default=None,
        help=(
            "tolerance profile name or file (default: cbct for cone-beam series, else seed; "
            "see 'noctis-lab hu profiles')"
        ),
    )
    p.add_argument(
        "--series",
        action="append",
        metavar="UID",
        help="SeriesInstanceUID to analyse (repeat to read several series as one acquisition)",
    )
    p.add_argument(
        "--baseline",
        metavar="RESULT_JSON",
        help="baseline result (JSON from --json) for the 'baseline' profile",
    )
    p.add_argument("--slice", type=int, help="central slice index of the reference module")
    p.add_argument(
        "--centre",
        type=float,
        nargs=2,
        metavar=("X", "Y"),
        help="phantom centre in pixels (column, row)",
    )
    p.add_argument("--roll", type=float, help="phantom roll in degrees")
    p.add_argument("--record", action="store_true", help="store the result in the history")
    p.add_argument("--operator", help="who ran it (default: the login name)")
    p.add_argument("--notes", help="free text stored with --record")
    p.add_argument(
        "--db-url",
        dest="db",
        help="history database URL (default: NOCTIS_DB_URL, else the home's data/noctis.db)",
    )
    p.add_argument("--db", dest="db", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--plot", metavar="PNG", help="write the annotated slice to this file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_analyze_handler)


def _register_lists(sub: Any) -> None:
    p = sub.add_parser(
        "phantoms",
        help="list the built-in phantoms",
        description="List the built-in phantom definitions.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_phantoms_handler)
    q = sub.add_parser(
        "profiles",
        help="list the built-in tolerance profiles",
        description="List the built-in tolerance profiles and their criteria.",
    )
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(handler=_profiles_handler)


#: Functions that add subcommands to the ``hu`` subparsers group, in order.
_REGISTRARS: tuple[Register, ...] = (
    _register_analyze,
    _register_lists,
    _hu_history.register,
    _hu_batch.register,
)


def register(subparsers: Subparsers) -> None:
    """Add the ``hu`` command and its subcommands to the top-level parser."""
    p = subparsers.add_parser(
        "hu",
        help="HU phantom analysis and calibration history",
        description="HU phantom analysis, phantoms, tolerance profiles and calibration history.",
    )
    sub = p.add_subparsers(dest="hu_command", metavar="SUBCOMMAND")

    def _help(_args: argparse.Namespace) -> int:
        p.print_help(sys.stdout)
        return 0

    p.set_defaults(handler=_help)
    for reg in _REGISTRARS:
        reg(sub)
