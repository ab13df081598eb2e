"""A jupyter_server Authorizer that consults room membership for ``.chat`` paths."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from jupyter_server.auth.authorizer import AllowAllAuthorizer, Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import Instance

from noctis_lab._errors import RoomError

if TYPE_CHECKING:
    from ._service import RoomsService

__all__ = ["NoctisAuthorizer"]

_HIDDEN_STATE = (".noctis", ".jupyter_ystore.db")
#: jupyter_server_ydoc handlers that expose a document's history or a copy of it.
_HISTORY_HANDLERS = ("TimelineHandler", "DocForkHandler", "UndoRedoHandler")


#: Resources open to every logged-in team member (the route gate refines some of them).
_OPEN_RESOURCES = frozenset({"api", "config", "csp", "kernelspecs", "nbconvert", "events"})
#: Resources that run code as the server's account.
_EXECUTE_RESOURCES = frozenset({"kernels", "sessions", "terminals", "lsp"})


def _handler_path(handler: web.RequestHandler) -> str | None:
    path = handler.path_kwargs.get("path") if handler.path_kwargs else None
    if path is None and handler.path_args:
        path = handler.path_args[0]
    return None if path is None else str(path)


class NoctisAuthorizer(Authorizer):
    """Room rules for ``.chat`` files, on top of another authorizer.

    - Server state (``.noctis/``, ``.jupyter_ystore.db``) is never served.
    - Reading a ``.chat`` file (contents GET, ``/files``, collaboration session) needs
      read access to the room; writing it through REST (save, rename, delete) needs
      the room's admin; creating a new ``.chat`` file registers the creator as admin.
    - History, fork and undo endpoints of jupyter-collaboration are refused for chats
      (they would expose deleted text or bypass the websocket rules).
    - With the team identity (a users file): kernels, sessions, terminals and language
      servers need the user's ``execute`` right; server shutdown needs the site admin;
      a resource this authorizer does not know is refused (default deny).
    """

    delegate = Instance(Authorizer, allow_none=True)

    def is_authorized(
        self, handler: JupyterHandler, user: User, action: str, resource: str
    ) -> bool:
        delegate = self.delegate or AllowAllAuthorizer(
            parent=self, identity_provider=self.identity_provider
        )
        if not delegate.is_authorized(handler, user, action, resource):
            return False
        svc: RoomsService | None = handler.settings.get("noctis_rooms")
        if resource != "contents":
            return self._site_right(svc, user, action, resource)
        raw = _handler_path(handler)
        if svc is None or raw is None:
            return True
        norm = raw.strip("/")
        first = norm.split("/", 1)[0]
        if first in _HIDDEN_STATE or posixpath.basename(norm) == ".jupyter_ystore.db":
            return False
        cls = type(handler).__name__
        if cls in _HISTORY_HANDLERS:
            return not (norm.endswith(".chat") or ":chat:" in norm)
        if not norm.endswith(".chat"):
            return True
        try:
            exists = svc.file_exists(norm)
            if not exists:
                if action == "write" and handler.request.method in ("PUT", "POST"):
                    # creating a new chat file: the creator administers the room
                    if svc.store.get_room(norm) is None:
                        svc.store.create_room(norm, created_by=user.username)
                        svc.store.log(norm, user.username, "create")
                    return svc.access(norm, user.username).administer
                return True  # let the contents manager answer 404
            room = svc.ensure_room(norm, user.username)
        except RoomError:
            return False
        if room is None:
            return False
        acc = svc.access(room.path, user.username)
        if action == "read" or cls == "DocSessionHandler":
            return acc.read
        return acc.administer

    @staticmethod
    def _site_right(svc: RoomsService | None, user: User, action: str, resource: str) -> bool:
        """Non-contents resources: the execute right, the site admin, or default deny."""
        identity = None if svc is None else svc.identity
        if identity is None or not getattr(svc, "gate_enabled", True):
            return True  # single-user lab: the one token holder owns the server
        rec = identity.record(user.username)
        if rec is None:
            return False
        if resource in _EXECUTE_RESOURCES:
            return rec.execute
        if resource == "server":
            return rec.role == "admin"
        return resource in _OPEN_RESOURCES
