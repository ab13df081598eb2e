"""Check each incoming Yjs update of a chat room against the rules for its sender.

A :class:`RoomGuard` keeps a *shadow* copy of the room's document. The shadow mirrors
every change the room applies (through ``Doc.observe``), and an incoming client update
is first applied to the shadow, with observers on every root type recording what it
changed. The recorded changes are checked against the rules for the connection's user;
only an update that passes is forwarded to the room. A refused update has already
touched the shadow, so the shadow is rebuilt from the room (plus the recently accepted
updates that may still be queued for the room).

Besides the per-change rules, an update is refused when it does not fully integrate
(structs or deletions that depend on changes the server does not have): such content
would sit pending in the room and be integrated later without being checked.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pycrdt import Array, ArrayEvent, Doc, Map, MapEvent, Subscription, get_update

from ._policy import Access

__all__ = [
    "ALLOWED_MIME_TYPES",
    "MAX_BODY_CHARS",
    "STUDY_LINK_MIME",
    "Actor",
    "RoomGuard",
    "Verdict",
    "check_awareness",
    "safe_chat_json",
    "safe_mime_model",
    "scrub_chat",
    "upload_ids",
]

STUDY_LINK_MIME = "application/vnd.noctis.study-link+json"
#: MIME types a message's ``mime_model`` may carry (no HTML, SVG or scripts).
ALLOWED_MIME_TYPES = frozenset(
    {"text/markdown", "text/plain", "image/png", "image/jpeg", "image/gif", STUDY_LINK_MIME}
)
MAX_BODY_CHARS = 20_000
_MAX_REACTIONS_PER_MESSAGE = 20
_IMMUTABLE_KEYS = ("id", "sender", "type", "time", "raw_time")
_READ_PREFIX = "noctis.read."
_REACT_PREFIX = "noctis.reactions."
_ROOTS = ("messages", "users", "attachments", "metadata", "state")


@dataclass(frozen=True)
class Actor:
    """The user behind a connection, their rights, and how to look up canonical profiles."""

    username: str
    access: Access
    known_user: Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one update."""

    ok: bool
    reasons: tuple[str, ...] = ()
    #: (message id, author) deleted by a moderator who is not the author.
    moderator_deletions: tuple[tuple[str, str], ...] = ()
    #: ids of messages deleted by this update (author or moderator).
    deleted_ids: tuple[str, ...] = ()
    #: ids of messages posted by this update.
    new_ids: tuple[str, ...] = ()
    #: ids of messages whose text this update changed (the old text must be purged).
    edited_ids: tuple[str, ...] = ()
    #: upload ids the deleted messages carried (their files go with them).
    deleted_uploads: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """All reasons in one line."""
        return "; ".join(self.reasons)


@dataclass
class _Context:
    actor: Actor
    violations: list[str] = field(default_factory=list)
    moderator_deletions: list[tuple[str, str]] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    new_ids: list[str] = field(default_factory=list)
    edited_ids: list[str] = field(default_factory=list)
    deleted_uploads: list[str] = field(default_factory=list)


def _read_uint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _decode_state_vector(sv: bytes) -> dict[int, int]:
    n, pos = _read_uint(sv, 0)
    out: dict[int, int] = {}
    for _ in range(n):
        client, pos = _read_uint(sv, pos)
        clock, pos = _read_uint(sv, pos)
        out[client] = clock
    return out


def _not_integrated(update: bytes, doc: Doc[Any]) -> str | None:
    """Why ``update`` is not fully integrated in ``doc`` (None when it is)."""
    state = doc.get_state()
    rest = get_update(update, state)
    n_struct_groups, pos = _read_uint(rest, 0)
    if n_struct_groups:
        return "the update depends on changes the server does not have"
    sv = _decode_state_vector(state)
    n_clients, pos = _read_uint(rest, pos)
    for _ in range(n_clients):
        client, pos = _read_uint(rest, pos)
        n_ranges, pos = _read_uint(rest, pos)
        for _ in range(n_ranges):
            clock, pos = _read_uint(rest, pos)
            length, pos = _read_uint(rest, pos)
            if clock + length > sv.get(client, 0):
                return "the update deletes content the server does not have"
    return None


def _message_id(content: Any) -> str | None:
    """The string ``id`` of a message's content (None when it has none)."""
    mid = content.get("id") if isinstance(content, dict) else None
    return mid if isinstance(mid, str) else None


def _reply_to(message: dict[str, Any]) -> Any:
    """The ``metadata.reply_to`` of a message's content (None when it has none)."""
    meta = message.get("metadata")
    return meta.get("reply_to") if isinstance(meta, dict) else None


def _py(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def _is_str_list(value: Any, max_len: int = 1000) -> bool:
    return (
        isinstance(value, list) and len(value) <= max_len and all(isinstance(x, str) for x in value)
    )


_SAFE_ATTACHMENT = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\x00]{1,1024}$")


class RoomGuard:
    """Shadow document and rules for one collaboration room.

    Parameters
    ----------
    source
        The room's live document (``room.ydoc``); the guard mirrors its changes.
    room_path
        For messages.
    recent
        How many recently accepted updates to replay after a rebuild.
    """

    def __init__(self, source: Doc[Any], room_path: str = "", recent: int = 512) -> None:
        self._source = source
        self.room_path = room_path
        self._recent: deque[bytes] = deque(maxlen=recent)
        self._ctx: _Context | None = None
        self._subs: list[tuple[Any, Subscription]] = []
        self._order: list[str | None] = []
        self._contents: dict[str, dict[str, Any]] = {}
        self._build(source.get_update())
        self._source_sub = source.observe(self._mirror)

    # -- shadow lifecycle ----------------------------------------------------
    def _build(self, update: bytes, replay: Iterable[bytes] = ()) -> None:
        for target, sub in self._subs:
            target.unobserve(sub)
        self._subs = []
        doc: Doc[Any] = Doc()
        doc.apply_update(update)
        for u in replay:
            doc.apply_update(u)
        self._shadow = doc
        messages = doc.get("messages", type=Array)
        self._order = []
        self._contents = {}
        for m in messages.to_py() or []:
            mid = m.get("id") if isinstance(m, dict) else None
            self._order.append(mid if isinstance(mid, str) else None)
            if isinstance(mid, str):
                self._contents[mid] = dict(m)
        self._subs.append((messages, messages.observe_deep(self._on_messages)))
        for name in ("users", "attachments", "metadata", "state"):
            m = doc.get(name, type=Map)
            self._subs.append((m, m.observe(partial(self._on_map, name))))

    def _mirror(self, event: Any) -> None:
        # Changes the room applied (accepted client updates, server-side writes).
        self._shadow.apply_update(event.update)

    def close(self) -> None:
        """Stop mirroring the room."""
        self._source.unobserve(self._source_sub)
        for target, sub in self._subs:
            target.unobserve(sub)
        self._subs = []

    def message(self, message_id: str) -> dict[str, Any] | None:
        """The last known content of a message."""
        m = self._contents.get(message_id)
        return None if m is None else dict(m)

    # -- checking ------------------------------------------------------------
    def check(self, update: bytes, actor: Actor) -> Verdict:
        """Apply ``update`` to the shadow and check what it changed.

        Returns an accepting verdict (the shadow keeps the change) or a refusing one
        (the shadow is rebuilt without it).
        """
        ctx = _Context(actor)
        roots_before = set(self._shadow.keys())
        self._ctx = ctx
        try:
            self._shadow.apply_update(update)
        except Exception as exc:  # malformed bytes from a client
            ctx.violations.append(f"malformed update ({type(exc).__name__})")
        finally:
            self._ctx = None
        if not ctx.violations:
            new_roots = set(self._shadow.keys()) - roots_before - set(_ROOTS)
            if new_roots:
                ctx.violations.append(f"unknown shared types {sorted(new_roots)}")
            why = _not_integrated(update, self._shadow)
            if why is not None:
                ctx.violations.append(why)
        if ctx.violations:
            self._build(self._source.get_update(), self._recent)
            return Verdict(False, tuple(dict.fromkeys(ctx.violations)))
        self._recent.append(update)
        return Verdict(
            True,
            (),
            tuple(ctx.moderator_deletions),
            tuple(ctx.deleted_ids),
            tuple(ctx.new_ids),
            tuple(ctx.edited_ids),
            tuple(ctx.deleted_uploads),
        )

    # -- observers -------------------------------------------------------------
    def _on_messages(self, events: list[Any]) -> None:
        for ev in events:
            path = list(ev.path)
            if isinstance(ev, ArrayEvent) and not path:
                self._on_array(ev)
            elif isinstance(ev, MapEvent) and len(path) == 1:
                self._on_message_keys(ev)
            elif self._ctx is not None:
                self._ctx.violations.append("nested shared types inside messages are not allowed")

    def _on_array(self, ev: ArrayEvent) -> None:
        removed, inserted = self._apply_delta(ev)
        self._check_array_change(removed, inserted)

    def _apply_delta(
        self, ev: ArrayEvent
    ) -> tuple[dict[str, dict[str, Any]], list[tuple[str | None, Any]]]:
        """Follow a change of the message list in the shadow's order.

        Returns the messages it removed (id -> last known content) and the items it
        inserted ((id or None, content)), in order.
        """
        idx = 0
        removed: dict[str, dict[str, Any]] = {}
        inserted: list[tuple[str | None, Any]] = []
        for d in ev.delta:  # type: ignore[attr-defined]
            if "retain" in d:
                idx += d["retain"]
            elif "delete" in d:
                n = d["delete"]
                for mid in self._order[idx : idx + n]:
                    if mid is not None and mid in self._contents:
                        removed[mid] = self._contents[mid]
                del self._order[idx : idx + n]
            elif "insert" in d:
                items = [(_message_id(content), content) for content in map(_py, d["insert"])]
                self._order[idx:idx] = [mid for mid, _ in items]
                idx += len(items)
                inserted.extend(items)
        return removed, inserted

    def _check_array_change(
        self, removed: dict[str, dict[str, Any]], inserted: list[tuple[str | None, Any]]
    ) -> None:
        """Check removed and inserted messages and keep the shadow's contents in step.

        A message may leave the list only to come back in the same update (a move, checked
        as an edit); an inserted one is a new message with a new id.
        """
        ctx = self._ctx
        inserted_ids = {mid for mid, _ in inserted if mid is not None}
        for gone in removed:
            if gone not in inserted_ids:
                self._contents.pop(gone, None)
                if ctx is not None:
                    ctx.violations.append(f"message {gone} cannot be removed from the room")
        for mid, content in inserted:
            if mid is None or not isinstance(content, dict):
                if ctx is not None:
                    ctx.violations.append("a message must be a map with a string 'id'")
                continue
            if ctx is not None:
                self._check_inserted(ctx, mid, content, removed.get(mid))
            self._contents[mid] = dict(content)

    def _check_inserted(
        self, ctx: _Context, mid: str, content: dict[str, Any], was: dict[str, Any] | None
    ) -> None:
        """An inserted message: moved in place (``was``: its content before), or new."""
        if was is not None:  # replaced in place (e.g. a moved message)
            self._check_edit(ctx, mid, was, content)
        elif mid in self._contents:
            ctx.violations.append(f"message id {mid} already exists")
        else:
            self._check_new(ctx, mid, content)

    def _on_message_keys(self, ev: MapEvent) -> None:
        target = ev.target  # type: ignore[attr-defined]
        mid = target.get("id")
        if not isinstance(mid, str) or mid not in self._contents:
            if self._ctx is not None:
                self._ctx.violations.append("edit of an unknown message")
            return
        old = self._contents[mid]
        new = dict(old)
        for key, change in ev.keys.items():  # type: ignore[attr-defined]
            if change["action"] == "delete":
                new.pop(key, None)
            else:
                new[key] = _py(change["newValue"])
        if self._ctx is not None:
            self._check_edit(self._ctx, mid, old, new)
        self._contents[mid] = new

    def _on_map(self, name: str, ev: MapEvent) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        keys = ev.keys  # type: ignore[attr-defined]
        if name == "state":
            # The stock frontend clears the 'dirty' flag and tags the document with its
            # 'document_id' when it opens it; anything else in the state map (path,
            # dirty=True, ...) belongs to the server.
            for key, change in keys.items():
                value = change.get("newValue")
                ok = change["action"] != "delete" and (
                    (key == "dirty" and value is False)
                    or (key == "document_id" and isinstance(value, str) and len(value) <= 200)
                )
                if not ok:
                    ctx.violations.append(f"document state {key!r} is managed by the server")
        elif name == "users":
            for key, change in keys.items():
                self._check_user_entry(ctx, key, change)
        elif name == "attachments":
            for key, change in keys.items():
                self._check_attachment(ctx, key, change)
        elif name == "metadata":
            for key, change in keys.items():
                self._check_metadata(ctx, key, change)

    # -- rules ---------------------------------------------------------------
    def _validate_content(self, ctx: _Context, mid: str, m: dict[str, Any]) -> None:
        body = m.get("body", "")
        if not isinstance(body, str) or len(body) > MAX_BODY_CHARS:
            ctx.violations.append(
                f"message {mid}: body must be text of at most {MAX_BODY_CHARS} characters"
            )
        if "mentions" in m and m["mentions"] is not None and not _is_str_list(m["mentions"]):
            ctx.violations.append(f"message {mid}: mentions must be a list of usernames")
        if m.get("attachments") is not None and not _is_str_list(m["attachments"], 50):
            ctx.violations.append(f"message {mid}: attachments must be a list of attachment ids")
        mime = m.get("mime_model")
        if mime is not None:
            data = mime.get("data") if isinstance(mime, dict) else None
            if not isinstance(data, dict) or not data:
                ctx.violations.append(f"message {mid}: mime_model.data must be a non-empty object")
            else:
                bad = sorted(set(data) - ALLOWED_MIME_TYPES)
                if bad:
                    ctx.violations.append(f"message {mid}: MIME type(s) {bad} are not allowed")
                if STUDY_LINK_MIME in data and not _valid_study_link(data[STUDY_LINK_MIME]):
                    ctx.violations.append(f"message {mid}: malformed study link")
            if isinstance(mime, dict) and mime.get("trusted"):
                ctx.violations.append(f"message {mid}: clients cannot mark content as trusted")
        meta = m.get("metadata")
        if meta is not None:
            if not isinstance(meta, dict):
                ctx.violations.append(f"message {mid}: metadata must be an object")
            else:
                reply_to = meta.get("reply_to")
                if reply_to is not None and (
                    not isinstance(reply_to, str)
                    or reply_to == mid
                    or reply_to not in self._contents
                ):
                    ctx.violations.append(f"message {mid}: reply_to must name an existing message")
                if "study_link" in meta and not _valid_study_link(meta["study_link"]):
                    ctx.violations.append(f"message {mid}: malformed study link")

    def _check_new(self, ctx: _Context, mid: str, m: dict[str, Any]) -> None:
        a = ctx.actor
        if not a.access.write:
            ctx.violations.append(f"{a.username} may not post in {self.room_path or 'this room'}")
        if m.get("sender") != a.username:
            ctx.violations.append(
                f"message {mid}: sender must be {a.username}, got {m.get('sender')!r}"
            )
        if m.get("type", "msg") != "msg":
            ctx.violations.append(f"message {mid}: only type 'msg' may be posted")
        if m.get("raw_time") is False:
            ctx.violations.append(
                f"message {mid}: the server sets the time (raw_time must not be false)"
            )
        if m.get("deleted") or m.get("edited"):
            ctx.violations.append(f"message {mid}: a new message cannot be deleted or edited")
        self._validate_content(ctx, mid, m)
        ctx.new_ids.append(mid)

    def _check_edit(
        self, ctx: _Context, mid: str, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        """A change of an existing message: a deletion, or an edit by its author."""
        changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
        if not changed:
            return
        if old.get("deleted"):
            ctx.violations.append(f"message {mid} is deleted and cannot change")
            return
        immutable = sorted(changed.intersection(_IMMUTABLE_KEYS))
        if immutable:
            ctx.violations.append(f"message {mid}: {', '.join(immutable)} cannot be changed")
        if new.get("deleted") is True:
            self._check_delete(ctx, mid, old, new, changed)
        elif "deleted" in changed:
            ctx.violations.append(f"message {mid}: a message cannot be undeleted")
        else:
            self._check_author_edit(ctx, mid, old, new, changed)

    def _check_delete(
        self,
        ctx: _Context,
        mid: str,
        old: dict[str, Any],
        new: dict[str, Any],
        changed: set[str],
    ) -> None:
        """A deletion: by the author or a moderator, and it removes the text and content."""
        a, author = ctx.actor, old.get("sender")
        if new.get("body") not in ("", None):
            ctx.violations.append(f"message {mid}: deleting must remove the text (body '')")
        leftover = {k for k in changed if k not in ("deleted", "body", "edited")}
        if any(new.get(k) not in (None, [], {}) for k in leftover if k not in _IMMUTABLE_KEYS):
            ctx.violations.append(
                f"message {mid}: deleting must remove attachments and rich content"
            )
        ctx.deleted_uploads.extend(upload_ids(old))
        if author == a.username:
            ctx.deleted_ids.append(mid)
        elif a.access.moderate:
            ctx.deleted_ids.append(mid)
            ctx.moderator_deletions.append((mid, str(author)))
        else:
            ctx.violations.append(f"{a.username} may not delete message {mid} of {author}")

    def _check_author_edit(
        self,
        ctx: _Context,
        mid: str,
        old: dict[str, Any],
        new: dict[str, Any],
        changed: set[str],
    ) -> None:
        """An edit: by the author only, with the write right, keeping what it replies to."""
        a, author = ctx.actor, old.get("sender")
        if author != a.username:
            ctx.violations.append(f"{a.username} may not edit message {mid} of {author}")
            return
        if "body" in changed:
            ctx.edited_ids.append(mid)
        if not a.access.write:
            ctx.violations.append(f"{a.username} may not write in {self.room_path or 'this room'}")
        if "metadata" in changed and _reply_to(old) != _reply_to(new):
            ctx.violations.append(f"message {mid}: reply_to cannot change")
        self._validate_content(ctx, mid, new)

    def _check_user_entry(self, ctx: _Context, key: str, change: dict[str, Any]) -> None:
        a = ctx.actor
        if change["action"] == "delete":
            ctx.violations.append(f"user entry {key!r} cannot be removed")
            return
        value = _py(change.get("newValue"))
        if change["action"] == "update" and key != a.username:
            ctx.violations.append(f"{a.username} may not change the profile of {key!r}")
            return
        if not isinstance(value, dict) or value.get("username") != key:
            ctx.violations.append(f"user entry {key!r} must be an object with that username")
            return
        canonical = a.known_user(key)
        if canonical is None:
            ctx.violations.append(f"unknown user {key!r}")
            return
        for f in ("name", "display_name"):
            if f in value and value[f] != canonical.get(f):
                ctx.violations.append(f"user entry {key!r}: {f} must be {canonical.get(f)!r}")
        if value.get("bot"):
            ctx.violations.append(f"user entry {key!r}: clients cannot register bots")

    def _check_attachment(self, ctx: _Context, key: str, change: dict[str, Any]) -> None:
        if change["action"] != "add":
            ctx.violations.append(f"attachment {key!r} cannot be changed or removed")
            return
        if not ctx.actor.access.write:
            ctx.violations.append(f"{ctx.actor.username} may not attach files here")
        value = _py(change.get("newValue"))
        path = value.get("value") if isinstance(value, dict) else None
        if not isinstance(path, str) or not _SAFE_ATTACHMENT.match(path):
            ctx.violations.append(
                f"attachment {key!r}: 'value' must be a relative path inside the root"
            )

    def _check_metadata(self, ctx: _Context, key: str, change: dict[str, Any]) -> None:
        a = ctx.actor
        value = _py(change.get("newValue")) if change["action"] != "delete" else None
        if key.startswith(_READ_PREFIX):
            if key[len(_READ_PREFIX) :] != a.username:
                ctx.violations.append(f"{a.username} may only set their own read receipt")
            elif value is not None and not (
                isinstance(value, dict)
                and isinstance(value.get("message_id"), str)
                and value["message_id"] in self._contents
            ):
                ctx.violations.append("a read receipt must name an existing message")
        elif key.startswith(_REACT_PREFIX):
            if key[len(_REACT_PREFIX) :] != a.username:
                ctx.violations.append(f"{a.username} may only set their own reactions")
            elif not a.access.write:
                ctx.violations.append(
                    f"{a.username} may not react in {self.room_path or 'this room'}"
                )
            elif value is not None and not _valid_reactions(value, self._contents):
                ctx.violations.append(
                    "reactions must map existing message ids to lists of short emoji"
                )
        else:
            ctx.violations.append(f"document metadata {key!r} is managed by the server")


def _valid_reactions(value: Any, contents: dict[str, Any]) -> bool:
    if not isinstance(value, dict) or len(value) > 10_000:
        return False
    for mid, emojis in value.items():
        if mid not in contents or not _is_str_list(emojis, _MAX_REACTIONS_PER_MESSAGE):
            return False
        if any(not e or len(e) > 32 for e in emojis):
            return False
    return True


def _valid_study_link(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if not isinstance(value.get("study_uid"), str) or not value["study_uid"]:
        return False
    return all(
        isinstance(value.get(k, ""), str) for k in ("series_uid", "description", "open_path")
    )


_UPLOAD_URL = re.compile(r"api/noctis/uploads/([0-9a-f]{32})")


def upload_ids(message: dict[str, Any]) -> list[str]:
    """The upload ids a message carries (its metadata and the links in its body)."""
    found: list[str] = []
    meta = message.get("metadata")
    up = meta.get("upload") if isinstance(meta, dict) else None
    if isinstance(up, dict) and isinstance(up.get("id"), str):
        found.append(up["id"])
    body = message.get("body")
    if isinstance(body, str):
        found.extend(_UPLOAD_URL.findall(body))
    return list(dict.fromkeys(found))


def safe_mime_model(mime: Any) -> dict[str, Any] | None:
    """A message's ``mime_model`` as the room may show it.

    Never trusted, allowed MIME types only (None when nothing is left).
    """
    if not isinstance(mime, dict) or not isinstance(mime.get("data"), dict):
        return None
    data = {k: v for k, v in mime["data"].items() if k in ALLOWED_MIME_TYPES}
    if not data:
        return None
    out = {k: v for k, v in mime.items() if k not in ("trusted", "data")}
    out["data"] = data
    return out


def safe_chat_json(text: str) -> str:
    """The content of a ``.chat`` file with every message made safe (see :func:`scrub_chat`).

    ``text`` comes back unchanged when it is not a chat document or nothing needs changing.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    msgs = doc.get("messages") if isinstance(doc, dict) else None
    if not isinstance(msgs, list):
        return text
    changed = False
    for m in msgs:
        if isinstance(m, dict) and "mime_model" in m:
            safe = safe_mime_model(m["mime_model"])
            if safe != m["mime_model"]:
                changed = True
                if safe is None:
                    del m["mime_model"]
                else:
                    m["mime_model"] = safe
    return json.dumps(doc, indent=2) if changed else text


def scrub_chat(ymessages: Array[Any]) -> int:
    """Make every message of a loaded room safe to render, whatever wrote the file.

    Runs on the server when a room is loaded or reloaded from disk (a ``.chat`` written
    by a kernel, a terminal or an older version never passed the guard): ``trusted`` is
    dropped from every ``mime_model`` and MIME types outside :data:`ALLOWED_MIME_TYPES`
    (HTML, SVG, JavaScript) are removed. Returns the number of messages changed.
    """
    changed = 0
    with ymessages.doc.transaction():
        for ymsg in list(ymessages):
            if not isinstance(ymsg, Map) or "mime_model" not in ymsg:
                continue
            mime = _py(ymsg["mime_model"])
            safe = safe_mime_model(mime)
            if safe == mime:
                continue
            if safe is None:
                del ymsg["mime_model"]
            else:
                ymsg["mime_model"] = safe
            changed += 1
    return changed


def check_awareness(
    payload: bytes,
    username: str,
    known: dict[str, Any] | None,
    owners: dict[int, str],
) -> str | None:
    """Check an awareness update from ``username``; returns the reason to refuse, or None.

    A connection may only publish states for client ids it owns (the first user to use a
    client id owns it) and only as itself: ``user.username``/``name``/``display_name``
    must be its own identity; ``writers`` entries (typing) must be itself.
    """
    try:
        n, pos = _read_uint(payload, 0)
        entries: list[tuple[int, str]] = []
        for _ in range(n):
            client, pos = _read_uint(payload, pos)
            _clock, pos = _read_uint(payload, pos)
            length, pos = _read_uint(payload, pos)
            entries.append((client, payload[pos : pos + length].decode("utf-8")))
            pos += length
    except (ValueError, UnicodeDecodeError):
        return "malformed awareness update"
    for client, raw in entries:
        owner = owners.get(client)
        if owner is not None and owner != username:
            return f"awareness client {client} belongs to another user"
        try:
            state = json.loads(raw) if raw else None
        except ValueError:
            return "malformed awareness state"
        if isinstance(state, dict):
            user = state.get("user")
            if user is not None:
                if not isinstance(user, dict) or user.get("username", username) != username:
                    return f"awareness user must be {username}"
                if known is not None:
                    for f in ("name", "display_name"):
                        if f in user and user[f] != known.get(f):
                            return f"awareness user {f} must be {known.get(f)!r}"
            writers = state.get("writers")
            if writers is not None and (
                not isinstance(writers, list)
                or any(
                    not isinstance(w, dict)
                    or not isinstance(w.get("user"), dict)
                    or w["user"].get("username") != username
                    for w in writers
                )
            ):
                return "a client may only announce itself as writing"
    for client, _raw in entries:
        owners.setdefault(client, username)
    return None
