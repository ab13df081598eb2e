"""Server time and place of new messages, by message id.

jupyterlab-chat's server model re-times each new client message by its *index*, one
callback per inserted item, scheduled for later: it stamps the message found at that
index then, moves it with ``pop`` + ``insert``, and computes the target index before the
``pop``. When two messages arrive together, or a member inserts messages anywhere but at
the end, the index points at another message by the time the callback runs, and the
``insert`` fails after the ``pop`` has already removed the message: others' messages are
re-timed and deleted (the ``pop`` is not undone). With the protection on, the rooms
service switches that callback off (:func:`take_over_timing`) and stamps and places new
messages itself (:func:`stamp_and_place`), by id: a new message gets the server's time
and goes after every message the server already had; no other message is touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from pycrdt import Map

__all__ = ["stamp_and_place", "take_over_timing"]


def _no_retiming(msg_idx: int, timestamp: float) -> None:
    """Stands in for ``YChat._set_timestamp`` (messages are stamped by id instead)."""
    return None


def take_over_timing(chat: Any) -> None:
    """Switch off jupyterlab-chat's index-based re-timing on the server's ``chat``.

    Its array observer is replaced too: besides scheduling the re-timing, it rebuilt the
    id-to-index table by converting every message to Python whenever a message did not
    land at the end (any two concurrent posts); :func:`_track_indexes` re-reads only the
    ids from the first changed index on.
    """
    if getattr(chat, "_noctis_timing", False):
        return
    chat._set_timestamp = _no_retiming  # the instance attribute shadows the method
    sub = getattr(chat, "_ymessages_subscription", None)
    if sub is not None:
        chat.ymessages.unobserve(sub)
    chat._ymessages_subscription = chat.ymessages.observe(partial(_track_indexes, chat))
    chat._noctis_timing = True


def _track_indexes(chat: Any, event: Any) -> None:
    """Keep the id-to-index table right after a change of the messages array."""
    first = event.delta[0] if event.delta else {}
    start = int(first.get("retain", 0))
    table: dict[str, int] = chat._indexes_by_id
    for mid in [k for k, v in table.items() if v >= start]:
        del table[mid]
    _reindex(chat, start)


def _locate(chat: Any, ids: set[str]) -> dict[str, int]:
    """Indexes of the messages with these ids that the room has applied.

    jupyterlab-chat keeps an id-to-index table up to date as messages arrive; an entry is
    trusted only when the message at that index has that id (else the table is rebuilt).
    """
    found: dict[str, int] = {}
    for attempt in range(2):
        table: dict[str, int] = chat._indexes_by_id
        stale = False
        for mid in ids:
            idx = table.get(mid)
            if idx is None:
                continue  # not applied yet
            item = chat.ymessages[idx] if idx < len(chat.ymessages) else None
            if isinstance(item, Map) and item.get("id") == mid:
                found[mid] = idx
            else:
                stale = True
        if not stale or attempt:
            break
        found = {}
        chat._indexes_by_id = {}
        _reindex(chat, 0)
    return found


def _reindex(chat: Any, start: int) -> None:
    """Rebuild jupyterlab-chat's id-to-index table from ``start`` on."""
    ymessages = chat.ymessages
    table: dict[str, int] = chat._indexes_by_id
    for i in range(start, len(ymessages)):
        item = ymessages[i]
        mid = item.get("id") if isinstance(item, Map) else None
        if isinstance(mid, str):
            table[mid] = i


def _first_fresh_index(ymessages: Any, fresh: set[str]) -> int:
    """The start of the run of ``fresh`` messages at the end of the array."""
    k = len(ymessages)
    while k > 0:
        item = ymessages[k - 1]
        if not (isinstance(item, Map) and item.get("id") in fresh):
            break
        k -= 1
    return k


def stamp_and_place(chat: Any, ids: Iterable[str], now: float) -> set[str]:
    """Give the messages ``ids`` the server time ``now`` and put them after every older one.

    Messages not (yet) in the room are left for a later call; their ids are returned. A
    found message that has an older message after it (a member inserted it at the top or
    in the middle, or two clients appended at once) is moved to the end, content intact.
    The id-to-index table of jupyterlab-chat is brought up to date after a move.
    """
    ymessages = chat.ymessages
    pending = set(ids)
    found = _locate(chat, pending)
    if not found:
        return pending
    moved = False
    with chat.ydoc.transaction():
        for idx in found.values():
            ymsg = ymessages[idx]
            if ymsg.get("raw_time", True) is not False:
                ymsg.update({"time": now, "raw_time": False})
        tail = _first_fresh_index(ymessages, set(found))
        out_of_place = sorted(idx for idx in found.values() if idx < tail)
        contents = [ymessages[idx].to_py() for idx in out_of_place]
        for idx in reversed(out_of_place):
            del ymessages[idx]
        if contents:
            ymessages.extend([Map(c) for c in contents])
            moved = True
    if moved:
        _reindex(chat, out_of_place[0])
    return pending - set(found)
