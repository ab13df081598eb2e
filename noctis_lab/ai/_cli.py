"""``noctis-lab ai register | check | evaluate | status | demo``."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


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
            factory=args.factory,
            modality=args.modality,
            body_part=args.body_part,
            version=args.model_version,
            input_shape=tuple(args.input_shape),
            output_shape=tuple(args.output_shape),
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


def _cmd_check(args: argparse.Namespace) -> int:
    from noctis_lab.ai._registry import check_model

    report = check_model(args.model, tracking_uri=args.tracking_uri)
    lines = [f"{report.target}: {report.status}"]
    lines += [f"  [{c.state:7}] {c.name}: {c.detail}" for c in report.checks]
    lines += [f"  issue ({i.severity}): {i.message}" for i in report.issues]
    _print(report.to_dict(), args.json, "\n".join(lines))
    return 1 if report.status == "error" else 0


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
        lines.append(f"  {v.name:24} {v.value:.4f}  [{v.ci_low:.4f}, {v.ci_high:.4f}]")
    _print(json.loads(res.to_json()), args.json, "\n".join(lines))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from noctis_lab.ai._registry import list_models
    from noctis_lab.ai._status import model_status

    names = (
        [args.model]
        if args.model
        else [m.name for m in list_models(tracking_uri=args.tracking_uri)]
    )
    results = [model_status(n, tracking_uri=args.tracking_uri, db_url=args.db_url) for n in names]
    lines = [] if results else ["no registered models"]
    for st in results:
        head = st.headline
        hl = (
            f"{head['name']} {head['value']:.3f} [{head['ci_low']:.3f}, {head['ci_high']:.3f}]"
            if head
            else "not evaluated"
        )
        lines.append(f"{st.name} v{st.version or '?'}: {st.status.upper()}  ({hl})")
        lines += [f"  - {i.severity}: {i.message}" for i in st.issues]
    payload: Any = [s.to_dict() for s in results]
    if args.model:
        payload = payload[0]
    _print(payload, args.json, "\n".join(lines))
    return 1 if any(s.status == "error" for s in results) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from noctis_lab.ai._demo import build_demo

    res = build_demo(
        args.out_dir, tracking_uri=args.tracking_uri, db_url=args.db_url, progress=not args.json
    )
    _print(res.to_dict(), args.json, f"AI demo written: {res.to_dict()}")
    return 0


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add ``noctis-lab ai`` and its subcommands."""
    p = subparsers.add_parser(
        name,
        help=help_text,
        description=(
            "Register, check and evaluate AI models; show their status. Models and runs live "
            "in MLflow ($MLFLOW_TRACKING_URI, else <NOCTIS_HOME>/mlflow)."
        ),
    )
    p.set_defaults(handler=lambda _a: (p.print_help(), 0)[1])
    sub = p.add_subparsers(dest="ai_command", metavar="ACTION")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")

    r = sub.add_parser("register", help="register a model file in the MLflow registry")
    r.add_argument("path", help="model file (torch.export .pt2, TorchScript .pt, state dict .pt)")
    r.add_argument("name", help="registered model name")
    r.add_argument("--alias", default="champion", help="alias to set (default champion; '' none)")
    r.add_argument(
        "--task",
        choices=["classification", "detection", "segmentation"],
        help="declare the spec here (else the file's .spec.json is used)",
    )
    r.add_argument(
        "--format", default="torchscript", choices=["torchscript", "export", "state_dict"]
    )
    r.add_argument("--factory", default=None, help="network factory for a state dict")
    r.add_argument("--modality", default="CT")
    r.add_argument("--body-part", default="phantom")
    r.add_argument("--model-version", default="1.0.0")
    r.add_argument("--input-shape", type=int, nargs="+", default=[1, 1, 64, 64])
    r.add_argument("--output-shape", type=int, nargs="+", default=[1, 1])
    common(r)
    r.set_defaults(handler=_cmd_register)

    c = sub.add_parser("check", help="check a model file or registered model; exit 1 on error")
    c.add_argument("model", help="file path, or registered name / name@alias / name/VERSION")
    common(c)
    c.set_defaults(handler=_cmd_check)

    e = sub.add_parser("evaluate", help="evaluate a model on a test-set manifest")
    e.add_argument("model", help="registered name / name@alias / name/VERSION, or a file")
    e.add_argument("manifest", help="test-set manifest (.csv or .json)")
    e.add_argument("--n-boot", type=int, default=1000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-log", action="store_true", help="do not log an MLflow run")
    common(e)
    e.set_defaults(handler=_cmd_evaluate)

    s = sub.add_parser("status", help="status and issues of one or all registered models")
    s.add_argument("model", nargs="?", default=None)
    s.add_argument("--db-url", default=None, help="analyses database URL")
    common(s)
    s.set_defaults(handler=_cmd_status)

    d = sub.add_parser("demo", help="train, register and evaluate the demo models")
    d.add_argument("out_dir")
    d.add_argument("--db-url", default=None)
    common(d)
    d.set_defaults(handler=_cmd_demo)
