"""The collaboration websocket with server-side chat rules.

``GuardedYDocWebSocketHandler`` replaces jupyter_server_ydoc's ``YDocWebSocketHandler``
on ``/api/collaboration/room/(.*)``. For chat rooms (``text:chat:<fileId>``) it

- refuses the connection (403) when the user may not read the room;
- checks every incoming document update (SYNC step 2 and update messages) with the
  room's :class:`~noctis_rooms._guard.RoomGuard` before it reaches the room; a refused
  update is dropped and logged, the client receives a RAW message
  ``{"type": "noctis-rejected", "reasons": [...]}`` and the connection is closed with
  code 1003 (the stock frontend then offers to reload, which resynchronises it);
- checks awareness updates (no impersonation in cursors or typing indicators);
- records presence and logs moderator deletions, and purges deleted text from the store.

Other rooms (notebooks, files) pass through unchanged.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server_ydoc.handlers import YDocWebSocketHandler
from jupyter_server_ydoc.utils import MessageType, decode_file_path, room_id_from_encoded_path
from pycrdt import Encoder, YMessageType, YSyncMessageType
from tornado import web

from ._guard import Actor, Verdict, check_awareness, safe_chat_json, scrub_chat
from ._order import take_over_timing
from ._store import normalize_path

__all__ = ["RATE_LIMIT", "GuardedYDocWebSocketHandler"]

#: At most this many new messages per this many seconds on one connection.
RATE_LIMIT: tuple[int, float] = (30, 10.0)


def _read_varlen(message: bytes, pos: int) -> bytes | None:
    """The var-length (LEB128-prefixed) payload starting at ``pos`` (None when malformed)."""
    value, shift = 0, 0
    while True:
        if pos >= len(message):
            return None
        b = message[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    payload = message[pos : pos + value]
    return payload if len(payload) == value else None


def _read_payload(message: bytes) -> bytes | None:
    """The payload after a 2-byte SYNC header (message type, sync type)."""
    return _read_varlen(message, 2)


def _read_awareness_payload(message: bytes) -> bytes | None:
    """The payload after a 1-byte AWARENESS header."""
    return _read_varlen(message, 1)


class GuardedYDocWebSocketHandler(YDocWebSocketHandler):  # type: ignore[misc]
    """YDocWebSocketHandler that enforces the room rules for chat documents."""

    noctis_path: str | None = None
    noctis_username: str | None = None
    _noctis_connected: bool = False

    @property
    def _svc(self) -> Any:
        return self.settings.get("noctis_rooms")

    def check_origin(self, origin: str) -> bool:
        """jupyter_server's rule: a browser connection must come from the server's own origin.

        The stock collaboration handler accepts any Origin, so a page on another origin
        could use a logged-in user's cookie.
        """
        svc = self._svc
        if svc is not None and not svc.gate_enabled:
            return True  # protection off (NoctisRoomsGate.enabled=False): the stock rule
        return JupyterHandler.check_origin(self, origin)

    def _chat_path(self) -> str | None:
        room_id = room_id_from_encoded_path(self.request.path)
        if room_id.count(":") < 2:
            return None
        _fmt, file_type, file_id = decode_file_path(room_id)
        if file_type != "chat":
            return None
        path = self.settings["file_id_manager"].get_path(file_id)
        if not path:
            raise web.HTTPError(404, f"no file with id {file_id}")
        return normalize_path(str(path))

    async def prepare(self) -> None:
        self._load_chats_safely()
        await super().prepare()
        svc = self._svc
        if svc is None:
            return
        path = self._chat_path()
        if path is None:
            return
        user = self.current_user
        if user is None:
            raise web.HTTPError(403)
        room = svc.ensure_room(path, user.username)
        if room is None:
            raise web.HTTPError(404, f"room {path!r} does not exist")
        self.noctis_path = path
        self.noctis_username = user.username
        self._scrub_loaded_chat()
        acc = svc.access(path, user.username)
        if not acc.read:
            svc.log.warning(
                "noctis_rooms: %s refused room %s (not allowed to read)", user.username, path
            )
            raise web.HTTPError(403, f"{user.username} may not read room {path!r}")

    async def open(self, room_id: str) -> None:
        await super().open(room_id)
        svc, path, username = self._svc, self.noctis_path, self.noctis_username
        if svc is None or path is None or username is None or self.room is None:
            return
        svc.connect(path, username, self)
        self._noctis_connected = True
        room = svc.store.get_room(path)
        member = svc.store.member(path, username)
        if room is not None and room.visibility != "private" and member is None:
            # First visit to a public room: join it (a user who left or was removed stays out).
            svc.store.set_member(path, username, role="member", state="active")
            try:
                await svc.post(path, f"{self._display_name()} joined the room")
            except Exception:  # pragma: no cover - the join itself succeeded
                svc.log.exception("noctis_rooms: join message for %s failed", path)
        svc.guard(self._room_id, self.room.ydoc, path)
        chat = getattr(self.room, "_document", None)
        if chat is not None and hasattr(chat, "set_user"):
            svc.ensure_user_entry(chat, username, self._display_name())
            if svc.gate_enabled:
                take_over_timing(chat)  # new messages are stamped and placed by id
        owners = svc.awareness_owners(self._room_id)
        owners.setdefault(self.room.awareness.client_id, "__server__")
        owners.setdefault(self.room.ydoc.client_id, "__server__")

    def _load_chats_safely(self) -> None:
        """Make every load of a chat file pass through :func:`safe_chat_json`.

        Installed before the room loads its file: the first load and the reloads after the
        file changed on disk.
        """
        svc = self._svc
        room_id = room_id_from_encoded_path(self.request.path)
        if svc is None or not svc.gate_enabled or room_id.count(":") < 2:
            return
        _fmt, file_type, file_id = decode_file_path(room_id)
        if file_type != "chat":
            return
        loader = self._file_loaders[file_id]
        if getattr(loader, "_noctis_safe", False):
            return
        original = loader.load_content

        async def load_content(format: str, file_type: str) -> dict[str, Any]:
            model: dict[str, Any] = await original(format, file_type)
            if isinstance(model.get("content"), str):
                model = {**model, "content": safe_chat_json(model["content"])}
            return model

        loader.load_content = load_content
        loader._noctis_safe = True

    def _scrub_loaded_chat(self) -> None:
        """A room loaded before any client came (e.g. by the bot) is scrubbed too."""
        chat = getattr(self.room, "_document", None)
        if chat is None or not hasattr(chat, "ymessages") or not self._svc.gate_enabled:
            return
        n = scrub_chat(chat.ymessages)
        if n:
            self._svc.log.warning(
                "noctis_rooms: %d unsafe message(s) in %s made safe", n, self.noctis_path
            )

    def _display_name(self) -> str:
        u = self.current_user
        return str(getattr(u, "display_name", None) or getattr(u, "username", "someone"))

    def _actor(self) -> Actor:
        svc, path, username = self._svc, self.noctis_path, self.noctis_username
        assert path is not None and username is not None
        u = self.current_user
        profile = {
            "username": username,
            "name": getattr(u, "name", username),
            "display_name": getattr(u, "display_name", username),
        }
        return Actor(username, svc.access(path, username), svc.known_user_for(username, profile))

    async def on_message(self, message: Any) -> None:
        """Check a chat room's document and awareness updates before the room sees them."""
        if (
            self._svc is None
            or self.noctis_path is None
            or not isinstance(message, bytes | bytearray)
            or not message
        ):
            await super().on_message(message)
            return
        message = bytes(message)
        kind = message[0]
        if kind == MessageType.RAW:
            await super().on_message(message)
        elif kind == YMessageType.SYNC:
            await self._on_sync(message)
        elif kind == YMessageType.AWARENESS:
            await self._on_awareness(message)
        else:
            self.noctis_refuse([f"unknown message type {kind}"], close=False)

    async def _on_sync(self, message: bytes) -> None:
        """A SYNC message: step 1 passes; step 2 and updates pass the guard and the rate."""
        sub = message[1] if len(message) > 1 else -1
        if sub == YSyncMessageType.SYNC_STEP1:
            await super().on_message(message)
            return
        if sub not in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
            self.noctis_refuse(["unknown sync message"], close=True)
            return
        payload = _read_payload(message)
        if payload is None:
            self.noctis_refuse(["malformed sync message"], close=True)
            return
        guard = self._svc.guard(self._room_id, self.room.ydoc, self.noctis_path)
        verdict = guard.check(payload, self._actor())
        if not verdict.ok:
            self.noctis_refuse(list(verdict.reasons), close=True)
            return
        if verdict.new_ids and not self._within_rate(len(verdict.new_ids)):
            n, per = RATE_LIMIT
            self.noctis_refuse(
                [f"rate limit: at most {n} new messages per {per:g} s on one connection"],
                close=True,
            )
            return
        await super().on_message(message)
        self._after_update(verdict)

    def _after_update(self, verdict: Verdict) -> None:
        """What an accepted update sets off: moderation log, purge, stamping, presence."""
        svc, path, username = self._svc, self.noctis_path, self.noctis_username
        for mid, author in verdict.moderator_deletions:
            svc.store.log(path, username, "delete_message", target_user=author, message_id=mid)
        chat = getattr(self.room, "_document", None)
        if svc.gate_enabled and verdict.deleted_ids:
            svc.forget_deleted(chat, verdict.deleted_ids, verdict.deleted_uploads)
        if verdict.deleted_ids or (svc.gate_enabled and verdict.edited_ids):
            svc.schedule_purge(path)
        if verdict.new_ids and chat is not None and hasattr(chat, "ymessages"):
            svc.stamp_later(chat, verdict.new_ids)
        svc.seen(path, username)

    async def _on_awareness(self, message: bytes) -> None:
        """An awareness update passes only as the connection's own user."""
        svc, username = self._svc, self.noctis_username
        assert username is not None
        payload = _read_awareness_payload(message)
        owners = svc.awareness_owners(self._room_id)
        why = (
            "malformed awareness message"
            if payload is None
            else check_awareness(payload, username, svc.known_user(username), owners)
        )
        if why is None:
            await super().on_message(message)
        elif "belongs to another user" in why:
            # y-websocket clients echo the states of others: drop quietly.
            svc.log.debug("noctis_rooms: dropped echoed awareness from %s", username)
        else:
            self.noctis_refuse([why], close=False)

    def _within_rate(self, new: int) -> bool:
        """Sliding window of new messages on this connection (protection on only)."""
        if not self._svc.gate_enabled:
            return True
        n, per = RATE_LIMIT
        now = time.monotonic()
        stamps = self.__dict__.setdefault("_noctis_posts", deque())
        while stamps and now - stamps[0] > per:
            stamps.popleft()
        if len(stamps) + new > n:
            return False
        stamps.extend([now] * new)
        return True

    def noctis_refuse(self, reasons: list[str], *, close: bool) -> None:
        """Log a refused message, tell the client, and (for document updates) close."""
        svc = self._svc
        svc.log.warning(
            "noctis_rooms: refused %s from %s in %s: %s",
            "update" if close else "message",
            self.noctis_username,
            self.noctis_path,
            "; ".join(reasons),
        )
        enc = Encoder()
        enc.write_var_uint(MessageType.RAW)
        enc.write_var_string(
            json.dumps({"type": "noctis-rejected", "reasons": reasons, "room": self.noctis_path})
        )
        try:
            self.write_message(enc.to_bytes(), binary=True)
        except Exception:  # the connection may already be gone
            return
        if close:
            reason = json.dumps(
                {"reason": "noctis_rejected", "reloadable": True, "errorReason": reasons[0][:40]}
            )
            self.close(1003, reason[:120])

    def on_close(self) -> None:
        super().on_close()
        svc, path, username = self._svc, self.noctis_path, self.noctis_username
        if svc is not None and path is not None and username is not None and self._noctis_connected:
            self._noctis_connected = False
            svc.disconnect(path, username, self)
