"""The rooms service living inside a Jupyter server: store, guards, presence, bot, purge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyterlab_chat.models import Message, User, message_asdict_factory
from pycrdt import Map

from noctis_lab._errors import ChatPermissionError, RoomError

from ._guard import RoomGuard, upload_ids
from ._identity import BOT_DISPLAY_NAME, BOT_USERNAME, NoctisIdentityProvider
from ._messages import StudyLink, system_message_payload
from ._order import stamp_and_place, take_over_timing
from ._policy import Access, access_for
from ._store import Room, RoomStore, normalize_path

if TYPE_CHECKING:
    from jupyterlab_chat.ychat import YChat

__all__ = ["EMPTY_CHAT", "RoomsService"]

#: Content of a new, empty ``.chat`` file.
EMPTY_CHAT = json.dumps({"messages": [], "users": {}, "attachments": {}, "metadata": {}}, indent=2)
_PRESENCE_EVERY_S = 5.0


def _without_quote(body: str) -> str:
    """A reply's body with its leading quote replaced by a deleted-message marker."""
    lines = body.splitlines()
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    return "\n".join(["> *(deleted message)*", *lines[i:]])


def chat_user(username: str, name: str, initials: str, *, bot: bool = False) -> User:
    """A chat profile with the server's name for the user (no avatar, default colour)."""
    # jupyterlab-chat's User has an untyped __init__ (it accepts extra keys): call it
    # through a typed view.
    make: Callable[..., User] = User
    return make(
        username=username,
        name=name,
        display_name=name,
        initials=initials,
        avatar_url=None,
        color=None,
        bot=bot,
    )


def bot_user() -> User:
    """The bot that posts system messages."""
    return chat_user(BOT_USERNAME, BOT_DISPLAY_NAME, "QA", bot=True)


def _stamp_in_place(chat: Any, ids: set[str], now: float) -> set[str]:
    """The server time for the messages ``ids`` where they are (protection off)."""
    pending = set(ids)
    with chat.ydoc.transaction():
        for mid in list(pending):
            idx = chat._indexes_by_id.get(mid)
            if idx is None or idx >= len(chat.ymessages):
                continue
            ymsg = chat.ymessages[idx]
            if isinstance(ymsg, Map) and ymsg.get("id") == mid:
                if ymsg.get("raw_time", True) is not False:
                    ymsg.update({"time": now, "raw_time": False})
                pending.discard(mid)
    return pending


class RoomsService:
    """Everything the handlers and the authorizer share (one per server)."""

    def __init__(self, serverapp: Any, root_dir: str | Path) -> None:
        self.serverapp = serverapp
        self.log = serverapp.log
        self.root_dir = Path(root_dir).resolve()
        self.state_dir = self.root_dir / ".noctis"
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # rooms, uploads, moderation log: this account only
        self.store = RoomStore(self.state_dir / "rooms.db")
        for f in self.state_dir.glob("rooms.db*"):
            f.chmod(0o600)
        self._guards: dict[str, RoomGuard] = {}
        self._owners: dict[str, dict[int, str]] = {}
        self._online: dict[str, dict[str, int]] = {}
        self._connections: dict[str, set[Any]] = {}
        self._touched: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox_callback: Any = None
        self.gate_enabled = True
        #: Rooms the site owns (the QA bot's): created at start, never by a member.
        self.reserved: frozenset[str] = frozenset()

    # -- identity --------------------------------------------------------------
    @property
    def identity(self) -> NoctisIdentityProvider | None:
        ip = getattr(self.serverapp, "identity_provider", None)
        return ip if isinstance(ip, NoctisIdentityProvider) else None

    def site_role(self, username: str) -> str:
        ip = self.identity
        rec = ip.record(username) if ip is not None else None
        return rec.role if rec is not None else "member"

    def known_user(self, username: str) -> dict[str, Any] | None:
        """Canonical profile fields of ``username`` (None when unknown)."""
        if username == BOT_USERNAME:
            return {
                "username": BOT_USERNAME,
                "name": BOT_DISPLAY_NAME,
                "display_name": BOT_DISPLAY_NAME,
            }
        ip = self.identity
        if ip is None:
            return None
        rec = ip.record(username)
        if rec is None:
            return None
        return {
            "username": rec.username,
            "name": rec.display_name,
            "display_name": rec.display_name,
        }

    def known_user_for(self, actor_username: str, actor_profile: dict[str, Any]) -> Any:
        """A lookup that also knows the connected user when there is no users file."""

        def lookup(username: str) -> dict[str, Any] | None:
            found = self.known_user(username)
            if found is None and username == actor_username:
                return actor_profile
            return found

        return lookup

    # -- rooms -----------------------------------------------------------------
    def file_exists(self, path: str) -> bool:
        return (self.root_dir / normalize_path(path)).is_file()

    def ensure_room(self, path: str, username: str) -> Room | None:
        """The room at ``path``, adopting an unregistered existing ``.chat`` file.

        An adopted file becomes a public room owned by the bot (site admins administer it;
        the first user to open it gains nothing, so nobody can squat a file put there by
        someone else).
        """
        path = normalize_path(path)
        room = self.store.get_room(path)
        if room is None and path.endswith(".chat") and self.file_exists(path):
            try:
                room = self.store.create_room(path, created_by=BOT_USERNAME)
                detail = f"adopted, opened by {username}"
                self.store.log(path, BOT_USERNAME, "create", detail=detail)
            except RoomError:
                room = self.store.get_room(path)
        return room

    def access(self, path: str, username: str) -> Access:
        room = self.store.get_room(path)
        if room is None:
            return Access(False, False, False, False, None, False)
        return access_for(room, self.store.member(path, username), self.site_role(username))

    def require(self, path: str, username: str, right: str) -> tuple[Room, Access]:
        """The room and the user's access, or ChatPermissionError / RoomError."""
        room = self.ensure_room(path, username)
        if room is None:
            raise RoomError(f"room {path!r} does not exist")
        acc = self.access(room.path, username)
        if not acc.read or not getattr(acc, right):
            raise ChatPermissionError(f"{username} may not {right} in room {room.path!r}")
        return room, acc

    def claim_rooms(self, paths: list[str]) -> list[Room]:
        """Create (or take back) the site's well-known rooms, owned by the bot.

        Each room is read-only (everyone reads, only the bot, moderators and admins post),
        the bot is its admin, and any other room admin or moderator who is not a site
        admin is demoted to member (a member who created the path first loses it).
        From then on only site admins may create these paths again.
        """
        claimed: list[Room] = []
        for raw in paths:
            path = normalize_path(raw)
            room = self.store.get_room(path)
            if room is None:
                if not self.file_exists(path):
                    target = self.root_dir / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(EMPTY_CHAT, encoding="utf-8")
                    target.chmod(0o600)
                room = self.store.create_room(
                    path, created_by=BOT_USERNAME, visibility="read-only", title=None
                )
                self.store.log(path, BOT_USERNAME, "create", detail="site room (QA bot)")
            elif room.visibility != "read-only" or room.created_by != BOT_USERNAME:
                self.log.warning(
                    "noctis_rooms: site room %s (created by %s, %s) taken back by the bot",
                    path,
                    room.created_by,
                    room.visibility,
                )
                room = self.store.update_room(path, visibility="read-only")
                self.store.log(path, BOT_USERNAME, "claim", detail=f"was {room.created_by}'s")
            self.store.set_member(path, BOT_USERNAME, role="admin", state="active")
            for m in self.store.members(path):
                demote = m.username != BOT_USERNAME and m.role != "member"
                if demote and self.site_role(m.username) != "admin":
                    self.store.set_member(path, m.username, role="member")
            claimed.append(room)
        self.reserved = frozenset(r.path for r in claimed)
        return claimed

    def create_room(
        self,
        path: str,
        username: str,
        *,
        kind: str = "general",
        visibility: str = "public",
        title: str | None = None,
        members: list[str] | None = None,
    ) -> Room:
        """Create the ``.chat`` file and register the room (``username`` is its admin)."""
        path = normalize_path(path)
        if not path.endswith(".chat"):
            raise RoomError(f"room path {path!r} must end with '.chat'")
        if (
            path in self.reserved
            and username != BOT_USERNAME
            and self.site_role(username) != "admin"
        ):
            raise ChatPermissionError(
                f"room {path!r} is a site room (QA bot); only admins create it"
            )
        target = self.root_dir / path
        if target.exists() or self.store.get_room(path) is not None:
            raise RoomError(f"room {path!r} already exists")
        if kind == "direct":
            visibility = "private"
            if not members or len(set(members) - {username}) != 1:
                raise RoomError("a direct room needs exactly one other member")
        for m in members or []:
            if self.identity is not None and self.known_user(m) is None:
                raise RoomError(f"unknown user {m!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(EMPTY_CHAT, encoding="utf-8")
        target.chmod(0o600)
        room = self.store.create_room(
            path, created_by=username, kind=kind, visibility=visibility, title=title
        )
        for m in members or []:
            if m != username:
                self.store.set_member(path, m, role="member", state="active")
        self.store.log(
            path, username, "create", detail=json.dumps({"kind": kind, "visibility": visibility})
        )
        return room

    # -- documents ---------------------------------------------------------------
    def _ydoc_extension(self) -> Any:
        apps = self.serverapp.extension_manager.extension_apps.get("jupyter_server_ydoc")
        if not apps:
            raise RoomError("jupyter-collaboration (jupyter_server_ydoc) is not enabled")
        return next(iter(apps))

    async def live_chat(self, path: str) -> YChat:
        """The room's live shared document (created if needed)."""
        path = normalize_path(path)
        if not self.file_exists(path):
            raise RoomError(f"room file {path!r} does not exist")
        doc: YChat | None = await self._ydoc_extension().get_document(
            path=path, content_type="chat", file_format="text", copy=False, create=True
        )
        if doc is None:
            raise RoomError(f"room {path!r} could not be opened")
        return doc

    async def post(
        self,
        path: str,
        text: str,
        *,
        study_link: StudyLink | dict[str, Any] | None = None,
    ) -> str:
        """Post a system message as the bot; returns the message id."""
        payload = system_message_payload(text, study_link)
        chat = await self.live_chat(path)
        if chat.get_user(BOT_USERNAME) is None:
            chat.set_user(bot_user())
        mid = str(uuid.uuid4())
        msg = Message(
            body=payload["body"],
            id=mid,
            time=time.time(),
            sender=BOT_USERNAME,
            raw_time=False,  # server time: no re-stamping (and no re-ordering) later
            metadata=payload["metadata"],
            mime_model=payload["mime_model"],
        )
        with chat.ydoc.transaction():
            chat.ymessages.append(Map(asdict(msg, dict_factory=message_asdict_factory)))
        return mid

    async def delete_message(self, path: str, username: str, message_id: str) -> None:
        """Server-side delete (author or moderator): blank the text, log, purge history."""
        room, acc = self.require(path, username, "read")
        chat = await self.live_chat(room.path)
        msg = chat.get_message(message_id)
        if msg is None:
            raise RoomError(f"message {message_id!r} is not in room {room.path!r}")
        if msg.sender != username and not acc.moderate:
            raise ChatPermissionError(
                f"{username} may not delete message {message_id} of {msg.sender}"
            )
        if msg.deleted:
            return
        update = Message(
            **{**asdict(msg), "body": "", "deleted": True, "mime_model": None, "attachments": None}
        )
        chat.update_message(update)
        # update_message skips None values: clear rich content explicitly.
        idx = chat._indexes_by_id.get(message_id)
        if idx is not None:
            ymsg = chat.ymessages[idx]
            with chat.ydoc.transaction():
                for key in ("mime_model", "attachments"):
                    if key in ymsg:
                        del ymsg[key]
        if msg.sender != username:
            self.store.log(
                room.path, username, "delete_message", target_user=msg.sender, message_id=message_id
            )
        if self.gate_enabled:
            self.forget_deleted(chat, (message_id,), tuple(upload_ids(asdict(msg))))
        self.schedule_purge(room.path)

    def ensure_user_entry(self, chat: Any, username: str, display_name: str | None = None) -> None:
        """Put ``username``'s canonical profile in the chat's users map (server-side)."""
        known = self.known_user(username)
        name = known["display_name"] if known is not None else (display_name or username)
        current = chat.get_user(username)
        if current is not None and current.display_name == name and current.name == name:
            return
        parts = [p for p in name.replace(".", " ").replace("_", " ").split() if p]
        initials = "".join(p[0].upper() for p in parts[:2]) or username[:1].upper()
        chat.set_user(chat_user(username, name, initials))

    # -- guards, presence --------------------------------------------------------
    def guard(self, room_id: str, ydoc: Any, path: str) -> RoomGuard:
        g = self._guards.get(room_id)
        if g is None or g._source is not ydoc:
            if g is not None:
                g.close()
            g = RoomGuard(ydoc, path)
            self._guards[room_id] = g
            self._owners[room_id] = {}
        return g

    def awareness_owners(self, room_id: str) -> dict[int, str]:
        return self._owners.setdefault(room_id, {})

    def connect(self, path: str, username: str, handler: Any) -> None:
        path = normalize_path(path)
        self._online.setdefault(path, {})
        self._online[path][username] = self._online[path].get(username, 0) + 1
        self._connections.setdefault(path, set()).add(handler)
        self.store.touch(path, username)

    def disconnect(self, path: str, username: str, handler: Any) -> None:
        path = normalize_path(path)
        users = self._online.get(path, {})
        if username in users:
            users[username] -= 1
            if users[username] <= 0:
                del users[username]
        self._connections.get(path, set()).discard(handler)
        self.store.touch(path, username)

    def seen(self, path: str, username: str) -> None:
        """Throttled last-seen update on activity."""
        now = time.time()
        key = (path, username)
        if now - self._touched.get(key, 0.0) > _PRESENCE_EVERY_S:
            self._touched[key] = now
            self.store.touch(path, username, now)

    def presence(self, path: str) -> dict[str, Any]:
        path = normalize_path(path)
        online = sorted(self._online.get(path, {}))
        return {"online": online, "last_seen": self.store.last_seen(path)}

    def kick(self, path: str, username: str, reason: str) -> None:
        """Close the connections of ``username`` to ``path``."""
        for h in list(self._connections.get(normalize_path(path), set())):
            if getattr(h, "noctis_username", None) == username:
                h.noctis_refuse([reason], close=True)

    # -- server time ------------------------------------------------------------------
    def stamp_later(self, chat: Any, ids: tuple[str, ...]) -> None:
        """Give new client messages the server's time and their place.

        This happens once the room has applied them (see :mod:`noctis_rooms._order`).

        With the protection on, jupyterlab-chat's own index-based re-timing is switched
        off for the room (it re-timed and deleted others' messages); the messages are then
        stamped and placed here by id. With it off, only the stamp is added.
        """
        if self.gate_enabled:
            take_over_timing(chat)
        task = asyncio.ensure_future(self._stamp(chat, ids))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stamp(self, chat: Any, ids: tuple[str, ...]) -> None:
        pending = set(ids)
        for _ in range(200):  # the update waits in the connection's queue: up to ~2 s
            if self.gate_enabled:
                pending = stamp_and_place(chat, pending, time.time())
            else:
                pending = _stamp_in_place(chat, pending, time.time())
            if not pending:
                return
            await asyncio.sleep(0.01)

    # -- history purge -------------------------------------------------------------
    def forget_deleted(self, chat: Any, ids: tuple[str, ...], uploads: tuple[str, ...]) -> None:
        """Take with a deletion what goes with it.

        The uploads the messages carried are deleted, and their quotes in replies become
        "(deleted message)".
        """
        for upload_id in uploads:
            with contextlib.suppress(OSError):
                (self.state_dir / "uploads" / upload_id).unlink()
            self.store.delete_upload(upload_id)
        if chat is None or not hasattr(chat, "ymessages"):
            return
        gone = set(ids)
        with chat.ydoc.transaction():
            for ymsg in list(chat.ymessages):
                if not isinstance(ymsg, Map):
                    continue
                raw: Any = ymsg.get("metadata")
                meta = raw.to_py() if hasattr(raw, "to_py") else raw
                reply_to = meta.get("reply_to") if isinstance(meta, dict) else None
                body = ymsg.get("body")
                if reply_to in gone and isinstance(body, str) and body.startswith(">"):
                    ymsg["body"] = _without_quote(body)

    def schedule_purge(self, path: str) -> None:
        task = asyncio.ensure_future(self._purge_later(path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _purge_later(self, path: str) -> None:
        # Twice: the second pass catches an update that was still queued for the store.
        for delay in (0.5, 2.5):
            await asyncio.sleep(delay)
            try:
                await self.purge_history(path)
            except Exception:  # pragma: no cover - logged, the next delete retries
                self.log.exception("noctis_rooms: purging the history of %s failed", path)

    async def purge_history(self, path: str) -> bool:
        """Replace the room's stored update history by its current state.

        jupyter-collaboration's ystore keeps every update, so a deleted message's text
        would stay in ``.jupyter_ystore.db``; the current state no longer holds it
        (deleted content is garbage-collected). Returns False when the room is not live.
        """
        ext = self._ydoc_extension()
        server = ext.ywebsocket_server
        fid = self.serverapp.web_app.settings["file_id_manager"].get_id(normalize_path(path))
        room_id = f"text:chat:{fid}"
        if fid is None or not server.room_exists(room_id):
            return False
        room = await server.get_room(room_id)
        ystore = getattr(room, "ystore", None)
        if ystore is None or getattr(ystore, "_db", None) is None:
            return False
        update = room.ydoc.get_update()
        blob = ystore._compress(update) if getattr(ystore, "_compress", None) else update
        async with ystore.lock, ystore._db:
            cursor = await ystore._db.cursor()
            await cursor.execute("PRAGMA secure_delete = ON")
            await cursor.execute("DELETE FROM yupdates WHERE path = ?", (ystore.path,))
            await cursor.execute("DELETE FROM ycheckpoints WHERE path = ?", (ystore.path,))
            await cursor.execute(
                "INSERT INTO yupdates VALUES (?, ?, ?, ?)",
                (ystore.path, blob, None, time.time()),
            )
        return True

    # -- outbox (system messages from processes without the server) ----------------
    @property
    def outbox(self) -> Path:
        return self.state_dir / "outbox"

    async def drain_outbox(self) -> int:
        """Post the queued system messages; returns how many were posted."""
        if not self.outbox.is_dir():
            return 0
        n = 0
        for f in sorted(self.outbox.glob("*.json")):
            try:
                item = json.loads(f.read_text(encoding="utf-8"))
                await self.post(item["room"], item["text"], study_link=item.get("study_link"))
                n += 1
            except Exception as exc:
                self.log.error("noctis_rooms: outbox item %s not posted: %s", f.name, exc)
                with contextlib.suppress(OSError):
                    f.rename(f.with_suffix(".failed"))
                continue
            with contextlib.suppress(OSError):
                f.unlink()
        return n

    def write_server_file(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "server.json").write_text(
            json.dumps({"pid": os.getpid(), "id": uuid.uuid4().hex, "started": time.time()}),
            encoding="utf-8",
        )

    def remove_server_file(self) -> None:
        f = self.state_dir / "server.json"
        with contextlib.suppress(OSError, ValueError):
            if json.loads(f.read_text(encoding="utf-8")).get("pid") == os.getpid():
                f.unlink()
