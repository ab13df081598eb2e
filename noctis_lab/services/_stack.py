"""The services' stack: start, inspect and stop PostgreSQL and the MLflow server together."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from noctis_lab._errors import ServiceError
from noctis_lab._paths import home
from noctis_lab.services._mlflow import kill_group, mlflow_healthy, mlflow_pid, start_mlflow
from noctis_lab.services._ports import HOST, free_port, port_is_free
from noctis_lab.services._postgres import (
    ADMIN_ROLE,
    APP_ROLE,
    MLFLOW_ROLE,
    OWNER_ROLE,
    PostgresServer,
    migrate_stores,
    pg_bindir,
    pg_url,
    server_user,
)
from noctis_lab.services._state import STATE, Layout, credentials, read_json, write_private

__all__ = [
    "ServiceState",
    "ServicesReport",
    "default_dir",
    "services_down",
    "services_status",
    "services_up",
]


def default_dir() -> Path:
    """Where ``services`` keeps its state by default: ``<home>/services``."""
    return home() / "services"


@dataclass(frozen=True)
class ServiceState:
    """One service: whether it runs, where, and its log."""

    name: str
    running: bool
    port: int | None
    pid: int | None
    url: str
    log: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class ServicesReport:
    """What ``services up``/``status``/``down`` found or did.

    ``env`` holds the lines to give the team (``NOCTIS_DB_URL`` carries a password; it is
    left out of ``repr``).
    """

    directory: str
    postgres: ServiceState
    mlflow: ServiceState
    actions: tuple[str, ...]
    env: dict[str, str] = field(repr=False)

    @property
    def up(self) -> bool:
        """Both services run."""
        return self.postgres.running and self.mlflow.running

    @property
    def down(self) -> bool:
        """Neither service runs."""
        return not self.postgres.running and not self.mlflow.running

    def env_lines(self, export: bool = False) -> list[str]:
        """``KEY=value`` lines (``export KEY='value'`` for a shell with ``export=True``)."""
        import shlex

        if export:
            return [f"export {k}={shlex.quote(v)}" for k, v in self.env.items()]
        return [f"{k}={v}" for k, v in self.env.items()]

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (with the env lines)."""
        return {
            "directory": self.directory,
            "up": self.up,
            "postgres": self.postgres.to_dict(),
            "mlflow": self.mlflow.to_dict(),
            "actions": list(self.actions),
            "env": dict(self.env),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent)


def _server(lay: Layout, state: dict[str, Any], creds: dict[str, Any]) -> PostgresServer:
    bindir = state.get("pg_bindir")
    return PostgresServer(
        lay.postgres,
        int(state["pg_port"]),
        bindir=Path(bindir) if bindir and (Path(bindir) / "initdb").is_file() else None,
        run_as=server_user(state.get("run_as")) if os.geteuid() == 0 else None,
        log=lay.logs / "postgresql.log",
        password=creds[ADMIN_ROLE]["password"],
    )


def _report(
    lay: Layout, state: dict[str, Any], creds: dict[str, Any], actions: Sequence[str]
) -> ServicesReport:
    pg_port = state.get("pg_port")
    ml_port = state.get("mlflow_port")
    pg_running, pg_pid = False, None
    if pg_port is not None and creds:
        server = _server(lay, state, creds)
        pg_pid = server.pid()
        pg_running = pg_pid is not None
    ml_pid = mlflow_pid(lay)
    ml_running = ml_pid is not None and ml_port is not None and mlflow_healthy(int(ml_port))
    env: dict[str, str] = {}
    if pg_port is not None and creds:
        app = creds[APP_ROLE]
        env["NOCTIS_DB_URL"] = pg_url(int(pg_port), "noctis", app["user"], app["password"])
    if ml_port is not None:
        env["MLFLOW_TRACKING_URI"] = f"http://{HOST}:{ml_port}"
    return ServicesReport(
        directory=str(lay.root),
        postgres=ServiceState(
            "postgresql",
            pg_running,
            None if pg_port is None else int(pg_port),
            pg_pid,
            "" if pg_port is None else pg_url(int(pg_port), "noctis", APP_ROLE, driver=""),
            str(lay.logs / "postgresql.log"),
        ),
        mlflow=ServiceState(
            "mlflow",
            ml_running,
            None if ml_port is None else int(ml_port),
            ml_pid if ml_running else None,
            "" if ml_port is None else f"http://{HOST}:{ml_port}",
            str(lay.logs / "mlflow.log"),
        ),
        actions=tuple(actions),
        env=env,
    )


def _layout(directory: str | Path | None) -> Layout:
    root = Path(directory).expanduser() if directory is not None else default_dir()
    return Layout(root.resolve())


def services_up(
    directory: str | Path | None = None,
    *,
    pg_port: int | None = None,
    mlflow_port: int | None = None,
    workers: int = 2,
    run_as: str | None = None,
    timeout: float = 120,
    progress: Callable[[str], None] | None = None,
) -> ServicesReport:
    """Start PostgreSQL and the MLflow server for ``directory`` (idempotent).

    Parameters
    ----------
    directory : str or Path, optional
        State folder (default :func:`default_dir`): ``postgres/`` (the cluster),
        ``mlflow-artifacts/``, ``logs/``, ``run/``, ``credentials.json`` (0600) and
        ``services.json`` (ports).
    pg_port, mlflow_port : int, optional
        Ports on 127.0.0.1. Default: the ones used before, else free ones (then kept).
    workers : int
        MLflow server worker processes.
    run_as : str, optional
        When root: the account PostgreSQL runs as (default ``postgres``, else ``nobody``).
    timeout : float
        Seconds to wait for each server to answer.
    progress : callable, optional
        Called with one line per step (the CLI prints them).

    Returns
    -------
    ServicesReport
        ``actions`` says what was done (empty when everything was already up).

    Raises
    ------
    ServiceError
        Missing binaries, a taken port, a port change while running, a server that fails.
    """
    say = progress or (lambda _msg: None)
    _check_up_arguments(workers, pg_port, mlflow_port)
    lay = _layout(directory)
    lay.root.mkdir(parents=True, exist_ok=True)
    state = read_json(lay.state)
    creds = credentials(lay, create=True)
    user = _server_account(lay, state, run_as)
    # a private folder; the server account (root only) may only traverse it
    os.chmod(lay.root, 0o711 if user else 0o700)
    lay.logs.mkdir(exist_ok=True)
    before = _report(lay, state, creds, ())
    pg_port, mlflow_port = _choose_ports(lay, state, before, pg_port, mlflow_port)
    # an existing cluster keeps the binaries of its major version, even after an upgrade
    stored: str | None = state.get("pg_bindir")
    initialised = (lay.postgres / "PG_VERSION").is_file()
    bindir = Path(stored) if stored and initialised and Path(stored).is_dir() else pg_bindir()
    state = {
        **state,
        "pg_port": pg_port,
        "mlflow_port": mlflow_port,
        "run_as": user,
        "pg_bindir": None if bindir is None else str(bindir),
    }
    write_private(lay.state, state)
    server = _server(lay, state, creds)
    actions = _start_postgres(server, lay, before, user, pg_port, timeout, say)
    # roles, databases and schema: cheap, and repairs a half-finished first run
    owner, app = creds[OWNER_ROLE], creds[APP_ROLE]
    owner_url, _ = server.ensure_app_database(
        "noctis", owner["user"], owner["password"], app["user"], app["password"]
    )
    migrate_stores(owner_url)  # new tables get the app's grants by default privileges
    server.ensure_database("mlflow", MLFLOW_ROLE, creds[MLFLOW_ROLE]["password"])
    if not before.mlflow.running:
        say(f"starting the MLflow server on {HOST}:{mlflow_port}")
        ml = creds[MLFLOW_ROLE]
        start_mlflow(
            lay,
            mlflow_port,
            pg_url(pg_port, "mlflow", ml["user"], ml["password"]),
            workers,
            timeout,
        )
        actions.append("start mlflow")
    return _report(lay, state, creds, actions)


def _check_up_arguments(workers: int, pg_port: int | None, mlflow_port: int | None) -> None:
    if workers < 1:
        raise ServiceError(f"workers must be at least 1, not {workers}")
    for what, port in (("--pg-port", pg_port), ("--mlflow-port", mlflow_port)):
        if port is not None and not 1024 <= port <= 65535:
            raise ServiceError(f"{what} {port}: choose a port between 1024 and 65535")


def _server_account(lay: Layout, state: dict[str, Any], run_as: str | None) -> str | None:
    """The account PostgreSQL runs as (root only); a cluster keeps the one it was made by."""
    if run_as and state.get("run_as") and run_as != state["run_as"] and lay.postgres.exists():
        raise ServiceError(
            f"{lay.postgres} belongs to {state['run_as']!r}; it cannot run as {run_as!r}"
        )
    return server_user(run_as or state.get("run_as"))


def _choose_ports(
    lay: Layout,
    state: dict[str, Any],
    before: ServicesReport,
    pg_port: int | None,
    mlflow_port: int | None,
) -> tuple[int, int]:
    """The ports asked for, else the ones used before, else free ones; checked to be usable."""
    for what, asked, current in (
        ("PostgreSQL", pg_port, before.postgres),
        ("MLflow", mlflow_port, before.mlflow),
    ):
        if asked is not None and current.running and current.port != asked:
            raise ServiceError(
                f"{what} already runs on port {current.port} for {lay.root}; "
                f"run `noctis-lab services down` first to move it to {asked}"
            )
    if pg_port is None:
        pg_port = state.get("pg_port") or free_port()
    if mlflow_port is None:
        mlflow_port = state.get("mlflow_port") or free_port()
        while mlflow_port == pg_port:
            mlflow_port = free_port()
    if pg_port == mlflow_port:
        raise ServiceError(f"PostgreSQL and MLflow cannot share port {pg_port}")
    if not before.mlflow.running:
        stale = mlflow_pid(lay)
        if stale is not None:  # alive but not answering: restart it
            kill_group(stale)
    for what, flag, port, svc in (
        ("PostgreSQL", "--pg-port", pg_port, before.postgres),
        ("MLflow", "--mlflow-port", mlflow_port, before.mlflow),
    ):
        if not svc.running and not port_is_free(int(port)):
            raise ServiceError(
                f"port {port} on {HOST} is taken by another program; "
                f"choose another {what} port ({flag})"
            )
    return int(pg_port), int(mlflow_port)


def _start_postgres(
    server: PostgresServer,
    lay: Layout,
    before: ServicesReport,
    user: str | None,
    pg_port: int,
    timeout: float,
    say: Callable[[str], None],
) -> list[str]:
    """Initialise and start the cluster when needed; the actions taken."""
    actions: list[str] = []
    if not server.initialised:
        say(f"initialising PostgreSQL in {lay.postgres}" + (f" (as {user})" if user else ""))
        server.initdb()
        actions.append("initdb")
    if not before.postgres.running:
        say(f"starting PostgreSQL on {HOST}:{pg_port}")
        server.start(timeout=timeout)
        actions.append("start postgresql")
    return actions


def services_status(directory: str | Path | None = None) -> ServicesReport:
    """What runs for ``directory`` (never starts or stops anything)."""
    lay = _layout(directory)
    return _report(lay, read_json(lay.state), credentials(lay, create=False), ())


def services_down(directory: str | Path | None = None, *, timeout: float = 60) -> ServicesReport:
    """Stop the MLflow server, then PostgreSQL (fast shutdown); idempotent.

    Raises
    ------
    ServiceError
        ``directory`` holds no services, or a server refuses to stop.
    """
    lay = _layout(directory)
    state = read_json(lay.state)
    if not state:
        raise ServiceError(f"{lay.root}: no services were set up here ({STATE} is missing)")
    creds = credentials(lay, create=False)
    actions: list[str] = []
    pid = mlflow_pid(lay)
    if pid is not None:
        kill_group(pid, grace=timeout)
        actions.append("stop mlflow")
    lay.mlflow_pid.unlink(missing_ok=True)
    if creds and state.get("pg_port") is not None:
        server = _server(lay, state, creds)
        if server.running():
            server.stop(timeout=timeout)
            actions.append("stop postgresql")
    return _report(lay, state, creds, actions)
