# JupyterHub configuration for a Noctis Lab department (JupyterHub 6.x, JupyterLab 4.6).
#
# What it sets up (see README.md next to this file):
#   * identity: the Hub's users (system accounts through PAM by default); each person's
#     JupyterLab, chat messages, reactions and read receipts carry their Hub user name;
#   * every single-user server runs JupyterLab with real-time collaboration
#     (jupyter-collaboration) and the `noctis_rooms` server extension (room rules enforced
#     on the collaboration websocket);
#   * the shared calibration history and AI analyses (NOCTIS_DB_URL: PostgreSQL) and the
#     MLflow tracking server (MLFLOW_TRACKING_URI) reach every server through the spawner
#     environment; start them with `noctis-lab services up` and start the Hub with
#     `eval "$(noctis-lab services env --export)"` first (or a systemd EnvironmentFile);
#   * collaboration accounts: one Hub account per team project whose server hosts the shared
#     notebooks and chat rooms; members open it with their own identity (JupyterHub's
#     "real-time collaboration without impersonation" pattern), plus ad-hoc sharing.
#
# Everything an administrator usually changes is read from the environment, so the same file
# serves a department and the loopback test in tests/services/test_jupyterhub.py.
#
# Environment:
#   NOCTIS_HUB_STATE       folder for the Hub's database and cookie secret
#                          (default /srv/noctis/hub; keep it 0700, owned by the Hub's user)
#   NOCTIS_HUB_BIND_URL    public URL the proxy listens on (default http://127.0.0.1:8000;
#                          put a TLS reverse proxy in front, or set https + certificates)
#   NOCTIS_HUB_ADMINS      comma-separated Hub admins (default: none)
#   NOCTIS_HUB_GROUP       system group whose members may log in (default: noctis)
#   NOCTIS_HUB_COLLABORATIONS
#                          JSON {"<collab account>": ["member", ...]} (default: none)
#   NOCTIS_HUB_SINGLEUSER  the jupyterhub-singleuser command of the Noctis Lab environment
#                          (default: the one next to this Python, else on PATH)
#   NOCTIS_HOME, NOCTIS_DB_URL, MLFLOW_TRACKING_URI
#                          passed on to every single-user server
# ruff: noqa: F821  (``get_config`` is provided by traitlets when JupyterHub loads this file)

import json
import os
import shutil
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]

STATE = Path(os.environ.get("NOCTIS_HUB_STATE", "/srv/noctis/hub"))
ADMINS = {a.strip() for a in os.environ.get("NOCTIS_HUB_ADMINS", "").split(",") if a.strip()}
GROUP = os.environ.get("NOCTIS_HUB_GROUP", "noctis")
COLLABORATIONS: dict[str, list[str]] = json.loads(
    os.environ.get("NOCTIS_HUB_COLLABORATIONS") or "{}"
)

# ---------------------------------------------------------------- network and state
# The proxy's public side; the Hub itself and the proxy's API stay on loopback.
c.JupyterHub.bind_url = os.environ.get("NOCTIS_HUB_BIND_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

# ---------------------------------------------------------------- identity
# System accounts through PAM; only members of GROUP (and the admins) may log in. The Hub's
# user name is the identity every single-user server sees (JupyterHubIdentityProvider), so
# it is the name in chat messages, reactions, read receipts and room memberships.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_groups = {GROUP}  # PAMAuthenticator: system group membership
c.Authenticator.admin_users = ADMINS

# ---------------------------------------------------------------- single-user servers
# Each person's server runs as their system account (LocalProcessSpawner). Use a spawner
# for containers or a batch system (DockerSpawner, SystemdSpawner, BatchSpawner) when the
# department wants isolation; the environment and arguments below stay the same.
_here = Path(sys.executable).parent / "jupyterhub-singleuser"
c.Spawner.cmd = [
    os.environ.get("NOCTIS_HUB_SINGLEUSER")
    or (str(_here) if _here.exists() else shutil.which("jupyterhub-singleuser") or "")
    or "jupyterhub-singleuser"
]
c.Spawner.default_url = "/lab"
c.Spawner.args = [
    # the chat rooms' rules (noctis_rooms) are enabled explicitly, whatever the
    # environment's jupyter_server_config.d says
    "--ServerApp.jpserver_extensions=noctis_rooms=True",
    # real-time collaboration is on when jupyter-collaboration is installed (JupyterLab 4);
    # say it anyway so a missing package is an error at start, not a silent single-user lab
    "--ServerApp.jpserver_extensions=jupyter_server_ydoc=True",
]
# Shared stores: the calibration history / AI analyses (PostgreSQL) and MLflow.
_passed = ("NOCTIS_HOME", "NOCTIS_DB_URL", "MLFLOW_TRACKING_URI")
c.Spawner.environment = {k: os.environ[k] for k in _passed if os.environ.get(k)}
c.Spawner.environment.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
c.Spawner.http_timeout = 120  # a cold JupyterLab with collaboration may take a while
c.Spawner.start_timeout = 120

# ---------------------------------------------------------------- collaboration
# Collaboration accounts: the account's server holds the team's notebooks and .chat rooms;
# members get access to it (and may start/stop it) through a group role, and appear under
# their own names. Code there runs as the collaboration account, not as any member.
# With PAM + LocalProcessSpawner each collaboration account must also exist as a system
# account (e.g. `useradd --system --create-home ct-physics`) and be allowed to log in to
# the Hub by being in GROUP or in allowed_users below (it never logs in itself).
c.JupyterHub.load_groups = {
    f"collab-{name}": {"users": sorted(members), "properties": {"collaboration": name}}
    for name, members in COLLABORATIONS.items()
}
c.JupyterHub.load_roles = [
    {
        "name": f"collab-access-{name}",
        "description": f"open and start the shared server of collaboration {name}",
        "scopes": [
            f"access:servers!user={name}",
            f"servers!user={name}",
            f"read:users:name!user={name}",
        ],
        "groups": [f"collab-{name}"],
    }
    for name in COLLABORATIONS
]
c.Authenticator.allowed_users = set(COLLABORATIONS)
# Ad-hoc sharing (JupyterHub >= 5): a user may share their own server by share code.
c.JupyterHub.extra_user_scopes = {"shares!user"}

# ---------------------------------------------------------------- the chat rooms service
# The team's chat rooms live in a server of their own, not in anybody's single-user or
# collaboration server: code that members run (as their own account, or as a
# collaboration account) cannot reach the rooms' files or process. It is a Hub-managed
# service under its own system account (NOCTIS_ROOMS_ACCOUNT, default `noctis-rooms`:
# `useradd --system --no-create-home noctis-rooms`; the Hub runs as root to start it so),
# serving JupyterLab with jupyter-collaboration and noctis_rooms, with no terminals and no
# kernels for anyone (the rooms' gate gives nobody the execute right under the Hub's
# identity). Every Hub user may open it (/services/noctis-rooms/); the rooms' own
# memberships decide who reads and writes which room.
ROOMS_ROOT = Path(os.environ.get("NOCTIS_ROOMS_ROOT", "/srv/noctis/rooms"))
ROOMS_ACCOUNT = os.environ.get("NOCTIS_ROOMS_ACCOUNT", "noctis-rooms")
ROOMS_PORT = int(os.environ.get("NOCTIS_ROOMS_PORT", "8765"))
_rooms_service = {
    "name": "noctis-rooms",
    "url": f"http://127.0.0.1:{ROOMS_PORT}",
    "command": [
        c.Spawner.cmd[0],
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={ROOMS_PORT}",
        f"--ServerApp.root_dir={ROOMS_ROOT}",
        "--ServerApp.jpserver_extensions=noctis_rooms=True",
        "--ServerApp.jpserver_extensions=jupyter_server_ydoc=True",
        "--ServerApp.jpserver_extensions=jupyterlab=True",
        "--ServerApp.terminals_enabled=False",
        # the rooms' default-deny gate, also under the Hub's identity: nobody has the
        # execute right here (kernels, sessions, language servers refused)
        "--NoctisRoomsGate.enforce=True",
        "--ServerApp.default_url=/lab",
    ],
    "cwd": str(ROOMS_ROOT),
    "environment": {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
    "oauth_no_confirm": True,
    "display": True,
}
if ROOMS_ACCOUNT:  # empty only where the Hub cannot switch accounts (the loopback test)
    _rooms_service["user"] = ROOMS_ACCOUNT
c.JupyterHub.services = [_rooms_service]
# every Hub user may open the rooms service (the default role `user` plus this scope)
c.JupyterHub.load_roles.append(
    {
        "name": "user",
        "description": "a Hub user: their own server, and the chat rooms service",
        # (a role of this name replaces the default, so the extra user scopes are repeated)
        "scopes": [
            "self",
            *sorted(c.JupyterHub.extra_user_scopes),
            "access:services!service=noctis-rooms",
        ],
    }
)
