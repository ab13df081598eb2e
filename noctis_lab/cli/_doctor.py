"""``noctis-lab doctor``: which home and stores are in use; versions; does the stack work.

It only reads: a store that does not exist yet is reported as such, never created.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from noctis_lab import _paths
from noctis_lab._browser import CHROMIUM
from noctis_lab.cli._args import Subparsers

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
    from importlib.metadata import PackageNotFoundError, version

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


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other URLs and in-memory databases)."""
    for prefix in ("sqlite+pysqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            rest = url.removeprefix(prefix).split("?", 1)[0]
            return Path(rest) if rest and rest != ":memory:" else None
    return None


def _count_sqlite(path: Path, sql: str) -> int:
    """Run a counting query on an existing SQLite file without writing anything.

    ``immutable=1``: not even the ``-wal``/``-shm`` files that a read-only open of a WAL
    database makes; a write in progress elsewhere may not be seen, which a count can afford.
    """
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def _not_created(name: str, where: str) -> Finding:
    return Finding(name, True, f"{where} (not created yet; made on first use)")


def _mlflow_store() -> Finding:
    uri = _paths.mlflow_tracking_uri()
    name = "MLflow store"
    db = _sqlite_file(uri)
    if db is not None:
        if not db.is_file():
            return _not_created(name, uri)
        try:
            n = _count_sqlite(db, "SELECT count(*) FROM experiments WHERE lifecycle_stage='active'")
        except sqlite3.Error as exc:
            return Finding(name, False, f"{uri}: {exc}")
        return Finding(name, True, f"{uri} ({n} experiments)")
    if not uri.startswith(("http://", "https://")):
        return Finding(name, True, f"{uri} (not checked: only SQLite and servers are)")
    # A tracking server: ask it (a client of a server creates no local files).
    code = (
        "import os; os.environ['MLFLOW_DISABLE_TELEMETRY']='true'; import mlflow, sys;"
        "c = mlflow.MlflowClient(sys.argv[1]); print(len(c.search_experiments()))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return Finding(name, False, f"{uri}: no answer within 120 s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        return Finding(name, False, f"{uri}: {last}")
    return Finding(name, True, f"{uri} ({proc.stdout.strip()} experiments)")


def _history_store() -> Finding:
    url = _paths.db_url()
    name = "calibration store"
    db = _sqlite_file(url)
    if db is not None:
        if not db.is_file():
            return _not_created(name, url)
        try:
            n = _count_sqlite(db, "SELECT count(*) FROM sqlite_master WHERE type='table'")
        except sqlite3.Error as exc:
            return Finding(name, False, f"{url}: {exc}")
        return Finding(name, True, f"{url} ({n} tables)")
    from sqlalchemy import create_engine, inspect

    try:
        engine = create_engine(url)
        tables = inspect(engine).get_table_names()
        engine.dispose()
    except Exception as exc:  # any driver error is a finding, not a crash
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Finding(name, False, f"{_safe_url(url)}: {first}")
    return Finding(name, True, f"{_safe_url(url)} ({len(tables)} tables)")


def _safe_url(url: str) -> str:
    """The URL with any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: show only the scheme
        return url.split("://", 1)[0] + "://..."


def _home() -> Finding:
    where = _paths.locate_home()
    state = "" if where.path.is_dir() else "; not created yet"
    return Finding("home", True, where.describe() + state)


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
    if (d / ".complete").is_file():
        return Finding("demo data", True, str(d))
    if (d / ".hu-complete").is_file():
        from noctis_lab.cli._demo import AI_LOG, AI_PID, _alive

        ai = (
            f"AI models training in the background (log {d / AI_LOG})"
            if _alive(d / AI_PID) is not None
            else "AI models not trained yet; run `noctis-lab demo`"
        )
        return Finding("demo data", True, f"{d} (HU part ready; {ai})")
    return Finding("demo data", False, f"{d} missing; run `noctis-lab demo`")


def check_stack(*, servers: bool = True) -> list[Finding]:
    """Run every check; ``servers=False`` skips the slow subprocess checks. Creates nothing."""
    findings = [_home(), *_versions()]
    if servers:
        findings += _server_extensions()
    findings.append(_history_store())
    findings.append(_mlflow_store())
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
    return 1 if bad and args.strict else 0


def register(subparsers: Subparsers) -> None:
    """Add the ``doctor`` subcommand."""
    p = subparsers.add_parser(
        "doctor", help="print versions and check the stack", description=__doc__
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when a finding needs attention")
    p.add_argument("--quick", action="store_true", help="skip the Jupyter server extension check")
    p.set_defaults(handler=_run, pin_home=False)
