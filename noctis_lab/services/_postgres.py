"""PostgreSQL on 127.0.0.1: the binaries, the account it runs as, its roles and URLs, the server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from noctis_lab._errors import ServiceError
from noctis_lab.services._ports import HOST, port_is_free

__all__ = [
    "ADMIN_ROLE",
    "APP_ROLE",
    "MLFLOW_ROLE",
    "OWNER_ROLE",
    "PostgresServer",
    "log_tail",
    "migrate_stores",
    "pg_bindir",
    "pg_url",
    "server_user",
]

#: Role names in the services' cluster.
ADMIN_ROLE = "noctis_admin"
APP_ROLE = "noctis"
OWNER_ROLE = "noctis_owner"
MLFLOW_ROLE = "mlflow"


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
    """SQLAlchemy URL of a database on the loopback server.

    Parameters
    ----------
    port : int
        The server's port on 127.0.0.1.
    database : str
        The database name.
    user : str
        The role to connect as.
    password : str, optional
        Its password (none: left out of the URL).
    driver : str, default "psycopg"
        The SQLAlchemy driver; ``""`` gives a plain libpq URL (``postgresql://``).

    Returns
    -------
    str
        The URL, user, password and database percent-encoded.
    """
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    return f"{scheme}://{auth}@{HOST}:{port}/{quote(database, safe='')}"


def log_tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


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
            log = log_tail(self.log)
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

        Parameters
        ----------
        name : str
            The database.
        owner : str
            The role that owns it and its tables (runs the migrations).
        owner_password : str or None
            The owner's password (None: a role without one).
        app : str
            The role the application connects as.
        app_password : str or None
            The application role's password.

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
