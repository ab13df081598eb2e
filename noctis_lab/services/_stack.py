"""The services' stack: PostgreSQL, the MLflow server, their state files and up/down."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from noctis_lab._errors import ServiceError
from noctis_lab._paths import home

__all__ = [
    "HOST",
    "PostgresServer",
    "ServiceState",
    "ServicesReport",
    "default_dir",
    "free_port",
    "migrate_stores",
    "pg_bindir",
    "pg_url",
    "port_is_free",
    "server_user",
    "services_down",
    "services_status",
    "services_up",
]

#: Every service binds this address only.
HOST = "127.0.0.1"
#: Role names in the services' cluster.
ADMIN_ROLE = "noctis_admin"
APP_ROLE = "noctis"
OWNER_ROLE = "noctis_owner"
MLFLOW_ROLE = "mlflow"

_CREDENTIALS = "credentials.json"
_STATE = "services.json"


# ----------------------------------------------------------------------------- helpers
def default_dir() -> Path:
    """Where ``services`` keeps its state by default: ``<home>/services``."""
    return home() / "services"


def pg_bindir() -> Path | None:
    """The PostgreSQL server binaries: ``$NOCTIS_PG_BINDIR``, Debian's newest, or the PATH."""
    env = os.environ.get("NOCTIS_PG_BINDIR")
    if env:
        return Path(env) if (Path(env) / "initdb").is_file() else None
    hits = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if hits:
        return Path(hits[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``127.0.0.1:port`` (a bind test; TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def server_user(requested: str | None = None) -> str | None:
    """The account PostgreSQL runs as: ``None`` (this user) unless running as root.

    As root: ``requested``, else ``postgres`` when that account exists, else ``nobody``.

    Raises
    ------
    ServiceError
        ``requested`` is not an account on this machine, or is root.
    """
    if os.geteuid() != 0:
        return None
    candidates = [requested] if requested else ["postgres", "nobody"]
    for name in candidates:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise ServiceError(f"PostgreSQL cannot run as {name!r}: it is root (initdb refuses)")
        return name
    raise ServiceError(f"no account {' or '.join(map(repr, candidates))} to run PostgreSQL as")


def pg_url(
    port: int, database: str, user: str, password: str | None = None, *, driver: str = "psycopg"
) -> str:
    """SQLAlchemy URL of a database on the loopback server (``driver=""``: plain libpq URL)."""
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    return f"{scheme}://{auth}@{HOST}:{port}/{quote(database, safe='')}"


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


# ----------------------------------------------------------------------------- PostgreSQL
class PostgresServer:
    """A PostgreSQL cluster in ``data`` served on ``127.0.0.1:port`` only (no Unix sockets).

    Parameters
    ----------
    data : Path
        Cluster folder (created by :meth:`initdb`; its parent must exist).
    port : int
        TCP port on 127.0.0.1.
    bindir : Path, optional
        Server binaries (default :func:`pg_bindir`).
    run_as : str or None
        Account that runs ``initdb``/``pg_ctl`` (through ``runuser``) when this process is
        root; see :func:`server_user`.
    log : Path, optional
        Server log (default ``<data>/../postgresql.log``).
    superuser, password : str
        The bootstrap superuser; ``password=None`` means ``trust`` authentication (only for
        throwaway test clusters).
    options : sequence of str
        Extra ``postgres`` options (e.g. ``("-F",)`` to skip fsync in tests).

    Raises
    ------
    ServiceError
        The binaries are missing.
    """

    def __init__(
        self,
        data: Path,
        port: int,
        *,
        bindir: Path | None = None,
        run_as: str | None = None,
        log: Path | None = None,
        superuser: str = ADMIN_ROLE,
        password: str | None = None,
        options: Sequence[str] = (),
    ) -> None:
        found = bindir if bindir is not None else pg_bindir()
        if found is None or not (found / "initdb").is_file() or not (found / "pg_ctl").is_file():
            raise ServiceError(
                "PostgreSQL server binaries not found (initdb, pg_ctl; looked in "
                "$NOCTIS_PG_BINDIR, /usr/lib/postgresql/*/bin and the PATH): install them, "
                "e.g. Debian's `postgresql` package (`make postgresql`)"
            )
        self.bindir = found
        self.data = Path(data)
        self.port = int(port)
        self.run_as = run_as
        self.log = log if log is not None else self.data.parent / "postgresql.log"
        self.superuser = superuser
        self.password = password
        self.options = tuple(options)

    def __repr__(self) -> str:
        return f"PostgresServer({str(self.data)!r}, port={self.port}, run_as={self.run_as!r})"

    # -- running the binaries
    def _prefix(self) -> list[str]:
        return ["runuser", "-u", self.run_as, "--"] if self.run_as else []

    def _run(self, *args: str, timeout: float = 120, check: bool = True) -> int:
        try:
            proc = subprocess.run(
                [*self._prefix(), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(f"{Path(args[0]).name} timed out after {timeout:.0f} s") from None
        if check and proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip()
            log = _tail(self.log)
            raise ServiceError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}) for {self.data}: {out}"
                + (f"\nserver log {self.log}:\n{log}" if log else "")
            )
        return proc.returncode

    def _give(self, path: Path) -> None:
        """Hand ``path`` to the server account (root only)."""
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- life cycle
    @property
    def initialised(self) -> bool:
        """Whether the cluster exists (``PG_VERSION`` is in the data folder)."""
        return (self.data / "PG_VERSION").is_file()

    def initdb(self) -> None:
        """Create the cluster: UTF-8, no locale, SCRAM passwords (or trust without one)."""
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._give(self.data)
        self.log.touch(mode=0o600, exist_ok=True)
        self._give(self.log)
        if self.run_as and self._run("test", "-w", str(self.data), check=False) != 0:
            raise ServiceError(
                f"PostgreSQL runs as {self.run_as!r} (it refuses root) but that account cannot "
                f"reach {self.data}: a parent folder is not searchable by others; "
                "choose a folder it can reach (e.g. under /srv or /tmp)"
            )
        args = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.superuser,
            "-E",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        if self.password is None:
            self._run(*args, "--auth=trust")
            return
        fd, pwfile = tempfile.mkstemp(prefix="noctis-pw-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            self._give(Path(pwfile))
            self._run(*args, "--auth=scram-sha-256", f"--pwfile={pwfile}")
        finally:
            os.unlink(pwfile)

    def running(self) -> bool:
        """Whether the cluster's postmaster is alive (``pg_ctl status``)."""
        if not self.initialised:
            return False
        return (
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status", check=False) == 0
        )

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it accepts connections.

        Raises
        ------
        ServiceError
            The port is taken, or the server did not come up (the log's tail is included).
        """
        if not port_is_free(self.port):
            raise ServiceError(
                f"port {self.port} on {HOST} is taken by another program; "
                "choose another PostgreSQL port (--pg-port)"
            )
        opts = [
            f"-p {self.port}",
            f"-c listen_addresses={HOST}",
            "-c unix_socket_directories=''",
            *self.options,
        ]
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(int(timeout)),
            "-l",
            str(self.log),
            "-o",
            " ".join(opts),
            "start",
            timeout=timeout + 10,
        )

    def stop(self, timeout: float = 60) -> None:
        """Stop the server (fast shutdown: sessions are ended, transactions rolled back)."""
        if self.running():
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
                timeout=timeout + 10,
            )

    def pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid`` (``None`` when not running)."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() and self.running() else None

    # -- SQL
    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """SQLAlchemy URL (psycopg) of ``database``; the superuser's by default."""
        if user is None:
            user, password = self.superuser, self.password
        return pg_url(self.port, database, user, password)

    def connect(self, database: str = "postgres") -> Any:
        """An autocommit psycopg connection as the superuser."""
        import psycopg

        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=self.superuser,
            password=self.password,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        )

    def ensure_database(
        self, name: str, owner: str | None = None, owner_password: str | None = None
    ) -> str:
        """Create ``name`` (and its owner role with a password) unless it exists; return its URL.

        With an ``owner``, only that role (and superusers) may connect to the database.
        """
        from psycopg import sql

        with self.connect() as conn:
            if owner is not None:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,))
                verb = "ALTER" if exists.fetchone() else "CREATE"
                conn.execute(
                    sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                        sql.Identifier(owner)
                    )
                )
                if owner_password is not None:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                            sql.Identifier(owner), sql.Literal(owner_password)
                        )
                    )
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if owner is not None:
                    create += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
                conn.execute(create)
            if owner is not None:
                conn.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(name)
                    )
                )
        if owner is None:
            return self.url(name)
        return self.url(name, owner, owner_password)

    def ensure_app_database(
        self,
        name: str,
        owner: str,
        owner_password: str | None,
        app: str,
        app_password: str | None,
    ) -> tuple[str, str]:
        """Database ``name`` owned by ``owner``, used by ``app`` with SELECT and INSERT only.

        The owner runs the migrations and owns every table (so only it, or a superuser,
        may alter or disable their triggers); ``app`` may connect, read and append: no
        ``UPDATE``, ``DELETE``, ``TRUNCATE``, ``TRIGGER`` or ``CREATE``. Objects ``app``
        owned (a database set up before the owner role existed) are handed to ``owner``.
        Idempotent.

        Returns
        -------
        tuple of str
            The owner's URL and the application's URL.
        """
        from psycopg import sql

        self.ensure_database(name, owner, owner_password)
        ident = sql.Identifier
        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app,)).fetchone()
            conn.execute(
                sql.SQL(
                    ("ALTER" if exists else "CREATE")
                    + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
                ).format(ident(app))
            )
            if app_password is not None:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        ident(app), sql.Literal(app_password)
                    )
                )
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(name), ident(owner)))
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(name), ident(app))
            )
        with self.connect(name) as conn:
            for stmt in (
                "REASSIGN OWNED BY {app} TO {owner}",
                "ALTER SCHEMA public OWNER TO {owner}",
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                "GRANT USAGE ON SCHEMA public TO {app}",
                "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}",
                "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {app}",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
                "GRANT SELECT, INSERT ON TABLES TO {app}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
                "GRANT USAGE, SELECT ON SEQUENCES TO {app}",
            ):
                conn.execute(sql.SQL(stmt).format(app=ident(app), owner=ident(owner)))
        return self.url(name, owner, owner_password), self.url(name, app, app_password)


def migrate_stores(owner_url: str) -> list[str]:
    """Create or migrate every store's tables in one database, as its owner.

    The calibration history runs its Alembic migrations; the AI store and the QA bot's
    ``alerts_posted`` create their tables (or chain an older unchained copy, every row
    kept); every record table is hash-chained and append-only (:mod:`noctis_lab.records`).

    Returns
    -------
    list of str
        The record tables present afterwards.
    """
    from sqlalchemy import inspect

    from noctis_lab.hu.history import CalibrationHistory

    with CalibrationHistory(owner_url) as history:
        engine = history._engine
        from noctis_lab.ai._store import get_engine
        from noctis_lab.alerts._store import AlertStore

        get_engine(owner_url)  # creates or chains the ai_* tables (engine cached by URL)
        AlertStore(owner_url).close()
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())


# ----------------------------------------------------------------------------- state files
@dataclass(frozen=True)
class _Layout:
    root: Path

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlflow-artifacts"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mlflow_pid(self) -> Path:
        return self.root / "run" / "mlflow.pid"

    @property
    def credentials(self) -> Path:
        return self.root / _CREDENTIALS

    @property
    def state(self) -> Path:
        return self.root / _STATE


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{path}: cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ServiceError(f"{path}: expected a JSON object")
    return data


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by this account only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _credentials(lay: _Layout, create: bool) -> dict[str, Any]:
    creds = _read_json(lay.credentials)
    if creds:
        if lay.credentials.stat().st_mode & 0o077:
            raise ServiceError(
                f"{lay.credentials} is readable by other users; run `chmod 600` on it"
            )
        return _add_missing_roles(lay, creds) if create else creds
    if not create:
        return {}
    creds = {}
    return _add_missing_roles(lay, creds)


def _add_missing_roles(lay: _Layout, creds: dict[str, Any]) -> dict[str, Any]:
    """Give every role a generated password (older state folders lack the owner role)."""
    missing = [r for r in (ADMIN_ROLE, OWNER_ROLE, APP_ROLE, MLFLOW_ROLE) if r not in creds]
    if not missing:
        return creds
    creds = {**creds, **{r: {"user": r, "password": secrets.token_urlsafe(24)} for r in missing}}
    _write_private(lay.credentials, creds)
    return creds


# ----------------------------------------------------------------------------- MLflow server
def _mlflow_pid(lay: _Layout) -> int | None:
    """The MLflow server's pid if the pid file names a live MLflow process of ours."""
    try:
        pid = int(lay.mlflow_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    try:
        leader = os.getpgid(pid)
    except ProcessLookupError:
        return None
    if b"mlflow" not in b" ".join(cmdline) or leader != pid:
        return None  # a recycled pid: not ours
    return pid


def _mlflow_healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _start_mlflow(lay: _Layout, port: int, backend_url: str, workers: int, timeout: float) -> int:
    if not port_is_free(port):
        raise ServiceError(
            f"port {port} on {HOST} is taken by another program; "
            "choose another MLflow port (--mlflow-port)"
        )
    if importlib.util.find_spec("mlflow") is None:
        raise ServiceError("MLflow is not installed in this environment (pip install mlflow)")
    lay.artifacts.mkdir(exist_ok=True)
    lay.mlflow_pid.parent.mkdir(exist_ok=True)
    log = lay.logs / "mlflow.log"
    hosts = f"{HOST}:{port},localhost:{port}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--serve-artifacts",
        "--artifacts-destination",
        str(lay.artifacts),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--allowed-hosts",
        hosts,
    ]
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_BACKEND_STORE_URI": backend_url,
        # the GenAI job runner (huey consumers: 7 more processes) serves nothing we use
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=lay.root,
            start_new_session=True,
        )
    lay.mlflow_pid.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lay.mlflow_pid.unlink(missing_ok=True)
            raise ServiceError(
                f"the MLflow server exited (code {proc.returncode}) while starting; "
                f"log {log}:\n{_tail(log)}"
            )
        if _mlflow_healthy(port):
            return proc.pid
        time.sleep(0.3)
    _kill_group(proc.pid)
    lay.mlflow_pid.unlink(missing_ok=True)
    raise ServiceError(
        f"the MLflow server did not answer on {HOST}:{port} within {timeout:.0f} s; "
        f"log {log}:\n{_tail(log)}"
    )


def _kill_group(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid`` (ours), then SIGKILL after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap when it is our child
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- reports
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


def _server(lay: _Layout, state: dict[str, Any], creds: dict[str, Any]) -> PostgresServer:
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
    lay: _Layout, state: dict[str, Any], creds: dict[str, Any], actions: Sequence[str]
) -> ServicesReport:
    pg_port = state.get("pg_port")
    ml_port = state.get("mlflow_port")
    pg_running, pg_pid = False, None
    if pg_port is not None and creds:
        server = _server(lay, state, creds)
        pg_pid = server.pid()
        pg_running = pg_pid is not None
    ml_pid = _mlflow_pid(lay)
    ml_running = ml_pid is not None and ml_port is not None and _mlflow_healthy(int(ml_port))
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


def _layout(directory: str | Path | None) -> _Layout:
    root = Path(directory).expanduser() if directory is not None else default_dir()
    return _Layout(root.resolve())


# ----------------------------------------------------------------------------- public API
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
    state = _read_json(lay.state)
    creds = _credentials(lay, create=True)
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
    _write_private(lay.state, state)
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
        _start_mlflow(
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


def _server_account(lay: _Layout, state: dict[str, Any], run_as: str | None) -> str | None:
    """The account PostgreSQL runs as (root only); a cluster keeps the one it was made by."""
    if run_as and state.get("run_as") and run_as != state["run_as"] and lay.postgres.exists():
        raise ServiceError(
            f"{lay.postgres} belongs to {state['run_as']!r}; it cannot run as {run_as!r}"
        )
    return server_user(run_as or state.get("run_as"))


def _choose_ports(
    lay: _Layout,
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
        stale = _mlflow_pid(lay)
        if stale is not None:  # alive but not answering: restart it
            _kill_group(stale)
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
    lay: _Layout,
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
    return _report(lay, _read_json(lay.state), _credentials(lay, create=False), ())


def services_down(directory: str | Path | None = None, *, timeout: float = 60) -> ServicesReport:
    """Stop the MLflow server, then PostgreSQL (fast shutdown); idempotent.

    Raises
    ------
    ServiceError
        ``directory`` holds no services, or a server refuses to stop.
    """
    lay = _layout(directory)
    state = _read_json(lay.state)
    if not state:
        raise ServiceError(f"{lay.root}: no services were set up here ({_STATE} is missing)")
    creds = _credentials(lay, create=False)
    actions: list[str] = []
    pid = _mlflow_pid(lay)
    if pid is not None:
        _kill_group(pid, grace=timeout)
        actions.append("stop mlflow")
    lay.mlflow_pid.unlink(missing_ok=True)
    if creds and state.get("pg_port") is not None:
        server = _server(lay, state, creds)
        if server.running():
            server.stop(timeout=timeout)
            actions.append("stop postgresql")
    return _report(lay, state, creds, actions)
