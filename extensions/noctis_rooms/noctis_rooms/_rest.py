"""REST API under ``/api/noctis/rooms``: rooms, membership, moderation, presence, uploads.

``POST reactions`` toggles the user's reaction, ``POST receipts`` moves the user's read
receipt forward and ``POST presence`` is a heartbeat (the Room panel's calls; the same
metadata keys may also be written over the websocket, under the guard's rules).

All routes need an authenticated user; every action checks the user's rights in the
room. Errors are JSON ``{"message": ...}`` with 400 (bad request), 403 (not allowed) or
404 (no such room).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from jupyterlab_chat.models import Message, message_asdict_factory
from pycrdt import Map
from tornado import web

from noctis_lab._errors import ChatPermissionError, RoomError

from ._guard import _MAX_REACTIONS_PER_MESSAGE, _REACT_PREFIX, _READ_PREFIX
from ._identity import ROLES
from ._messages import escape_markdown, quote_reply

__all__ = ["MAX_UPLOAD_BYTES", "UPLOAD_QUOTA_BYTES", "rest_handlers"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: What one user may keep uploaded in one room (deleting a message frees its upload).
UPLOAD_QUOTA_BYTES = 50 * 1024 * 1024
_MAX_EMOJI_CHARS = 32
_ACTIONS = (
    "info",
    "join",
    "leave",
    "invite",
    "role",
    "mute",
    "remove",
    "modlog",
    "presence",
    "receipts",
    "reactions",
    "messages",
    "reply",
    "delete-message",
    "system-message",
    "upload",
)


def sniff_type(data: bytes, filename: str) -> str | None:
    """The MIME type of an upload from its first bytes (None when not accepted)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[128:132] == b"DICM":
        return "application/dicom"
    lower = filename.lower()
    if lower.endswith((".txt", ".csv", ".md", ".json", ".log")):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if "\x00" in text:
            return None
        return "text/csv" if lower.endswith(".csv") else "text/plain"
    return None


def _errors(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(fn)
    async def wrapper(self: RoomsAPIHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await fn(self, *args, **kwargs)
        except ChatPermissionError as exc:
            raise web.HTTPError(403, str(exc)) from exc
        except RoomError as exc:
            raise web.HTTPError(404 if "does not exist" in str(exc) else 400, str(exc)) from exc

    return wrapper


class RoomsAPIHandler(APIHandler):
    """Shared helpers."""

    @property
    def svc(self) -> Any:
        return self.settings["noctis_rooms"]

    @property
    def username(self) -> str:
        return str(self.current_user.username)

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise RoomError("request body must be JSON") from exc
        if not isinstance(data, dict):
            raise RoomError("request body must be a JSON object")
        return data

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class RoomsListHandler(RoomsAPIHandler):
    """``GET /api/noctis/rooms``: rooms the user can read. ``POST``: create a room."""

    @web.authenticated
    @_errors
    async def get(self) -> None:
        out = []
        for room in self.svc.store.rooms():
            acc = self.svc.access(room.path, self.username)
            if acc.read:
                out.append({**room.to_dict(), "access": acc.to_dict()})
        self.reply({"rooms": out})

    @web.authenticated
    @_errors
    async def post(self) -> None:
        b = self.body()
        path = b.get("path")
        if not isinstance(path, str):
            raise RoomError("'path' (the .chat file to create) is required")
        members = b.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise RoomError("'members' must be a list of usernames")
        room = self.svc.create_room(
            path,
            self.username,
            kind=b.get("kind", "general"),
            visibility=b.get("visibility", "public"),
            title=b.get("title"),
            members=members,
        )
        self.reply({"room": room.to_dict()}, status=201)


class RoomActionHandler(RoomsAPIHandler):
    """``/api/noctis/rooms/<action>/<path>``."""

    @web.authenticated
    @_errors
    async def get(self, action: str, path: str) -> None:
        svc, user = self.svc, self.username
        if action == "info":
            room, acc = svc.require(path, user, "read")
            members = [m.to_dict() for m in svc.store.members(room.path)]
            self.reply({"room": room.to_dict(), "access": acc.to_dict(), "members": members})
        elif action == "modlog":
            room, _ = svc.require(path, user, "moderate")
            self.reply({"entries": [e.to_dict() for e in svc.store.moderation_log(room.path)]})
        elif action == "presence":
            room, _ = svc.require(path, user, "read")
            self.reply(svc.presence(room.path))
        elif action in ("receipts", "reactions", "messages"):
            room, _ = svc.require(path, user, "read")
            chat = await svc.live_chat(room.path)
            self.reply(_read_view(chat, action))
        else:
            raise web.HTTPError(405)

    @web.authenticated
    @_errors
    async def post(self, action: str, path: str) -> None:
        if action == "upload":  # the body is the file, not JSON
            await self._upload(path)
            return
        b = self.body()
        if action in _MODERATION:
            await self._moderate(action, path, b)
            return
        run = _POST_ACTIONS.get(action)
        if run is None:
            raise web.HTTPError(405)
        await run(self, path, b)

    async def _join(self, path: str, b: dict[str, Any]) -> None:
        """Join a public room, or a private one the user is invited to (not once removed)."""
        svc, user, store = self.svc, self.username, self.svc.store
        room = svc.ensure_room(path, user)
        if room is None:
            raise RoomError(f"room {path!r} does not exist")
        m = store.member(room.path, user)
        if room.visibility == "private" and (m is None or m.state != "active"):
            raise ChatPermissionError(
                f"room {room.path!r} is private: ask a moderator to invite {user}"
            )
        if m is not None and m.state == "removed":
            raise ChatPermissionError(f"{user} was removed from room {room.path!r}")
        if m is None or m.state != "active":
            store.set_member(room.path, user, state="active")
            await svc.post(room.path, f"{self.current_user.display_name or user} joined the room")
        self.reply({"member": store.member(room.path, user).to_dict()})

    async def _leave(self, path: str, b: dict[str, Any]) -> None:
        """Leave the room (a member who left can join a public room again)."""
        svc, user, store = self.svc, self.username, self.svc.store
        room, _ = svc.require(path, user, "read")
        m = store.member(room.path, user)
        if m is not None and m.state == "active":
            store.set_member(room.path, user, state="left")
            await svc.post(room.path, f"{self.current_user.display_name or user} left the room")
        self.reply({"left": True})

    async def _delete_message(self, path: str, b: dict[str, Any]) -> None:
        """Delete ``message_id`` (its author, or a moderator; see ``RoomsService``)."""
        mid = b.get("message_id")
        if not isinstance(mid, str):
            raise RoomError("'message_id' is required")
        await self.svc.delete_message(path, self.username, mid)
        self.reply({"deleted": mid})

    async def _reply(self, path: str, b: dict[str, Any]) -> None:
        """Post ``text`` as a reply to ``reply_to``, quoting the original."""
        svc, user = self.svc, self.username
        room, _ = svc.require(path, user, "write")
        mid, text = b.get("reply_to"), b.get("text")
        if not isinstance(mid, str) or not isinstance(text, str) or not text.strip():
            raise RoomError("'reply_to' (message id) and 'text' are required")
        chat = await svc.live_chat(room.path)
        orig = chat.get_message(mid)
        if orig is None:
            raise RoomError(f"message {mid!r} is not in room {room.path!r}")
        svc.ensure_user_entry(chat, user, self.current_user.display_name)
        new_id = _append(chat, user, quote_reply(orig.body, orig.sender, text), {"reply_to": mid})
        self.reply({"id": new_id}, status=201)

    async def _heartbeat(self, path: str, b: dict[str, Any]) -> None:
        """Presence heartbeat: the user is here now; answers who is online."""
        room, _ = self.svc.require(path, self.username, "read")
        self.svc.seen(room.path, self.username)
        self.reply(self.svc.presence(room.path))

    async def _system_message(self, path: str, b: dict[str, Any]) -> None:
        """Post ``text`` (and an optional ``study_link``) as the QA bot (room admins)."""
        room, _ = self.svc.require(path, self.username, "administer")
        text = b.get("text")
        if not isinstance(text, str):
            raise RoomError("'text' is required")
        mid = await self.svc.post(room.path, text, study_link=b.get("study_link"))
        self.reply({"id": mid}, status=201)

    @web.authenticated
    @_errors
    async def patch(self, action: str, path: str) -> None:
        if action != "info":
            raise web.HTTPError(405)
        room, _ = self.svc.require(path, self.username, "administer")
        b = self.body()
        new = self.svc.store.update_room(
            room.path, kind=b.get("kind"), visibility=b.get("visibility"), title=b.get("title")
        )
        self.svc.store.log(
            room.path, self.username, "settings", detail=json.dumps(b, sort_keys=True)
        )
        if new.visibility == "private":
            for m in self.svc._connections.get(room.path, set()).copy():
                uname = getattr(m, "noctis_username", None)
                if uname is not None and not self.svc.access(room.path, uname).read:
                    self.svc.kick(room.path, uname, "the room is now private")
        self.reply({"room": new.to_dict()})

    async def _react(self, path: str, b: dict[str, Any]) -> None:
        """Toggle (or set with ``on``) the user's ``emoji`` on a message, server-side."""
        svc, user = self.svc, self.username
        room, _ = svc.require(path, user, "write")
        mid, emoji, on = b.get("message_id"), b.get("emoji"), b.get("on")
        if not isinstance(mid, str) or not isinstance(emoji, str) or not emoji.strip():
            raise RoomError("'message_id' and 'emoji' are required")
        if len(emoji) > _MAX_EMOJI_CHARS:
            raise RoomError(f"'emoji' must be at most {_MAX_EMOJI_CHARS} characters")
        if on is not None and not isinstance(on, bool):
            raise RoomError("'on' must be true, false or absent (toggle)")
        chat = await svc.live_chat(room.path)
        if chat.get_message(mid) is None:
            raise RoomError(f"message {mid!r} is not in room {room.path!r}")
        key = f"{_REACT_PREFIX}{user}"
        current = chat.get_metadata().get(key)
        mine: dict[str, list[str]] = {
            k: [e for e in v if isinstance(e, str)]
            for k, v in (current.items() if isinstance(current, dict) else ())
            if isinstance(v, list)
        }
        emojis = mine.get(mid, [])
        want = (emoji not in emojis) if on is None else on
        if want and emoji not in emojis:
            if len(emojis) >= _MAX_REACTIONS_PER_MESSAGE:
                raise RoomError(
                    f"at most {_MAX_REACTIONS_PER_MESSAGE} reactions per message and user"
                )
            emojis = [*emojis, emoji]
        elif not want:
            emojis = [e for e in emojis if e != emoji]
        if emojis:
            mine[mid] = emojis
        else:
            mine.pop(mid, None)
        chat.set_metadata(key, mine)
        counts = _read_view(chat, "reactions")["reactions"].get(mid, {})
        self.reply({"message_id": mid, "reactions": counts, "mine": emojis})

    async def _mark_read(self, path: str, b: dict[str, Any]) -> None:
        """Move the user's read receipt forward to ``message_id`` (never backward)."""
        svc, user = self.svc, self.username
        room, _ = svc.require(path, user, "read")
        mid = b.get("message_id")
        if not isinstance(mid, str):
            raise RoomError("'message_id' is required")
        chat = await svc.live_chat(room.path)
        target = chat.get_message(mid)
        if target is None:
            raise RoomError(f"message {mid!r} is not in room {room.path!r}")
        key = f"{_READ_PREFIX}{user}"
        current = chat.get_metadata().get(key)
        cur_id = current.get("message_id") if isinstance(current, dict) else None
        cur_msg = chat.get_message(cur_id) if isinstance(cur_id, str) else None
        if cur_msg is None or float(target.time) >= float(cur_msg.time):
            chat.set_metadata(key, {"message_id": mid, "time": time.time()})
            cur_id = mid
        svc.seen(room.path, user)
        self.reply({"read": cur_id})

    async def _moderate(self, action: str, path: str, b: dict[str, Any]) -> None:
        """Invite, set the role of, mute or remove the member ``username``."""
        svc, user = self.svc, self.username
        target = b.get("username")
        if not isinstance(target, str) or not target:
            raise RoomError("'username' is required")
        if svc.identity is not None and svc.known_user(target) is None:
            raise RoomError(f"unknown user {target!r}")
        right = "administer" if action == "role" else "moderate"
        room, acc = svc.require(path, user, right)
        if action in ("mute", "remove"):
            if target == user:
                raise RoomError(f"a moderator cannot {action} themselves")
            if svc.access(room.path, target).administer and not acc.administer:
                raise ChatPermissionError(f"{user} may not {action} the admin {target}")
        await _MODERATION[action](self, room.path, target, acc.administer, b)
        self.reply({"member": svc.store.member(room.path, target).to_dict()})

    async def _invite(self, room: str, target: str, administer: bool, b: dict[str, Any]) -> None:
        """Make ``target`` an active member with ``role`` (other roles than member: admins)."""
        role = b.get("role", "member")
        if role not in ROLES:
            raise RoomError(f"role must be one of {ROLES}")
        if role != "member" and not administer:
            raise ChatPermissionError(f"only an admin may invite a {role}")
        self.svc.store.set_member(room, target, role=role, state="active")
        self.svc.store.log(room, self.username, "invite", target_user=target, detail=role)
        await self.svc.post(room, f"{target} was invited by {self.username}")

    async def _set_role(self, room: str, target: str, administer: bool, b: dict[str, Any]) -> None:
        """Give ``target`` the ``role`` (the room's admins; checked by ``_moderate``)."""
        role = b.get("role")
        if role not in ROLES:
            raise RoomError(f"role must be one of {ROLES}")
        current = self.svc.store.member(room, target)
        state = current.state if current else "active"
        self.svc.store.set_member(room, target, role=role, state=state)
        self.svc.store.log(room, self.username, "role", target_user=target, detail=role)

    async def _mute(self, room: str, target: str, administer: bool, b: dict[str, Any]) -> None:
        """Mute (``muted``: true, the default) or unmute a member."""
        muted = bool(b.get("muted", True))
        if self.svc.store.member(room, target) is None:
            raise RoomError(f"{target} is not a member of {room!r}")
        self.svc.store.set_member(room, target, muted=muted)
        self.svc.store.log(room, self.username, "mute" if muted else "unmute", target_user=target)

    async def _remove(self, room: str, target: str, administer: bool, b: dict[str, Any]) -> None:
        """Remove a member: their connections close and they cannot join again."""
        svc = self.svc
        if svc.store.member(room, target) is None:
            raise RoomError(f"{target} is not a member of {room!r}")
        svc.store.set_member(room, target, state="removed")
        svc.store.log(room, self.username, "remove", target_user=target, detail=b.get("reason"))
        svc.kick(room, target, f"{target} was removed from the room")
        await svc.post(room, f"{target} was removed from the room by {self.username}")

    async def _upload(self, path: str) -> None:
        """Keep the request body as an upload of the room and post a message linking it."""
        svc, user = self.svc, self.username
        room, _ = svc.require(path, user, "write")
        filename = self.get_query_argument("filename", "")
        data = self.request.body or b""
        mimetype = self._accept_upload(room.path, filename, data)
        upload_id = uuid.uuid4().hex
        folder = svc.state_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / upload_id).write_bytes(data)
        svc.store.add_upload(
            {
                "id": upload_id,
                "path": room.path,
                "filename": filename,
                "mimetype": mimetype,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "uploaded_by": user,
                "time": time.time(),
            }
        )
        url = url_path_join(self.base_url, "api/noctis/uploads", upload_id)
        mid = await self._post_upload(room.path, filename, url, mimetype, len(data), upload_id)
        self.reply(
            {"id": upload_id, "url": url, "message_id": mid, "mimetype": mimetype}, status=201
        )

    def _accept_upload(self, room: str, filename: str, data: bytes) -> str:
        """The MIME type of an acceptable upload: a plain name, size, quota, known type."""
        if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
            raise RoomError("query argument 'filename' (a plain file name) is required")
        if not data:
            raise RoomError("the upload is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise RoomError(f"the upload is {len(data)} bytes; the limit is {MAX_UPLOAD_BYTES}")
        used = self.svc.store.upload_bytes(room, self.username)
        if self.svc.gate_enabled and used + len(data) > UPLOAD_QUOTA_BYTES:
            raise RoomError(
                f"upload quota: {self.username} keeps {used} bytes in {room}; with this one it "
                f"would pass {UPLOAD_QUOTA_BYTES} (delete old attachments first)"
            )
        mimetype = sniff_type(data, filename)
        if mimetype is None:
            raise RoomError(
                f"{filename!r}: type not accepted (PNG, JPEG, GIF, PDF, DICOM, text, CSV)"
            )
        return mimetype

    async def _post_upload(
        self, room: str, filename: str, url: str, mimetype: str, size: int, upload_id: str
    ) -> str:
        """Post the message that shows (images) or links (other files) an upload."""
        label = escape_markdown(filename)
        body = f"![{label}]({url})" if mimetype.startswith("image/") else f"📎 [{label}]({url})"
        comment = self.get_query_argument("text", "")
        if comment:
            body = f"{escape_markdown(comment)}\n\n{body}"
        chat = await self.svc.live_chat(room)
        self.svc.ensure_user_entry(chat, self.username, self.current_user.display_name)
        upload = {"id": upload_id, "mimetype": mimetype, "size": size}
        return _append(chat, self.username, body, {"upload": upload})


_Action = Callable[[RoomActionHandler, str, dict[str, Any]], Awaitable[None]]
_Moderation = Callable[[RoomActionHandler, str, str, bool, dict[str, Any]], Awaitable[None]]

#: ``POST /api/noctis/rooms/<action>/<path>``: the step of each action (JSON body).
_POST_ACTIONS: dict[str, _Action] = {
    "join": RoomActionHandler._join,
    "leave": RoomActionHandler._leave,
    "delete-message": RoomActionHandler._delete_message,
    "reply": RoomActionHandler._reply,
    "reactions": RoomActionHandler._react,
    "receipts": RoomActionHandler._mark_read,
    "presence": RoomActionHandler._heartbeat,
    "system-message": RoomActionHandler._system_message,
}

#: The moderation actions (after the checks of ``RoomActionHandler._moderate``).
_MODERATION: dict[str, _Moderation] = {
    "invite": RoomActionHandler._invite,
    "role": RoomActionHandler._set_role,
    "mute": RoomActionHandler._mute,
    "remove": RoomActionHandler._remove,
}


class UploadFileHandler(RoomsAPIHandler):
    """``GET /api/noctis/uploads/<id>``: the file, for readers of its room."""

    @web.authenticated
    @_errors
    async def get(self, upload_id: str) -> None:
        row = self.svc.store.get_upload(upload_id)
        if row is None:
            raise web.HTTPError(404, "no such upload")
        self.svc.require(row["path"], self.username, "read")
        data = (self.svc.state_dir / "uploads" / upload_id).read_bytes()
        self.set_header("Content-Type", row["mimetype"])
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        disposition = "inline" if row["mimetype"].startswith("image/") else "attachment"
        safe = "".join(c for c in row["filename"] if c.isalnum() or c in "._- ") or "file"
        self.set_header("Content-Disposition", f'{disposition}; filename="{safe}"')
        self.finish(data)


def _append(chat: Any, sender: str, body: str, metadata: dict[str, Any]) -> str:
    """Append a message written by the server on behalf of ``sender`` (already authorised)."""
    mid = str(uuid.uuid4())
    msg = Message(
        body=body, id=mid, time=time.time(), sender=sender, metadata=metadata, raw_time=False
    )
    with chat.ydoc.transaction():
        chat.ymessages.append(Map(asdict(msg, dict_factory=message_asdict_factory)))
    return mid


def _read_view(chat: Any, action: str) -> dict[str, Any]:
    """Messages with replies, reactions and read receipts resolved.

    ``action`` is ``reactions`` (message id -> emoji -> users), ``receipts`` (message id ->
    the users who read it) or ``messages`` (each message with both, and the users' names).
    """
    messages = chat._get_messages()
    meta = chat.get_metadata()
    reactions = _reactions(meta)
    if action == "reactions":
        return {"reactions": reactions}
    receipts = _receipts(messages, _read_times(meta, messages))
    if action == "receipts":
        return {"receipts": receipts}
    out = [_message_view(m, reactions, receipts) for m in messages]
    users = {
        name: (u.display_name or u.name or name)
        for name, u in chat.get_users().items()
        if u is not None
    }
    return {"messages": out, "users": users}


def _reactions(meta: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Message id -> emoji -> the users who reacted so (from each user's metadata key)."""
    reactions: dict[str, dict[str, list[str]]] = {}
    for k, v in meta.items():
        if k.startswith(_REACT_PREFIX) and isinstance(v, dict):
            u = k[len(_REACT_PREFIX) :]
            for mid, emojis in v.items():
                for e in emojis if isinstance(emojis, list) else []:
                    reactions.setdefault(mid, {}).setdefault(e, []).append(u)
    return reactions


def _read_times(meta: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, float]:
    """User -> the time of the message their read receipt names."""
    by_id = {m.get("id"): m for m in messages}
    read_time: dict[str, float] = {}
    for k, v in meta.items():
        if k.startswith(_READ_PREFIX) and isinstance(v, dict):
            target = by_id.get(v.get("message_id"))
            if target is not None:
                read_time[k[len(_READ_PREFIX) :]] = float(target.get("time", 0))
    return read_time


def _receipts(messages: list[dict[str, Any]], read_time: dict[str, float]) -> dict[Any, list[str]]:
    """Message id -> the users (not its sender) who read up to it or later."""
    return {
        m.get("id"): sorted(
            u for u, t in read_time.items() if float(m.get("time", 0)) <= t and u != m.get("sender")
        )
        for m in messages
    }


def _message_view(
    m: dict[str, Any],
    reactions: dict[str, dict[str, list[str]]],
    receipts: dict[Any, list[str]],
) -> dict[str, Any]:
    """One message as the ``messages`` view shows it."""
    mid: Any = m.get("id")
    meta_m = m.get("metadata") or {}
    return {
        "id": mid,
        "sender": m.get("sender"),
        "body": m.get("body"),
        "time": m.get("time"),
        "deleted": bool(m.get("deleted")),
        "edited": bool(m.get("edited")),
        "reply_to": meta_m.get("reply_to") if isinstance(meta_m, dict) else None,
        "study_link": meta_m.get("study_link") if isinstance(meta_m, dict) else None,
        "reactions": reactions.get(mid, {}),
        "read_by": receipts.get(mid, []),
    }


def rest_handlers(base_url: str) -> list[tuple[str, type, dict[str, Any]]]:
    """The routes, for ``web_app.add_handlers``."""
    actions = "|".join(a.replace("-", r"\-") for a in _ACTIONS)
    return [
        (url_path_join(base_url, r"api/noctis/rooms/?"), RoomsListHandler, {}),
        (
            url_path_join(base_url, rf"api/noctis/rooms/({actions})/(.+\.chat)"),
            RoomActionHandler,
            {},
        ),
        (url_path_join(base_url, r"api/noctis/uploads/([0-9a-f]{32})"), UploadFileHandler, {}),
    ]
