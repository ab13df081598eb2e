"""``noctis-lab lab``: JupyterLab on 127.0.0.1 with collaboration, chat and room rules."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noctis_lab import _paths
from noctis_lab._errors import NoctisError, NoFilesFoundError
from noctis_lab.cli._args import Subparsers

__all__ = ["LabLaunch", "build_lab_launch", "register"]


@dataclass(frozen=True)
class LabLaunch:
    """The command line that starts the lab, and what to tell the user."""

    command: tuple[str, ...]
    root: Path
    port: int
    url: str
    token: str | None
    users_file: Path | None
    #: Extra environment for the server (the single token travels here, never in argv).
    env: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the token)."""
        return {
            "command": [
                c if self.token is None or self.token not in c else "<token>" for c in self.command
            ],
            "root": str(self.root),
            "port": self.port,
            "users_file": None if self.users_file is None else str(self.users_file),
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _jupyter_lab() -> str:
    exe = Path(sys.executable).parent / "jupyter-lab"
    if exe.exists():
        return str(exe)
    found = shutil.which("jupyter-lab")
    if found is None:
        raise NoctisError("jupyter-lab is not installed in this environment")
    return found


def build_lab_launch(
    *,
    users: str | None = None,
    root: str | None = None,
    port: int | None = None,
    no_browser: bool = False,
    token: str | None = None,
) -> LabLaunch:
    """Validate the options and build the ``jupyter lab`` command line.

    Parameters
    ----------
    users
        Users file (one token per user); defaults to ``$NOCTIS_USERS``. Without one, the
        lab has a single token (``token``, or a generated one).
    root
        Server root; defaults to ``$NOCTIS_HOME`` or the current directory.
    port
        TCP port on 127.0.0.1; a free one when None.
    """
    root_path = Path(root).expanduser().resolve() if root else _paths.home()
    if not root_path.is_dir():
        raise NoFilesFoundError(f"--root {str(root_path)!r}: no such directory")
    users = users or os.environ.get("NOCTIS_USERS") or None
    if port is not None and not 0 < port < 65536:
        raise NoctisError(f"--port {port}: must be between 1 and 65535")
    try:
        import noctis_rooms
    except ModuleNotFoundError as exc:
        raise NoctisError(
            "the noctis_rooms extension is not installed (pip install -e extensions/noctis_rooms); "
            "without it chat permissions are not enforced"
        ) from exc
    port = port or _free_port()
    cmd = [
        _jupyter_lab(),
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root_path}",
        "--ServerApp.jpserver_extensions=noctis_rooms=True",
        f"--SQLiteYStore.db_path={root_path / '.jupyter_ystore.db'}",
        # Tracked notebooks are saved without outputs; collaboration state stays in .noctis/.
        "--ContentsManager.pre_save_hook=noctis_lab.cli._clean_save.strip_tracked_outputs",
        f"--YDocExtension.session_store_path={root_path / '.noctis' / 'collab_sessions.json'}",
    ]
    users_path: Path | None = None
    env: tuple[tuple[str, str], ...] = ()
    if users is not None:
        users_path = Path(users).expanduser().resolve()
        if token is not None:
            raise NoctisError(
                "--token-file cannot be combined with a users file (each user has a token)"
            )
        noctis_rooms.load_users(users_path)  # clear errors before starting anything
        cmd += [
            "--ServerApp.identity_provider_class=noctis_rooms.NoctisIdentityProvider",
            f"--NoctisIdentityProvider.users_file={users_path}",
        ]
    else:
        token = token or os.environ.get("NOCTIS_LAB_TOKEN") or secrets.token_hex(24)
        if len(token) < 16:
            raise NoctisError("the lab token must have at least 16 characters")
        env = (("JUPYTER_TOKEN", token),)
    if (root_path / "notebooks").is_dir():
        cmd.append("--LabApp.default_url=/lab/tree/notebooks")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    url = f"http://127.0.0.1:{port}/lab" + (f"?token={token}" if token else "")
    return LabLaunch(tuple(cmd), root_path, port, url, token, users_path, env)


def _read_token_file(path: str) -> str:
    p = Path(path).expanduser()
    try:
        token = p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise NoctisError(f"--token-file {str(p)!r}: {exc.strerror or exc}") from exc
    if os.name == "posix" and p.stat().st_mode & 0o077:
        raise NoctisError(f"--token-file {str(p)!r} is readable by other accounts; chmod 600 it")
    return token


def _run(args: argparse.Namespace) -> int:
    launch = build_lab_launch(
        users=args.users,
        root=args.root,
        port=args.port,
        no_browser=args.no_browser,
        token=_read_token_file(args.token_file) if args.token_file else None,
    )
    if launch.users_file is not None:
        print(
            f"Noctis Lab: {launch.url}  (log in with your own token from {launch.users_file})",
            flush=True,
        )
    else:
        print(f"Noctis Lab: {launch.url}", flush=True)
    # Files the server creates (rooms, uploads, the Y store) are private to this account.
    os.umask(0o077)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    proc = subprocess.Popen(launch.command, cwd=launch.root, env={**os.environ, **dict(launch.env)})
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return _stop(proc, signal.SIGINT, 130)
    except _Terminated:  # a service manager or `kill` stops the lab: stop its server too
        return _stop(proc, signal.SIGTERM, 143)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(Exception):
    """SIGTERM reached ``noctis-lab lab``."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated


def _stop(proc: subprocess.Popen[bytes], sig: int, code: int) -> int:
    """Pass ``sig`` on to the server and wait for it (killed after 15 s); return ``code``."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return code


def register(subparsers: Subparsers) -> None:
    """Add ``noctis-lab lab`` to the command line."""
    p = subparsers.add_parser(
        "lab",
        help="start JupyterLab with collaboration and chat",
        description=(
            "Start JupyterLab on 127.0.0.1 with real-time collaboration, chat rooms and "
            "server-side room rules. With --users (or NOCTIS_USERS) each user logs in with "
            "their own token; otherwise one token is used: from --token-file, "
            "$NOCTIS_LAB_TOKEN, or generated. Tokens never appear on the command line."
        ),
    )
    p.add_argument("--users", metavar="FILE", help="users file (JSON); default $NOCTIS_USERS")
    p.add_argument(
        "--root", metavar="DIR", help="server root; default $NOCTIS_HOME or the current directory"
    )
    p.add_argument("--port", type=int, metavar="N", help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="file (mode 0600) holding the single login token when no users file is given",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(handler=_run)
