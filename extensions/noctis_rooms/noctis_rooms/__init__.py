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

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._service import RoomsService

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


def _install_authorizer(serverapp: Any, settings: dict[str, Any]) -> None:
    """Put :class:`NoctisAuthorizer` (room rules) in front of whatever was configured."""
    previous = settings.get("authorizer")
    if isinstance(previous, NoctisAuthorizer):
        return
    authz = NoctisAuthorizer(
        parent=serverapp,
        identity_provider=serverapp.identity_provider,
        delegate=previous,
    )
    settings["authorizer"] = authz
    serverapp.authorizer = authz


def _install_route_gate(serverapp: Any, svc: RoomsService) -> None:
    """Default deny for the team lab: every route (also those added later) passes the gate.

    Without the team identity (and without ``NoctisRoomsGate.enforce``) the gate only
    scrubs secrets from error logs.
    """
    gate_cfg = NoctisRoomsGate(parent=serverapp)
    svc.gate_enabled = bool(gate_cfg.enabled)
    if not gate_cfg.enabled:
        serverapp.log.warning(
            "noctis_rooms: route gate OFF (NoctisRoomsGate.enabled=False): members can "
            "reach rooms through other routes; use only to demonstrate the attacks"
        )
        return
    enforce = svc.identity is not None or bool(gate_cfg.enforce)
    install_gate(
        serverapp.web_app, serverapp.log, enforce=enforce, max_body_mb=gate_cfg.max_body_mb
    )
    if enforce:
        serverapp.log.info("noctis_rooms: route gate on (unlisted routes are refused)")


def _guard_collaboration_websocket(serverapp: Any) -> None:
    """Swap in :class:`GuardedYDocWebSocketHandler`, now or once the loop starts.

    jupyter_server loads extensions alphabetically, so jupyter_server_ydoc's routes exist
    already; when they do not, swap once more when the loop starts (a late registration).
    """
    from tornado.ioloop import IOLoop

    web_app = serverapp.web_app
    if _swap_websocket_handler(web_app):
        serverapp.log.info("noctis_rooms: chat rules enforced on the collaboration websocket")
        return

    def swap_later() -> None:
        n = _swap_websocket_handler(web_app)
        if n:
            serverapp.log.info("noctis_rooms: chat rules enforced on %d collaboration route(s)", n)
        else:
            serverapp.log.error(
                "noctis_rooms: the collaboration websocket route was not found; chat rules are NOT "
                "enforced (is jupyter-collaboration enabled?)"
            )

    IOLoop.current().add_callback(swap_later)


def _follow_contents_event(svc: RoomsService, data: dict[str, Any]) -> None:
    """Rename or forget a room after a contents event, as far as the disk confirms it.

    Events can be posted by clients (``POST /api/events``): only what the disk shows is
    followed (a rename whose source is gone and target exists; a deleted ``.chat`` file).
    """
    action, path, src = data.get("action"), data.get("path"), data.get("source_path")
    if not isinstance(path, str):
        return
    if action == "rename" and isinstance(src, str):
        if not svc.file_exists(src) and svc.file_exists(path):
            svc.store.rename_room(src, path)
    elif action == "delete" and path.endswith(".chat") and not svc.file_exists(path):
        svc.store.delete_room(path)


def _listen_to_contents_events(serverapp: Any, svc: RoomsService) -> None:
    """Keep the rooms store in step with renames and deletions in the contents service."""

    async def on_contents_event(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        try:
            _follow_contents_event(svc, data)
        except Exception:  # pragma: no cover - never break the contents service
            serverapp.log.exception(
                "noctis_rooms: following %s of %s failed", data.get("action"), data.get("path")
            )

    serverapp.event_logger.add_listener(schema_id=_CONTENTS_EVENTS, listener=on_contents_event)


def _claim_site_rooms(serverapp: Any, svc: RoomsService) -> None:
    """The QA bot's configured rooms are created and owned by the bot (team lab only)."""
    if svc.identity is None or not svc.gate_enabled:
        return
    try:
        claimed = svc.claim_rooms(_site_room_paths(svc.root_dir))
    except Exception:  # a bad alerts config must not stop the lab
        serverapp.log.exception("noctis_rooms: the QA bot's rooms could not be claimed")
        return
    if claimed:
        serverapp.log.info(
            "noctis_rooms: site rooms owned by the QA bot: %s", ", ".join(r.path for r in claimed)
        )


def _start_outbox_drain(svc: RoomsService) -> None:
    """Post the bot's queued messages (``.noctis/outbox/``) every 0.5 s, one drain at a time."""
    from tornado.ioloop import PeriodicCallback

    busy = False

    async def drain() -> None:
        nonlocal busy
        if busy:
            return
        busy = True
        try:
            await svc.drain_outbox()
        finally:
            busy = False

    pc = PeriodicCallback(drain, 500)
    pc.start()
    svc._outbox_callback = pc


def _stop_on_interrupt(serverapp: Any) -> None:
    """Without a terminal, SIGINT stops the server cleanly, as SIGTERM does.

    jupyter_server asks "Shut down this Jupyter server?" on Ctrl-C only when it has a
    terminal. Without one, SIGINT raises KeyboardInterrupt out of the event loop and skips
    the server's cleanup: the collaboration store's worker threads (anyio) are never told to
    stop, and the process never exits (SIGTERM no longer helps: its stop runs on the loop,
    which is gone). JupyterHub stops a server or service with SIGINT first, so stopping the
    Hub waited 30 s for the rooms service and then had to kill it.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, serverapp._signal_stop)


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Install the service, the guarded websocket, the authorizer and the REST API."""
    from ._rest import rest_handlers
    from ._service import RoomsService

    web_app = serverapp.web_app
    settings = web_app.settings
    svc = RoomsService(serverapp, settings.get("server_root_dir") or serverapp.root_dir)
    settings["noctis_rooms"] = svc
    _install_authorizer(serverapp, settings)
    web_app.add_handlers(".*$", rest_handlers(settings.get("base_url", "/")))
    _install_route_gate(serverapp, svc)
    _guard_collaboration_websocket(serverapp)
    _listen_to_contents_events(serverapp, svc)
    _claim_site_rooms(serverapp, svc)
    svc.write_server_file()
    _start_outbox_drain(svc)
    _stop_on_interrupt(serverapp)
    serverapp.log.info("noctis_rooms: rooms store at %s", svc.store.db_path)


def _unload_jupyter_server_extension(serverapp: Any) -> None:
    svc = serverapp.web_app.settings.get("noctis_rooms")
    if svc is not None:
        pc = getattr(svc, "_outbox_callback", None)
        if pc is not None:
            pc.stop()
        svc.remove_server_file()
        svc.store.close()
