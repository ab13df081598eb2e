"""Default deny for the team lab: every HTTP and websocket route passes one gate.

When the server runs with :class:`~noctis_rooms.NoctisIdentityProvider` (several users,
one token each), :func:`install_gate` puts :class:`RouteGate` in front of every request
handler, including routes that extensions register later. For each request the gate

1. lets the handler authenticate the user (its own ``prepare``);
2. refuses a cross-origin websocket or state-changing request (same rule as
   jupyter_server's ``check_origin``: a browser page on another origin, even another
   port of the same host, must not use a logged-in user's cookie);
3. looks up the handler class in :data:`ROUTES`, an allow-list. A route that is not
   listed is refused ("not allowed in the team lab"), so a route that a Jupyter upgrade
   adds stays closed until someone reviews it and lists it;
4. applies the listed rule: room files (``*.chat``, registered rooms) are read only with
   read access to the room, written only through the guarded chat connection (or by
   the room's admin for rename/delete), and never opened as another document type,
   copied, checkpointed or converted; server state (``.noctis/``, the Y store, the
   users file) is never served; kernels, sessions, terminals and language servers need
   the ``execute`` right; server-wide settings need the site admin.

A refusal is an HTTP 403 with a reason, logged as ``noctis_rooms: refused ...``.
"""

from __future__ import annotations

import inspect
import json
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.log import _scrub_uri
from tornado import httputil, web

from noctis_lab._errors import RoomError

from ._store import normalize_path

if TYPE_CHECKING:
    from ._service import RoomsService

__all__ = ["ROUTES", "Request", "RouteGate", "install_gate"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HIDDEN_DIRS = (".noctis",)
_HIDDEN_FILES = (".jupyter_ystore.db",)
_ROOM_SUFFIX = ".chat"


@dataclass(frozen=True)
class Request:
    """What a rule sees: the handler, its user and the user's site rights."""

    handler: Any
    username: str | None
    method: str
    admin: bool
    execute: bool

    @property
    def svc(self) -> RoomsService | None:
        """The rooms service of the server (None when the extension is not loaded)."""
        svc: RoomsService | None = self.handler.settings.get("noctis_rooms")
        return svc

    def arg(self, name: str) -> str | None:
        """A path keyword/positional argument or query argument."""
        kw = self.handler.path_kwargs or {}
        if name in kw:
            return str(kw[name])
        if name == "path" and self.handler.path_args:
            return str(self.handler.path_args[0])
        value = self.handler.get_query_argument(name, default=None)
        return None if value is None else str(value)

    def body(self) -> dict[str, Any]:
        """The JSON body as a dict ({} when empty or not JSON: the handler will refuse it)."""
        try:
            data = json.loads(self.handler.request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}


#: A rule returns None to allow, or the reason for refusing.
Rule = Callable[[Request], str | None]


# -- paths ---------------------------------------------------------------------------
def _norm(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return normalize_path(path)
    except RoomError:
        return path.replace("\\", "/").strip("/") if ".." not in path else "\x00"


def is_server_state(req: Request, path: str) -> bool:
    """True for the rooms database, the Y store and the users file (never served)."""
    norm = _norm(path)
    if norm == "\x00":
        return True
    first = norm.split("/", 1)[0]
    base = posixpath.basename(norm)
    if first in _HIDDEN_DIRS or any(base.startswith(f) for f in _HIDDEN_FILES):
        return True
    svc = req.svc
    users_file = getattr(getattr(svc, "identity", None), "users_file", "")
    if svc is not None and users_file and norm:
        try:
            return (svc.root_dir / norm).resolve() == Path(users_file).resolve()
        except OSError:
            return False
    return False


def is_room(req: Request, path: str) -> bool:
    """True for a room file: any ``*.chat`` path (any case) or a registered room."""
    norm = _norm(path)
    if norm.lower().endswith(_ROOM_SUFFIX):
        return True
    svc = req.svc
    return bool(svc is not None and norm and svc.store.get_room(norm) is not None)


def holds_rooms(req: Request, path: str) -> bool:
    """True when the directory ``path`` contains a room file or server state."""
    svc = req.svc
    if svc is None:
        return False
    norm = _norm(path)
    prefix = norm + "/" if norm else ""
    if any(r.path.startswith(prefix) for r in svc.store.rooms()):
        return True
    top = svc.root_dir / norm if norm else svc.root_dir
    if not top.is_dir():
        return False
    for _dir, dirs, files in os.walk(top):
        if any(f.lower().endswith(_ROOM_SUFFIX) for f in files) or any(
            d in _HIDDEN_DIRS for d in dirs
        ):
            return True
    return False


def _room_read(req: Request, path: str) -> str | None:
    svc = req.svc
    norm = _norm(path)
    if svc is None or req.username is None:
        return "not logged in"
    try:
        room = svc.ensure_room(norm, req.username)
    except RoomError as exc:
        return str(exc)
    if room is None:
        return None if not svc.file_exists(norm) else f"room {norm!r} is not registered"
    if not svc.access(room.path, req.username).read:
        return f"{req.username} may not read room {norm!r}"
    return None


def _room_admin(req: Request, path: str) -> str | None:
    why = _room_read(req, path)
    if why is not None:
        return why
    svc, username = req.svc, req.username
    if svc is None or username is None or not svc.access(_norm(path), username).administer:
        return f"{username} does not administer room {_norm(path)!r}"
    return None


def _file_path(req: Request, path: str | None) -> str | None:
    """Refuse server state; room files need read access (for GET-like routes)."""
    if path is None:
        return None
    if is_server_state(req, path):
        return f"{_norm(path)!r} is server state"
    if is_room(req, path):
        return _room_read(req, path)
    return None


def _path_of_room_id(req: Request, room_id: str) -> tuple[str | None, str | None, str | None]:
    """(format, type, path) of a collaboration room id ``format:type:fileid``."""
    if room_id.count(":") < 2:
        return None, None, None
    fmt, rest = room_id.split(":", 1)
    typ, file_id = rest.rsplit(":", 1)
    path = req.handler.settings["file_id_manager"].get_path(file_id)
    return fmt, typ, None if path is None else str(path)


# -- rules ---------------------------------------------------------------------------
def public(req: Request) -> str | None:
    """Pages, static files, login: the handler does its own authentication."""
    return None


def logged_in(req: Request) -> str | None:
    return None if req.username is not None else "not logged in"


def read_only(req: Request) -> str | None:
    """Shared server-wide state: everyone reads, the site admin changes."""
    if req.username is None:
        return "not logged in"
    if req.method in _SAFE_METHODS or req.admin:
        return None
    return f"{req.method} here is for site admins (it changes the lab for everyone)"


def read_never_write(req: Request) -> str | None:
    """Readable; changes refused for everyone (e.g. installing extensions = running code)."""
    if req.username is None:
        return "not logged in"
    return None if req.method in _SAFE_METHODS else f"{req.method} is refused in the team lab"


def admin_only(req: Request) -> str | None:
    return None if req.admin else "for site admins only"


def execute(req: Request) -> str | None:
    """Kernels, sessions, terminals, language servers: the execute right."""
    if req.username is None:
        return "not logged in"
    if req.execute:
        return None
    if req.method == "GET" and type(req.handler).__name__ in _EMPTY_LISTINGS:
        return "__empty__"
    return f"{req.username} does not have the execute right (kernels, terminals)"


def refused(req: Request) -> str | None:
    return "this route is closed in the team lab"


def _contents_put(req: Request, path: str) -> str | None:
    """Save a file: never a room (rooms are written through the chat connection)."""
    if is_room(req, path):
        return "rooms are written through the chat connection only"
    return None


def _contents_post(req: Request, path: str) -> str | None:
    """New file or copy: no copy of a room or of a folder holding rooms, no new room."""
    body = req.body()
    src = body.get("copy_from")
    if isinstance(src, str) and (
        is_server_state(req, src) or is_room(req, src) or holds_rooms(req, src)
    ):
        return "rooms cannot be copied"
    ext = body.get("ext")
    if isinstance(ext, str) and ext.lower().endswith(_ROOM_SUFFIX):
        return "create rooms with the Room panel (POST /api/noctis/rooms)"
    return None


def _contents_rename(req: Request, path: str) -> str | None:
    """Rename: a room only by its admin and to a ``.chat`` name; no folder holding rooms."""
    new = req.body().get("path")
    new = new if isinstance(new, str) else ""
    if is_server_state(req, new):
        return f"{_norm(new)!r} is server state"
    if is_room(req, path):
        why = _room_admin(req, path)
        if why is not None:
            return why
        if not _norm(new).lower().endswith(_ROOM_SUFFIX):
            return "a room keeps its .chat name"
        return None
    if is_room(req, new):
        return "only a room's admin can give a file a room name"
    if holds_rooms(req, path):
        return "a folder holding rooms cannot be renamed"
    return None


def _contents_delete(req: Request, path: str) -> str | None:
    """Delete: a room only by its admin; no folder holding rooms."""
    if is_room(req, path):
        return _room_admin(req, path)
    if holds_rooms(req, path):
        return "a folder holding rooms cannot be deleted"
    return None


#: The ``/api/contents`` rule of each state-changing method.
_CONTENTS_WRITES: dict[str, Callable[[Request, str], str | None]] = {
    "PUT": _contents_put,
    "POST": _contents_post,
    "PATCH": _contents_rename,
    "DELETE": _contents_delete,
}


def contents(req: Request) -> str | None:
    """``/api/contents``: the room rules for GET, PUT, PATCH (rename), POST (new/copy), DELETE."""
    if req.username is None:
        return "not logged in"
    path = req.arg("path") or ""
    if is_server_state(req, path):
        return f"{_norm(path)!r} is server state"
    if req.method in _SAFE_METHODS:
        return _file_path(req, path)
    rule = _CONTENTS_WRITES.get(req.method)
    if rule is None:
        return f"{req.method} is not allowed here"
    return rule(req, path)


def no_rooms(req: Request) -> str | None:
    """Checkpoints, conversions, history: refused for room files and server state."""
    if req.username is None:
        return "not logged in"
    path = req.arg("path") or ""
    if ":" in path and path.count(":") >= 2:  # a collaboration room id (fork handler)
        _fmt, _typ, resolved = _path_of_room_id(req, path)
        path = resolved or ""
    if is_server_state(req, path) or is_room(req, path):
        return "not available for rooms"
    return None


def files(req: Request) -> str | None:
    """``/files``, ``/view``: GET with the room read rule."""
    if req.username is None:
        return "not logged in"
    if req.method not in _SAFE_METHODS:
        return f"{req.method} is not allowed here"
    return _file_path(req, req.arg("path"))


def fileid_by_path(req: Request) -> str | None:
    if req.username is None:
        return "not logged in"
    return _file_path(req, req.arg("path"))


def fileid_by_id(req: Request) -> str | None:
    if req.username is None:
        return "not logged in"
    file_id = req.arg("id")
    if file_id is None:
        return None
    path = req.handler.settings["file_id_manager"].get_path(file_id)
    return None if path is None else _file_path(req, str(path))


def doc_session(req: Request) -> str | None:
    """``/api/collaboration/session/<path>``: a room opens only as a chat, with read access."""
    if req.username is None:
        return "not logged in"
    path = req.arg("path") or ""
    body = req.body()
    if is_server_state(req, path):
        return f"{_norm(path)!r} is server state"
    wants_chat = body.get("type") == "chat"
    if is_room(req, path):
        if not wants_chat or body.get("format") != "text":
            return "a room opens only as a chat (format text, type chat)"
        return _room_read(req, path)
    if wants_chat:
        return "only .chat files open as chats"
    return None


def collab_room(req: Request) -> str | None:
    """``/api/collaboration/room/<format:type:id>``: rooms only as ``text:chat``."""
    if req.username is None:
        return "not logged in"
    room_id = str(req.handler.path_args[0]) if req.handler.path_args else ""
    if room_id.count(":") < 2:
        return None  # awareness-only rooms (e.g. JupyterLab:globalAwareness)
    fmt, typ, path = _path_of_room_id(req, room_id)
    if path is None:
        return "no such document"
    if is_server_state(req, path):
        return f"{_norm(path)!r} is server state"
    if is_room(req, path) and (typ != "chat" or fmt != "text"):
        return "a room opens only as text:chat"
    if typ == "chat" and not is_room(req, path):
        return "only .chat files open as chats"
    return None  # the guarded handler checks read access and every update


def events(req: Request) -> str | None:
    """Server events reveal every saved path: site admins only; emitting is refused."""
    if req.method not in _SAFE_METHODS:
        return "emitting server events is refused"
    return admin_only(req)


_CONTENTS = "jupyter_server.services.contents.handlers.ContentsHandler"

#: Listing routes answered with an empty list for users without the execute right.
_EMPTY_LISTINGS = frozenset({"MainKernelHandler", "SessionRootHandler", "TerminalRootHandler"})

#: The allow-list: handler class (module.QualName) -> rule. Anything else is refused.
ROUTES: dict[str, Rule] = {
    # pages, static files, login
    "jupyter_server.auth.login.LoginFormHandler": public,
    "jupyter_server.auth.logout.LogoutHandler": public,
    # JupyterHub's login round trip (a server of the rooms service behind the Hub)
    "jupyterhub.singleuser.extension.JupyterHubOAuthCallbackHandler": public,
    "jupyterhub.singleuser.extension.JupyterHubLogoutHandler": public,
    "jupyter_server.base.handlers.APIVersionHandler": public,
    "jupyter_server.base.handlers.FileFindHandler": public,
    "jupyter_server.base.handlers.PublicStaticFileHandler": public,
    "jupyter_server.base.handlers.RedirectWithParams": public,
    "jupyter_server.base.handlers.Template404": public,
    "jupyter_server.base.handlers.TrailingSlashHandler": public,
    "tornado.web.StaticFileHandler": public,
    "tornado.web.RedirectHandler": public,
    "jupyterlab_server.handlers.LabHandler": public,
    "jupyterlab_server.handlers.NotFoundHandler": public,
    # read-only information
    "jupyter_server.services.api.handlers.APISpecHandler": logged_in,
    "jupyter_server.services.api.handlers.APIStatusHandler": logged_in,
    "jupyter_server.services.api.handlers.IdentityHandler": logged_in,
    "jupyter_server.services.kernelspecs.handlers.KernelSpecHandler": read_only,
    "jupyter_server.services.kernelspecs.handlers.MainKernelSpecHandler": read_only,
    "jupyter_server.kernelspecs.handlers.KernelSpecResourceHandler": read_only,
    "jupyter_server.services.nbconvert.handlers.NbconvertRootHandler": read_only,
    "jupyter_server.services.security.handlers.CSPReportHandler": logged_in,
    "jupyterlab_server.licenses_handler.LicensesHandler": read_only,
    "jupyterlab_server.listings_handler.ListingsHandler": read_only,
    "jupyterlab_server.themes_handler.ThemesHandler": read_only,
    "jupyterlab_server.translations_handler.TranslationsHandler": read_only,
    "jupyterlab.handlers.announcements.CheckForUpdateHandler": read_only,
    "jupyterlab.handlers.announcements.NewsHandler": read_only,
    # lab state shared by every user: read by all, changed by site admins
    "jupyter_server.services.config.handlers.ConfigHandler": read_only,
    "jupyterlab_server.settings_handler.SettingsHandler": read_only,
    "jupyterlab.handlers.plugin_manager_handler.PluginHandler": read_only,
    "jupyterlab_server.workspaces_handler.WorkspacesHandler": logged_in,
    # installing or building extensions runs code
    "jupyterlab.handlers.extension_manager_handler.ExtensionHandler": read_never_write,
    "jupyterlab.handlers.build_handler.BuildHandler": read_never_write,
    "jupyter_server.services.shutdown.ShutdownHandler": admin_only,
    "jupyter_server.base.handlers.PrometheusMetricsHandler": admin_only,
    "jupyter_server.services.events.handlers.EventHandler": events,
    "jupyter_server.services.events.handlers.SubscribeWebsocket": events,
    # files and rooms
    "jupyter_server.services.api.handlers.PathResolverHandler": logged_in,
    "jupyter_server.services.contents.handlers.ContentsHandler": contents,
    "jupyter_server.services.contents.handlers.CheckpointsHandler": no_rooms,
    "jupyter_server.services.contents.handlers.ModifyCheckpointsHandler": no_rooms,
    "jupyter_server.services.contents.handlers.NotebooksRedirectHandler": logged_in,
    "jupyter_server.services.contents.handlers.TrustNotebooksHandler": execute,
    "jupyter_server.base.handlers.AuthenticatedFileHandler": files,
    "jupyter_server.files.handlers.FilesHandler": files,
    "jupyter_server.view.handlers.ViewHandler": files,
    "jupyter_server.nbconvert.handlers.NbconvertFileHandler": no_rooms,
    "jupyter_server.nbconvert.handlers.NbconvertPostHandler": logged_in,
    "jupyter_server_fileid.handler.FileIDHandler": fileid_by_path,
    "jupyter_server_fileid.handler.FilePathHandler": fileid_by_id,
    "jupyter_server_ydoc.handlers.DocSessionHandler": doc_session,
    "jupyter_server_ydoc.handlers.YDocWebSocketHandler": collab_room,
    "noctis_rooms._websocket.GuardedYDocWebSocketHandler": collab_room,
    "jupyter_server_ydoc.handlers.DocForkHandler": no_rooms,
    "jupyter_server_ydoc.handlers.TimelineHandler": no_rooms,
    "jupyter_server_ydoc.handlers.UndoRedoHandler": no_rooms,
    "noctis_rooms._rest.RoomsListHandler": logged_in,
    "noctis_rooms._rest.RoomActionHandler": logged_in,
    "noctis_rooms._rest.UploadFileHandler": logged_in,
    # code execution
    "jupyter_server.services.kernels.handlers.MainKernelHandler": execute,
    "jupyter_server.services.kernels.handlers.KernelHandler": execute,
    "jupyter_server.services.kernels.handlers.KernelActionHandler": execute,
    "jupyter_server.services.kernels.websocket.KernelWebsocketHandler": execute,
    "jupyter_server.services.sessions.handlers.SessionRootHandler": execute,
    "jupyter_server.services.sessions.handlers.SessionHandler": execute,
    "jupyter_server_terminals.api_handlers.TerminalRootHandler": execute,
    "jupyter_server_terminals.api_handlers.TerminalHandler": execute,
    "jupyter_server_terminals.handlers.TermSocket": execute,
    "jupyter_lsp.handlers.LanguageServersHandler": execute,
    "jupyter_lsp.handlers.LanguageServerWebSocketHandler": execute,
    # Voila runs a member's notebook and serves its HTML in the lab's origin: closed
    # (see README "Threat model"); other routes are closed because they are not listed.
}


def _route_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_websocket(handler: Any) -> bool:
    upgrade: str = handler.request.headers.get("Upgrade", "")
    return upgrade.lower() == "websocket"


class RouteGate:
    """Wraps handler classes so that each request passes the gate.

    Each request passes :meth:`check_origin` and :meth:`after` once the handler has
    authenticated the user (before any body is used and before a websocket is accepted).
    """

    def __init__(
        self, log: Any, routes: dict[str, Rule] | None = None, enforce: bool = True
    ) -> None:
        self.log = log
        self.enforce = enforce
        self.max_body_bytes = 32 * 1024 * 1024
        self.routes = dict(ROUTES if routes is None else routes)
        self._wrapped: dict[type, type] = {}

    def rule_for(self, cls: type) -> Rule:
        for klass in cls.__mro__:
            name = _route_name(klass)
            if name in self.routes:
                return self.routes[name]
            if klass is cls:
                continue
            break  # only the class itself or its direct original (our wrapper)
        return refused

    def check_origin(self, handler: Any) -> None:
        """Origin: a cross-origin websocket or state-changing request is refused."""
        if handler.request.method in _SAFE_METHODS and not _is_websocket(handler):
            return
        if not isinstance(handler, JupyterHandler):
            return
        origin = handler.request.headers.get("Origin")
        if origin is None:
            return
        if not JupyterHandler.check_origin(handler, origin):
            self.refuse(handler, None, f"cross-origin request from {origin}")

    def after(self, handler: Any) -> None:
        """The route's rule, once the handler knows the user."""
        user = getattr(handler, "current_user", None)
        username = getattr(user, "username", None)
        svc = handler.settings.get("noctis_rooms")
        rec = None
        if svc is not None and username is not None and svc.identity is not None:
            rec = svc.identity.record(username)
        req = Request(
            handler=handler,
            username=username,
            method=handler.request.method,
            admin=rec is not None and rec.role == "admin",
            execute=rec is not None and rec.execute,
        )
        why = self.rule_for(type(handler))(req)
        if why == "__empty__":
            handler.set_header("Content-Type", "application/json")
            handler.finish("[]")
            return
        if why is not None:
            self.refuse(handler, username, why)

    def filter_listing(self, handler: Any, chunk: Any) -> Any:
        """A directory listing without the rooms the user may not read and server state.

        The names of rooms the user may not read are private too.
        """
        if not isinstance(chunk, str | bytes):
            return chunk
        try:
            model = json.loads(chunk)
        except ValueError:
            return chunk
        if not isinstance(model, dict) or model.get("type") != "directory":
            return chunk
        content = model.get("content")
        if not isinstance(content, list):
            return chunk
        user = getattr(handler, "current_user", None)
        req = Request(handler, getattr(user, "username", None), "GET", False, False)
        kept = [
            e
            for e in content
            if not (isinstance(e, dict) and isinstance(e.get("path"), str))
            or (
                not is_server_state(req, e["path"])
                and (not is_room(req, e["path"]) or _room_read(req, e["path"]) is None)
            )
        ]
        if len(kept) == len(content):
            return chunk
        model["content"] = kept
        return json.dumps(model)

    def refuse(self, handler: Any, username: str | None, why: str) -> None:
        self.log.warning(
            "noctis_rooms: refused %s %s for %s: %s",
            handler.request.method,
            handler.request.path,
            username or "anonymous",
            why,
        )
        raise web.HTTPError(403, why)

    def wrap(self, cls: type) -> type:
        """The gated subclass of a handler class (cached)."""
        if getattr(cls, "_noctis_gated", False) or not issubclass(cls, web.RequestHandler):
            return cls
        found = self._wrapped.get(cls)
        if found is not None:
            return found
        gate = self

        async def prepare(self: Any, *args: Any, **kwargs: Any) -> None:
            result = super(gated, self).prepare(*args, **kwargs)  # type: ignore[arg-type,misc]
            if result is not None and hasattr(result, "__await__"):
                await result
            if self._finished or not gate.enforce:
                return
            gate.check_origin(self)  # needs the user: token-authenticated scripts skip it
            gate.after(self)

        listing = _route_name(cls) == _CONTENTS

        def write(self: Any, chunk: Any) -> None:
            if listing and gate.enforce and self.request.method == "GET":
                chunk = gate.filter_listing(self, chunk)
            super(gated, self).write(chunk)  # type: ignore[arg-type,misc]

        def _request_summary(self: Any) -> str:
            # tornado logs this for every HTTPError with a message: never a ?token=
            uri = _scrub_uri(self.request.uri or "")
            return f"{self.request.method} {uri} ({self.request.remote_ip})"

        gated = type(
            cls.__name__,
            (cls,),
            {
                "prepare": prepare,
                "write": write,
                "_request_summary": _request_summary,
                "_noctis_gated": True,
                "__module__": cls.__module__,
            },
        )
        gated.__qualname__ = cls.__qualname__
        self._wrapped[cls] = gated
        return gated


class _Probe(JupyterHandler):
    """A throwaway handler to ask the identity provider who sent a request's headers."""

    def on_connection_close(self) -> None:
        return None


_LOGIN_BODY_LIMIT = 64 * 1024


class _BodyGate(httputil.HTTPMessageDelegate):
    """Refuses a request body before reading it.

    Refused: a body over the size limit (413), or one sent by someone not logged in (403;
    the login form may send a small one). The response is written at once and the
    connection closed, so the body is never buffered.
    """

    def __init__(self, inner: Any, request: Any, web_app: Any, gate: RouteGate, login: bool):
        self.inner, self.request, self.web_app, self.gate = inner, request, web_app, gate
        self.login = login
        self.refused = False

    async def _headers(self, start_line: Any, headers: Any) -> None:
        try:
            length = int(headers.get("Content-Length", "0") or 0)
        except ValueError:
            length = 0
        limit = _LOGIN_BODY_LIMIT if self.login else self.gate.max_body_bytes
        why, code = None, 0
        if not self.login:
            probe = _Probe(self.web_app, self.request)
            user: Any = probe.identity_provider.get_user(probe)
            if inspect.isawaitable(user):
                user = await user
            if user is None:
                why, code = "not logged in: request body refused unread", 403
        if why is None and length > limit:
            why, code = f"request body of {length} bytes is over the limit of {limit}", 413
        if why is not None:
            self.refuse(code, why)
            return
        result = self.inner.headers_received(start_line, headers)
        if result is not None:
            await result

    def headers_received(self, start_line: Any, headers: Any) -> Any:
        return self._headers(start_line, headers)

    def refuse(self, code: int, why: str) -> None:
        self.refused = True
        self.gate.log.warning(
            "noctis_rooms: refused %s %s before reading its body: %s",
            self.request.method,
            self.request.path,
            why,
        )
        body = json.dumps({"message": why, "reason": None}).encode()
        conn = self.request.connection
        conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", code, httputil.responses.get(code, "")),
            httputil.HTTPHeaders(
                {
                    "Content-Type": "application/json",
                    "Content-Length": str(len(body)),
                    "Connection": "close",
                }
            ),
            body,
        )
        conn.finish()  # tornado closes the connection: the rest of the body is never read

    def data_received(self, chunk: bytes) -> Any:
        return None if self.refused else self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()


def _has_body(request: Any) -> bool:
    h = request.headers
    return bool(h.get("Transfer-Encoding")) or h.get("Content-Length", "0") not in ("", "0")


def install_gate(
    web_app: Any, log: Any, *, enforce: bool = True, max_body_mb: float = 32.0
) -> RouteGate:
    """Route every handler of ``web_app`` (now and later) through a :class:`RouteGate`.

    With ``enforce=False`` (a single-user server) the rules are not applied; secrets are
    still scrubbed from the request summaries tornado logs. With ``enforce``, request
    bodies over ``max_body_mb`` or from someone not logged in are refused unread.
    """
    gate = RouteGate(log, enforce=enforce)
    gate.max_body_bytes = int(max_body_mb * 1024 * 1024)
    original = web_app.get_handler_delegate

    def get_handler_delegate(request: Any, target_class: type, *args: Any, **kwargs: Any) -> Any:
        inner = original(request, gate.wrap(target_class), *args, **kwargs)
        if not gate.enforce or not _has_body(request):
            return inner
        login = gate.rule_for(target_class) is public
        return _BodyGate(inner, request, web_app, gate, login)

    web_app.get_handler_delegate = get_handler_delegate
    return gate
