"""Server-side room store: ``<root>/.noctis/rooms.db`` (SQLite).

Why not the chat document's metadata map: membership and visibility decide whether a
client may receive the document at all, so they cannot live inside it (everyone who
syncs the document would read, and could try to write, the member list). The moderation
log must be append-only, which SQLite triggers enforce. Reactions and read receipts, on
the other hand, are per-user state that clients write in real time, so they live in the
document (``noctis.reactions.<user>``, ``noctis.read.<user>`` in the metadata map) where
the websocket guard checks each write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, Table, Text, select

from noctis_lab import records
from noctis_lab._errors import RoomError
from noctis_lab.records._engine import open_engine, retrying, write_transaction

from ._identity import ROLES

__all__ = [
    "KINDS",
    "VISIBILITIES",
    "Member",
    "ModerationEntry",
    "Room",
    "RoomStore",
    "modlog_table",
]

KINDS: tuple[str, ...] = ("general", "study", "facility", "direct")
VISIBILITIES: tuple[str, ...] = ("public", "private", "read-only")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    visibility TEXT NOT NULL,
    title TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    path TEXT NOT NULL,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    state TEXT NOT NULL,
    muted INTEGER NOT NULL DEFAULT 0,
    since REAL NOT NULL,
    PRIMARY KEY (path, username)
);
CREATE TABLE IF NOT EXISTS presence (
    path TEXT NOT NULL,
    username TEXT NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (path, username)
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    filename TEXT NOT NULL,
    mimetype TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    time REAL NOT NULL
);
"""

_metadata = MetaData()

#: The moderation log: append-only and hash-chained (``seq`` of an entry is its ``id``).
modlog_table = Table(
    "modlog",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("time", Float, nullable=False),
    Column("path", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target_user", Text),
    Column("message_id", Text),
    Column("detail", Text),
    *records.chain_columns(),
)
_HINT = "log a new moderation entry instead"
records.mark_append_only(modlog_table, what="the moderation log", hint=_HINT)
_ENTRY_COLUMNS = ("id", "time", "path", "actor", "action", "target_user", "message_id", "detail")


def _rename_legacy_seq(db: sqlite3.Connection) -> None:
    """A modlog from before the record layer: its ``seq`` key becomes ``id`` (rows kept)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        cols = {r[1] for r in db.execute("PRAGMA table_info(modlog)")}
        if "seq" in cols and "id" not in cols:
            db.execute("ALTER TABLE modlog RENAME COLUMN seq TO id")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class Room:
    """A room's settings."""

    path: str
    kind: str
    visibility: str
    title: str
    created_by: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Member:
    """A user's membership of a room; ``state`` is active, left or removed."""

    path: str
    username: str
    role: str
    state: str
    muted: bool
    since: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ModerationEntry:
    """One line of the append-only moderation log."""

    seq: int
    time: float
    path: str
    actor: str
    action: str
    target_user: str | None
    message_id: str | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def normalize_path(path: str) -> str:
    """A room path relative to the server root, with '/' separators and no leading '/'."""
    p = path.replace("\\", "/").strip("/")
    parts = [x for x in p.split("/") if x not in ("", ".")]
    if not parts or ".." in parts or "\x00" in p:
        raise RoomError(f"room path {path!r} is not a relative path inside the server root")
    return "/".join(parts)


class RoomStore:
    """Rooms, members, presence, uploads and the moderation log in one SQLite file.

    Rooms and members are cached in memory (write-through), because the websocket
    guard consults them for every incoming update.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        _rename_legacy_seq(self._db)
        self._engine = open_engine(f"sqlite:///{self.db_path}", what="the moderation log")
        try:
            retrying(
                lambda: records.ensure_chained_table(self._engine, modlog_table, hint=_HINT),
                what="chain the moderation log",
            )
        except BaseException:
            self._engine.dispose()
            self._db.close()
            raise
        self._rooms: dict[str, Room] = {}
        self._members: dict[str, dict[str, Member]] = {}
        for row in self._db.execute(
            "SELECT path, kind, visibility, title, created_by, created_at FROM rooms"
        ):
            self._rooms[row[0]] = Room(*row)
        for row in self._db.execute(
            "SELECT path, username, role, state, muted, since FROM members"
        ):
            m = Member(row[0], row[1], row[2], row[3], bool(row[4]), row[5])
            self._members.setdefault(m.path, {})[m.username] = m

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
            self._engine.dispose()

    # -- rooms ---------------------------------------------------------------
    def get_room(self, path: str) -> Room | None:
        """The room at ``path`` or None."""
        return self._rooms.get(normalize_path(path))

    def rooms(self) -> list[Room]:
        """All rooms, by path."""
        return [self._rooms[k] for k in sorted(self._rooms)]

    def create_room(
        self,
        path: str,
        *,
        created_by: str,
        kind: str = "general",
        visibility: str = "public",
        title: str | None = None,
    ) -> Room:
        """Register a room; its creator becomes its admin."""
        path = normalize_path(path)
        if not path.endswith(".chat"):
            raise RoomError(f"room path {path!r} must end with '.chat'")
        if kind not in KINDS:
            raise RoomError(f"room kind must be one of {KINDS}, got {kind!r}")
        if visibility not in VISIBILITIES:
            raise RoomError(f"room visibility must be one of {VISIBILITIES}, got {visibility!r}")
        with self._lock:
            if path in self._rooms:
                raise RoomError(f"room {path!r} already exists")
            room = Room(path, kind, visibility, title or Path(path).stem, created_by, time.time())
            self._db.execute(
                "INSERT INTO rooms VALUES (?, ?, ?, ?, ?, ?)",
                (
                    room.path,
                    room.kind,
                    room.visibility,
                    room.title,
                    room.created_by,
                    room.created_at,
                ),
            )
            self._rooms[path] = room
            self.set_member(path, created_by, role="admin", state="active")
        return room

    def update_room(
        self,
        path: str,
        *,
        kind: str | None = None,
        visibility: str | None = None,
        title: str | None = None,
    ) -> Room:
        """Change a room's kind, visibility or title."""
        room = self._require(path)
        if kind is not None and kind not in KINDS:
            raise RoomError(f"room kind must be one of {KINDS}, got {kind!r}")
        if visibility is not None and visibility not in VISIBILITIES:
            raise RoomError(f"room visibility must be one of {VISIBILITIES}, got {visibility!r}")
        new = Room(
            room.path,
            kind if kind is not None else room.kind,
            visibility if visibility is not None else room.visibility,
            title if title is not None else room.title,
            room.created_by,
            room.created_at,
        )
        with self._lock:
            self._db.execute(
                "UPDATE rooms SET kind=?, visibility=?, title=? WHERE path=?",
                (new.kind, new.visibility, new.title, new.path),
            )
            self._rooms[new.path] = new
        return new

    def rename_room(self, old: str, new: str) -> None:
        """Follow a file rename."""
        old, new = normalize_path(old), normalize_path(new)
        with self._lock:
            if old not in self._rooms:
                return
            for table in ("rooms", "members", "presence", "uploads"):
                self._db.execute(f"UPDATE {table} SET path=? WHERE path=?", (new, old))
            r = self._rooms.pop(old)
            self._rooms[new] = Room(new, r.kind, r.visibility, r.title, r.created_by, r.created_at)
            members = self._members.pop(old, {})
            self._members[new] = {
                u: Member(new, m.username, m.role, m.state, m.muted, m.since)
                for u, m in members.items()
            }

    def delete_room(self, path: str) -> None:
        """Forget a deleted room (the moderation log keeps its lines)."""
        path = normalize_path(path)
        with self._lock:
            for table in ("rooms", "members", "presence"):
                self._db.execute(f"DELETE FROM {table} WHERE path=?", (path,))
            self._rooms.pop(path, None)
            self._members.pop(path, None)

    def _require(self, path: str) -> Room:
        room = self.get_room(path)
        if room is None:
            raise RoomError(f"room {path!r} does not exist")
        return room

    # -- members -------------------------------------------------------------
    def member(self, path: str, username: str) -> Member | None:
        """The membership of ``username`` in ``path`` (any state) or None."""
        return self._members.get(normalize_path(path), {}).get(username)

    def members(self, path: str) -> list[Member]:
        """All memberships of a room."""
        return sorted(
            self._members.get(normalize_path(path), {}).values(), key=lambda m: m.username
        )

    def set_member(
        self,
        path: str,
        username: str,
        *,
        role: str | None = None,
        state: str | None = None,
        muted: bool | None = None,
    ) -> Member:
        """Create or change a membership (unspecified fields keep their value)."""
        path = normalize_path(path)
        self._require(path)
        if role is not None and role not in ROLES:
            raise RoomError(f"role must be one of {ROLES}, got {role!r}")
        if state is not None and state not in ("active", "left", "removed"):
            raise RoomError(f"membership state must be active, left or removed, got {state!r}")
        with self._lock:
            old = self.member(path, username)
            m = Member(
                path,
                username,
                role if role is not None else (old.role if old else "member"),
                state if state is not None else (old.state if old else "active"),
                muted if muted is not None else (old.muted if old else False),
                old.since
                if old is not None and (state is None or state == old.state)
                else time.time(),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?, ?)",
                (m.path, m.username, m.role, m.state, int(m.muted), m.since),
            )
            self._members.setdefault(path, {})[username] = m
        return m

    # -- presence ------------------------------------------------------------
    def touch(self, path: str, username: str, when: float | None = None) -> None:
        """Record that ``username`` was seen in ``path``."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO presence VALUES (?, ?, ?)",
                (normalize_path(path), username, time.time() if when is None else when),
            )

    def last_seen(self, path: str) -> dict[str, float]:
        """Username -> last time seen in the room."""
        with self._lock:
            rows = self._db.execute(
                "SELECT username, last_seen FROM presence WHERE path=?", (normalize_path(path),)
            ).fetchall()
        return {u: t for u, t in rows}

    # -- uploads -------------------------------------------------------------
    def add_upload(self, row: dict[str, Any]) -> None:
        """Record an uploaded file."""
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads VALUES (:id, :path, :filename, :mimetype, :size, :sha256, "
                ":uploaded_by, :time)",
                row,
            )

    def delete_upload(self, upload_id: str) -> None:
        """Forget an upload (its message was deleted)."""
        with self._lock:
            self._db.execute("DELETE FROM uploads WHERE id=?", (upload_id,))

    def upload_bytes(self, path: str, username: str) -> int:
        """Bytes ``username`` has uploaded to the room at ``path`` (kept uploads only)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT COALESCE(SUM(size), 0) FROM uploads WHERE path=? AND uploaded_by=?",
                (normalize_path(path), username),
            )
            return int(cur.fetchone()[0])

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """An upload's record or None."""
        with self._lock:
            cur = self._db.execute("SELECT * FROM uploads WHERE id=?", (upload_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return None if row is None else dict(zip(names, row, strict=True))

    # -- moderation log ------------------------------------------------------
    def log(
        self,
        path: str,
        actor: str,
        action: str,
        *,
        target_user: str | None = None,
        message_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one line to the moderation log (hash-chained, see the module docstring)."""
        row = {
            "time": time.time(),
            "path": normalize_path(path),
            "actor": actor,
            "action": action,
            "target_user": target_user,
            "message_id": message_id,
            "detail": detail,
        }

        def append() -> None:
            with write_transaction(self._engine) as conn:
                records.append(conn, modlog_table, [row])

        with self._lock:
            retrying(append, what="append to the moderation log")

    def moderation_log(self, path: str | None = None) -> list[ModerationEntry]:
        """The log, oldest first; all rooms when ``path`` is None."""
        t = modlog_table
        q = select(*(t.c[name] for name in _ENTRY_COLUMNS)).order_by(t.c.id)
        if path is not None:
            q = q.where(t.c.path == normalize_path(path))
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [ModerationEntry(*r) for r in rows]
