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
from typing import Any

from pycrdt import Map

__all__ = ["stamp_and_place", "take_over_timing"]


def _no_retiming(msg_idx: int, timestamp: float) -> None:
    """Stands in for ``YChat._set_timestamp`` (messages are stamped by id instead)."""
    return None


def take_over_timing(chat: Any) -> None:
    """Switch off jupyterlab-chat's index-based re-timing on the server's ``chat``."""
    if not getattr(chat, "_noctis_timing", False):
        chat._set_timestamp = _no_retiming  # the instance attribute shadows the method
        chat._noctis_timing = True


def _locate(ymessages: Any, ids: set[str]) -> dict[str, int]:
    """Indexes of the messages with these ids, searched from the end (new ones are there)."""
    found: dict[str, int] = {}
    for idx in range(len(ymessages) - 1, -1, -1):
        item = ymessages[idx]
        mid = item.get("id") if isinstance(item, Map) else None
        if mid in ids:
            found[mid] = idx
            if len(found) == len(ids):
                break
    return found


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
    The ids-to-index table of jupyterlab-chat is rebuilt after a move.
    """
    ymessages = chat.ymessages
    pending = set(ids)
    found = _locate(ymessages, pending)
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
        chat._indexes_by_id = {
            m.get("id"): i for i, m in enumerate(ymessages) if isinstance(m, Map)
        }
    return pending - set(found)
