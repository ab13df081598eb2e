"""``noctis-lab ai register | check | evaluate | status | compare | demo``.

Contract: exit 0 whenever the command ran, whatever the verdict (an ``error`` status is a
result, printed); exit 2 with one line on stderr when it could not run (bad arguments, a
missing file, a malformed manifest...); never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import types
from collections.abc import Callable
from typing import Any, NoReturn

from noctis_lab._errors import ModelCheckError, NoctisError
from noctis_lab.cli._args import Subparsers

__all__ = ["register"]


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as a NoctisError: the CLI prints one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        raise ModelCheckError(f"{message} (see {self.prog} --help)")


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Any failure of a handler becomes one line (a NoctisError), never a traceback."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (NoctisError, KeyboardInterrupt):
            raise
        except Exception as exc:
            text = " ".join(str(exc).split())[:400] or type(exc).__name__
            raise ModelCheckError(f"ai {args.ai_command}: {text}") from None

    return run


def _thresholds(args: argparse.Namespace) -> Any:
    from noctis_lab.ai._status import StatusThresholds

    path = getattr(args, "thresholds", None)
    return None if path is None else StatusThresholds.from_file(path)


def _print(obj: Any, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(obj, indent=2, default=str))
    else:
        print(text)


def _cmd_register(args: argparse.Namespace) -> int:
    from noctis_lab.ai._registry import register_model
    from noctis_lab.ai._spec import ModelSpec

    spec = None
    if args.task is not None:
        spec = ModelSpec(
            task=args.task,
            format=args.format,
            factory=args.architecture,
            modality=args.modality,
            body_part=args.body_part,
            version=args.model_version,
            input_shape=tuple(args.input_shape),
            output_shape=tuple(args.output_shape),
            output_range=None if args.activation != "none" else (0.0, 1.0),
            activation=args.activation,
            classes=tuple(args.classes or ()),
            detection_output=args.detection_output,
        )
    mv = register_model(
        args.path, args.name, spec, alias=args.alias or None, tracking_uri=args.tracking_uri
    )
    _print(
        mv.to_dict(),
        args.json,
        f"registered {mv.name} version {mv.version} (sha256 {mv.spec.sha256}) "
        f"aliases: {', '.join(mv.aliases) or '-'}",
    )
    return 0


def _must_exist(ref: str, tracking_uri: str | None) -> None:
    """A model reference the command cannot run on is an error (exit 2), not a verdict.

    An existing file, or a registered name / ``name@alias`` / ``name/VERSION`` that
    resolves, passes; anything else raises naming the reference and why.

    Raises
    ------
    ModelCheckError
        ``ref`` is neither an existing file nor a registered model version.
    """
    from pathlib import Path

    from noctis_lab.ai._registry import resolve_model

    if Path(ref).is_file():
        return
    if Path(ref).is_dir():
        raise ModelCheckError(f"model {ref} is a directory, not a model file")
    try:
        resolve_model(ref, tracking_uri=tracking_uri)
    except ModelCheckError as exc:
        raise ModelCheckError(f"model {ref}: no such file, and {exc}") from None


def _must_exist_registered(ref: str, tracking_uri: str | None) -> None:
    """``ai status NAME`` on a name that is not registered cannot run (exit 2).

    Raises
    ------
    ModelCheckError
        No registered model, alias or version ``ref``.
    """
    from noctis_lab.ai._registry import resolve_model

    resolve_model(ref, tracking_uri=tracking_uri)


def _cmd_check(args: argparse.Namespace) -> int:
    from noctis_lab.ai._registry import check_model

    _must_exist(args.model, args.tracking_uri)
    report = check_model(args.model, tracking_uri=args.tracking_uri)
    lines = [f"{report.target}: file checks {report.status}"]
    lines += [f"  [{c.state:7}] {c.name}: {c.detail}" for c in report.checks]
    lines += [f"  issue ({i.severity}): {i.message}" for i in report.issues]
    payload = report.to_dict()
    if report.extra.get("registered"):
        from noctis_lab.ai._status import model_status

        st = model_status(
            report.extra["registered"],
            thresholds=_thresholds(args),
            tracking_uri=args.tracking_uri,
            db_url=args.db_url,
        )
        payload["model_status"] = st.status
        lines.append(
            f"  model status (the same as `ai status`): {st.status}"
            + (f" on test set {st.test_set}" if st.test_set else "")
        )
    _print(payload, args.json, "\n".join(lines))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from noctis_lab.ai._evaluate import evaluate

    res = evaluate(
        args.model,
        args.manifest,
        n_boot=args.n_boot,
        seed=args.seed,
        log_to_mlflow=not args.no_log,
        tracking_uri=args.tracking_uri,
    )
    lines = [
        f"{res.model_name} v{res.model_version} on {res.test_set['name']} "
        f"({res.test_set['n_cases']} cases), run {res.run_id or '-'}"
    ]
    for v in res.metrics.values.values():
        val = f"{v.value:.4f}" if v.value == v.value else "undefined"
        lines.append(f"  {v.name:24} {val}  [{v.ci_low:.4f}, {v.ci_high:.4f}]")
    _print(json.loads(res.to_json()), args.json, "\n".join(lines))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from noctis_lab.ai._registry import list_models
    from noctis_lab.ai._status import model_status

    th = _thresholds(args)
    if args.model:
        _must_exist_registered(args.model, args.tracking_uri)
    names = (
        [args.model]
        if args.model
        else [m.name for m in list_models(tracking_uri=args.tracking_uri)]
    )
    results = [
        model_status(
            n,
            test_set=args.test_set,
            thresholds=th,
            tracking_uri=args.tracking_uri,
            db_url=args.db_url,
        )
        for n in names
    ]
    lines = [] if results else ["no registered models"]
    for st in results:
        head = st.headline
        if head and head.get("value") is not None:
            hl = f"{head['name']} {head['value']:.3f} [{head['ci_low']:.3f}, {head['ci_high']:.3f}]"
        elif head:
            hl = f"{head['name']} undefined"
        else:
            hl = "not evaluated"
        on = f" on {st.test_set}" if st.test_set else ""
        lines.append(f"{st.name} v{st.version or '?'}: {st.status.upper()}  ({hl}{on})")
        lines += [f"  - {i.severity}: {i.message}" for i in st.issues]
    payload: Any = [s.to_dict() for s in results]
    if args.model:
        payload = payload[0]
    _print(payload, args.json, "\n".join(lines))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from noctis_lab.ai._status import compare_runs

    a = (args.version_a, args.test_set_a)
    b = (args.version_b, args.test_set_b or args.test_set_a)
    df = compare_runs(args.name, a, b, tracking_uri=args.tracking_uri)
    if len(df) == 0:
        raise ModelCheckError(
            f"{args.name}: no evaluation of version {a[0]} on {a[1]!r} or of version {b[0]} "
            f"on {b[1]!r} to compare"
        )
    text = [f"{args.name}: v{a[0]} on {a[1]} (a) vs v{b[0]} on {b[1]} (b)"]
    for r in df.itertuples():
        text.append(
            f"  {r.metric:24} a {r.a_value:.4f}  b {r.b_value:.4f}  b-a {r.difference:+.4f}"
            f"  {'CIs overlap' if r.cis_overlap else 'CIs apart'}"
        )
    _print(json.loads(df.to_json(orient="records")), args.json, "\n".join(text))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from noctis_lab.ai._demo import build_demo

    res = build_demo(
        args.out_dir, tracking_uri=args.tracking_uri, db_url=args.db_url, progress=not args.json
    )
    _print(res.to_dict(), args.json, f"AI demo written: {res.to_dict()}")
    return 0


def _common(sp: argparse.ArgumentParser) -> None:
    """The options every ``ai`` subcommand takes."""
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")


def register(subparsers: Subparsers) -> None:
    """Add ``noctis-lab ai`` and its subcommands."""
    p = subparsers.add_parser(
        "ai",
        help="AI model registry, checks, evaluation and status",
        description=(
            "Register, check and evaluate AI models; show their status. Models and runs live "
            "in MLflow ($MLFLOW_TRACKING_URI, else <NOCTIS_HOME>/mlflow). Exit 0 when the "
            "command ran (whatever the verdict), 2 when it could not."
        ),
    )

    def _help(_args: argparse.Namespace) -> int:
        p.print_help()
        return 0

    p.set_defaults(handler=_help)
    # errors of ``ai`` itself are one NoctisError line too, like its subcommands'
    p.error = types.MethodType(_OneLineParser.error, p)  # type: ignore[method-assign]
    sub = p.add_subparsers(dest="ai_command", metavar="ACTION", parser_class=_OneLineParser)
    _add_register(sub)
    _add_others(sub)


def _add_register(sub: Any) -> None:
    """``ai register`` and its model-spec options."""
    r = sub.add_parser("register", help="register a model file in the MLflow registry")
    r.add_argument(
        "path",
        help="model file: safetensors / state dict (+ --architecture), ONNX, or TorchScript / "
        "torch.export .pt2 (these two are only ever run in the sandbox)",
    )
    r.add_argument("name", help="registered model name")
    r.add_argument("--alias", default="champion", help="alias to set (default champion; '' none)")
    r.add_argument(
        "--task",
        choices=["classification", "detection", "segmentation"],
        help="declare the spec here (else the file's .spec.json is used)",
    )
    r.add_argument(
        "--format",
        default="safetensors",
        choices=["safetensors", "state_dict", "onnx", "torchscript", "export"],
    )
    r.add_argument(
        "--architecture",
        "--factory",
        dest="architecture",
        default=None,
        help="architecture of a weights file: a built-in name, 'package.module:callable' or "
        "an entry point of group noctis_lab.architectures (trusted, installed code)",
    )
    r.add_argument(
        "--activation",
        default="none",
        choices=["none", "sigmoid", "softmax"],
        help="outputs are logits: apply this (default none: probabilities)",
    )
    r.add_argument("--classes", nargs="+", default=None, help="class names in output order")
    r.add_argument(
        "--detection-output",
        default="heatmap",
        choices=["heatmap", "boxes"],
        help="a detector's output: a heatmap (points, matched by distance) or box slots "
        "(n, K, 5) [row0, col0, row1, col1, score] matched by IoU (COCO mAP)",
    )
    r.add_argument("--modality", default="CT")
    r.add_argument("--body-part", default="phantom")
    r.add_argument("--model-version", default="1.0.0")
    r.add_argument("--input-shape", type=int, nargs="+", default=[1, 1, 64, 64])
    r.add_argument("--output-shape", type=int, nargs="+", default=[1, 1])
    _common(r)
    r.set_defaults(handler=_guard(_cmd_register))


def _add_others(sub: Any) -> None:
    """``ai check | evaluate | status | compare | demo``."""
    c = sub.add_parser("check", help="check a model file or registered model")
    c.add_argument("model", help="file path, or registered name / name@alias / name/VERSION")
    c.add_argument("--db-url", default=None, help="analyses database URL")
    c.add_argument("--thresholds", default=None, help="status thresholds file (JSON or TOML)")
    _common(c)
    c.set_defaults(handler=_guard(_cmd_check))

    e = sub.add_parser("evaluate", help="evaluate a model on a test-set manifest")
    e.add_argument("model", help="registered name / name@alias / name/VERSION, or a file")
    e.add_argument("manifest", help="test-set manifest (.csv or .json)")
    e.add_argument("--n-boot", type=int, default=1000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-log", action="store_true", help="do not log an MLflow run")
    _common(e)
    e.set_defaults(handler=_guard(_cmd_evaluate))

    s = sub.add_parser("status", help="status and issues of one or all registered models")
    s.add_argument("model", nargs="?", default=None, help="name, name@alias or name/VERSION")
    s.add_argument("--test-set", default=None, help="judge on this test set (default: latest)")
    s.add_argument("--db-url", default=None, help="analyses database URL")
    s.add_argument("--thresholds", default=None, help="status thresholds file (JSON or TOML)")
    _common(s)
    s.set_defaults(handler=_guard(_cmd_status))

    k = sub.add_parser("compare", help="compare two versions, or two test sets, explicitly")
    k.add_argument("name", help="registered model name")
    k.add_argument("version_a")
    k.add_argument("test_set_a")
    k.add_argument("version_b")
    k.add_argument("test_set_b", nargs="?", default=None, help="default: test_set_a")
    _common(k)
    k.set_defaults(handler=_guard(_cmd_compare))

    d = sub.add_parser("demo", help="train, register and evaluate the demo models")
    d.add_argument("out_dir")
    d.add_argument("--db-url", default=None)
    _common(d)
    d.set_defaults(handler=_guard(_cmd_demo))
