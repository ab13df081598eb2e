"""``noctis-lab doctor``: print versions and check that the stack works together."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from noctis_lab import _paths
from noctis_lab._browser import CHROMIUM

__all__ = ["Finding", "check_stack", "register"]

PACKAGES = (
    "noctis-lab",
    "noctis-rooms",
    "jupyterlab",
    "jupyter-collaboration",
    "jupyterlab-chat",
    "voila",
    "ipywidgets",
    "anywidget",
    "pydicom",
    "numpy",
    "matplotlib",
    "torch",
    "mlflow",
    "papermill",
    "sqlalchemy",
)
SERVER_EXTENSIONS = ("jupyter_server_ydoc", "jupyterlab_chat", "voila", "noctis_rooms")


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    check: str
    ok: bool
    detail: str


def _versions() -> list[Finding]:
    out = []
    for name in PACKAGES:
        try:
            out.append(Finding(f"package {name}", True, version(name)))
        except PackageNotFoundError:
            out.append(Finding(f"package {name}", False, "not installed"))
    return out


def _server_extensions() -> list[Finding]:
    jupyter = Path(sys.executable).with_name("jupyter")
    try:
        proc = subprocess.run(
            [str(jupyter), "server", "extension", "list"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Finding("jupyter server extensions", False, f"could not list: {exc}")]
    text = proc.stdout + proc.stderr
    found = []
    for ext in SERVER_EXTENSIONS:
        enabled = any(
            line.strip().startswith(ext) and "enabled" in line and "OK" in text
            for line in text.splitlines()
        )
        found.append(
            Finding(
                f"server extension {ext}",
                enabled,
                "enabled" if enabled else "not enabled (see `jupyter server extension list`)",
            )
        )
    return found


def _mlflow_store() -> Finding:
    uri = _paths.mlflow_tracking_uri()
    code = (
        "import os; os.environ['MLFLOW_DISABLE_TELEMETRY']='true'; import mlflow, sys;"
        "c = mlflow.MlflowClient(sys.argv[1]); print(len(c.search_experiments()))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return Finding("MLflow store", False, f"{uri}: no answer within 120 s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        return Finding("MLflow store", False, f"{uri}: {last}")
    return Finding("MLflow store", True, f"{uri} ({proc.stdout.strip()} experiments)")


def _history_store() -> Finding:
    from sqlalchemy import create_engine, inspect

    url = _paths.db_url()
    try:
        engine = create_engine(url)
        tables = inspect(engine).get_table_names()
        engine.dispose()
    except Exception as exc:  # any driver error is a finding, not a crash
        return Finding("calibration store", False, f"{url}: {exc}")
    return Finding("calibration store", True, f"{url} ({len(tables)} tables)")


def _chromium() -> Finding:
    if CHROMIUM.exists():
        return Finding("chromium (browser tests)", True, str(CHROMIUM))
    alt = shutil.which("chromium")
    return Finding(
        "chromium (browser tests)",
        False,
        f"{CHROMIUM} missing{' (found ' + alt + ')' if alt else ''}; `make test` installs it",
    )


def _demo() -> Finding:
    d = _paths.demo_dir()
    ok = (d / "manifest.json").is_file()
    return Finding("demo data", ok, str(d) if ok else f"{d} missing; run `noctis-lab demo`")


def check_stack(*, servers: bool = True) -> list[Finding]:
    """Run every check; ``servers=False`` skips the slow subprocess checks."""
    findings = _versions()
    if servers:
        findings += _server_extensions()
        findings.append(_mlflow_store())
    findings.append(_history_store())
    findings.append(_chromium())
    findings.append(_demo())
    return findings


def _run(args: argparse.Namespace) -> int:
    findings = check_stack(servers=not args.quick)
    if args.json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        width = max(len(f.check) for f in findings)
        for f in findings:
            print(f"{'ok ' if f.ok else 'BAD'}  {f.check:<{width}}  {f.detail}")
    bad = [f for f in findings if not f.ok]
    if not args.json:
        print(f"\n{len(findings) - len(bad)} ok, {len(bad)} need attention")
    return 1 if bad else 0


def register(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Add the ``doctor`` subcommand."""
    p = sub.add_parser(name, help=help_text, description=__doc__)
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--quick", action="store_true", help="skip the server and MLflow checks")
    p.set_defaults(handler=_run)
