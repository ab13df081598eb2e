"""Noctis Lab rooms: server-side rules, identity and moderation for jupyterlab-chat.

A Jupyter server extension. When enabled it

- replaces jupyter-collaboration's room websocket handler with
  :class:`GuardedYDocWebSocketHandler` (every chat update is checked for its sender);
- installs :class:`NoctisAuthorizer` in front of the configured authorizer (room
  membership for ``.chat`` paths);
- serves the REST API under ``/api/noctis/rooms``;
- keeps rooms, members, presence, uploads and the append-only moderation log in
  ``<root>/.noctis/rooms.db``;
- ships a prebuilt JupyterLab extension (``labextension/``): the "Room" side panel.

Identity: :class:`NoctisIdentityProvider` (a users file with one token per user).
The QA bot: :func:`post_system_message`.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float
from traitlets.config import Configurable

from ._authorizer import NoctisAuthorizer
from ._bot import apost_system_message, post_system_message
from ._gate import install_gate
from ._guard import STUDY_LINK_MIME, Actor, RoomGuard, Verdict
from ._identity import BOT_USERNAME, NoctisIdentityProvider, UserRecord, load_users, parse_users
from ._messages import StudyLink, escape_markdown, quote_reply
from ._policy import Access, access_for
from ._store import KINDS, VISIBILITIES, Member, ModerationEntry, Room, RoomStore
from ._websocket import GuardedYDocWebSocketHandler

__version__ = "0.1.0"

__all__ = [
    "BOT_USERNAME",
    "KINDS",
    "STUDY_LINK_MIME",
    "VISIBILITIES",
    "Access",
    "Actor",
    "GuardedYDocWebSocketHandler",
    "Member",
    "ModerationEntry",
    "NoctisAuthorizer",
    "NoctisIdentityProvider",
    "Room",
    "RoomGuard",
    "RoomStore",
    "StudyLink",
    "UserRecord",
    "Verdict",
    "access_for",
    "apost_system_message",
    "escape_markdown",
    "load_users",
    "parse_users",
    "post_system_message",
    "quote_reply",
]

_CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"


class NoctisRoomsGate(Configurable):
    """Switch for the route gate (:mod:`noctis_rooms._gate`)."""

    enabled = Bool(
        True,
        config=True,
        help="Default-deny route gate for the team lab. Off only in tests that show the "
        "attacks succeed without it.",
    )
    enforce = Bool(
        False,
        config=True,
        help="Enforce the gate whatever the identity provider. The gate enforces by itself "
        "with the team identity (a users file); set this on a server that hosts only rooms "
        "under another identity, e.g. the rooms service of a JupyterHub (nobody then has the "
        "execute right: no kernels, no terminals).",
    )
    max_body_mb = Float(
        32.0,
        config=True,
        help="Largest request body (MB) the team lab reads; larger ones are refused unread.",
    )


def _site_room_paths(root_dir: Any) -> list[str]:
    """The QA bot's rooms (``noctis_lab.alerts`` configuration) under this server's root."""
    from pathlib import Path

    from noctis_lab.alerts import load_config

    cfg = load_config()
    chat_root, root = cfg.root(), Path(root_dir).resolve()
    out: list[str] = []
    for rel in (cfg.rooms.hu, cfg.rooms.drift, cfg.rooms.ai):
        if rel is None:
            continue
        full = (chat_root / rel).resolve()
        if full.is_relative_to(root):
            path = full.relative_to(root).as_posix()
            if path not in out:
                out.append(path)
    return out


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "noctis_rooms"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt Room panel (``noctis_rooms/labextension``), for ``labextension develop``."""
    return [{"src": "labextension", "dest": "noctis-rooms"}]


def _swap_websocket_handler(web_app: Any) -> int:
    """Point every route served by YDocWebSocketHandler at the guarded subclass."""
    from jupyter_server_ydoc.handlers import YDocWebSocketHandler

    swapped = 0
    seen: set[int] = set()

    def walk(router: Any) -> None:
        nonlocal swapped
        if id(router) in seen:
            return
        seen.add(id(router))
        for rule in getattr(router, "rules", []):
            if rule.target is YDocWebSocketHandler:
                rule.target = GuardedYDocWebSocketHandler
                swapped += 1
            elif hasattr(rule.target, "rules"):
                walk(rule.target)

    walk(web_app.default_router)
    walk(web_app.wildcard_router)
    return swapped


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Install the service, the guarded websocket, the authorizer and the REST API."""
    from tornado.ioloop import IOLoop, PeriodicCallback

    from ._rest import rest_handlers
    from ._service import RoomsService

    web_app = serverapp.web_app
    settings = web_app.settings
    root_dir = settings.get("server_root_dir") or serverapp.root_dir
    svc = RoomsService(serverapp, root_dir)
    settings["noctis_rooms"] = svc

    # Authorizer: room rules in front of whatever was configured.
    previous = settings.get("authorizer")
    if not isinstance(previous, NoctisAuthorizer):
        authz = NoctisAuthorizer(
            parent=serverapp,
            identity_provider=serverapp.identity_provider,
            delegate=previous,
        )
        settings["authorizer"] = authz
        serverapp.authorizer = authz

    web_app.add_handlers(".*$", rest_handlers(settings.get("base_url", "/")))

    # Default deny for the team lab: every route (also those added later) passes the gate.
    # Without the team identity the gate only scrubs secrets from error logs.
    gate_cfg = NoctisRoomsGate(parent=serverapp)
    svc.gate_enabled = bool(gate_cfg.enabled)
    if gate_cfg.enabled:
        install_gate(
            web_app,
            serverapp.log,
            enforce=svc.identity is not None or gate_cfg.enforce,
            max_body_mb=gate_cfg.max_body_mb,
        )
        if svc.identity is not None or gate_cfg.enforce:
            serverapp.log.info("noctis_rooms: route gate on (unlisted routes are refused)")
    else:
        serverapp.log.warning(
            "noctis_rooms: route gate OFF (NoctisRoomsGate.enabled=False): members can "
            "reach rooms through other routes; use only to demonstrate the attacks"
        )

    def swap() -> None:
        n = _swap_websocket_handler(web_app)
        if n:
            serverapp.log.info("noctis_rooms: chat rules enforced on %d collaboration route(s)", n)
        else:
            serverapp.log.error(
                "noctis_rooms: the collaboration websocket route was not found; chat rules are NOT "
                "enforced (is jupyter-collaboration enabled?)"
            )

    # jupyter_server loads extensions alphabetically, so jupyter_server_ydoc's routes exist
    # already; swap now and once more when the loop starts (for any late registration).
    if not _swap_websocket_handler(web_app):
        IOLoop.current().add_callback(swap)
    else:
        serverapp.log.info("noctis_rooms: chat rules enforced on the collaboration websocket")

    async def on_contents_event(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        # Events can be posted by clients (POST /api/events): follow only what the disk shows.
        action, path = data.get("action"), data.get("path")
        try:
            src = data.get("source_path")
            if action == "rename" and isinstance(src, str) and isinstance(path, str):
                if not svc.file_exists(src) and svc.file_exists(path):
                    svc.store.rename_room(src, path)
            elif (
                action == "delete"
                and isinstance(path, str)
                and path.endswith(".chat")
                and not svc.file_exists(path)
            ):
                svc.store.delete_room(path)
        except Exception:  # pragma: no cover - never break the contents service
            serverapp.log.exception("noctis_rooms: following %s of %s failed", action, path)

    serverapp.event_logger.add_listener(schema_id=_CONTENTS_EVENTS, listener=on_contents_event)

    if svc.identity is not None and svc.gate_enabled:
        try:
            claimed = svc.claim_rooms(_site_room_paths(svc.root_dir))
        except Exception:  # a bad alerts config must not stop the lab
            serverapp.log.exception("noctis_rooms: the QA bot's rooms could not be claimed")
        else:
            if claimed:
                serverapp.log.info(
                    "noctis_rooms: site rooms owned by the QA bot: %s",
                    ", ".join(r.path for r in claimed),
                )

    svc.write_server_file()
    draining = {"busy": False}

    async def drain() -> None:
        if draining["busy"]:
            return
        draining["busy"] = True
        try:
            await svc.drain_outbox()
        finally:
            draining["busy"] = False

    pc = PeriodicCallback(drain, 500)
    pc.start()
    svc._outbox_callback = pc
    serverapp.log.info("noctis_rooms: rooms store at %s", svc.store.db_path)


def _unload_jupyter_server_extension(serverapp: Any) -> None:
    svc = serverapp.web_app.settings.get("noctis_rooms")
    if svc is not None:
        pc = getattr(svc, "_outbox_callback", None)
        if pc is not None:
            pc.stop()
        svc.remove_server_file()
        svc.store.close()
