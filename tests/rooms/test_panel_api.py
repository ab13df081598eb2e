"""The REST calls the Room panel makes: reactions, read receipts, presence heartbeat."""

from __future__ import annotations

import time

import pytest
from rooms_client import Server

pytestmark = [pytest.mark.server]

ROOM = "panel-api.chat"


def _post(server: Server, action: str, user: str, body: dict[str, object]) -> tuple[int, dict]:
    return server.request("POST", f"/api/noctis/rooms/{action}/{ROOM}", user, body)


def _reactions_toggle_and_set(server: Server, m1: str) -> None:
    """Toggle on, toggle off, explicit on twice (idempotent), explicit off; bad input is a 400."""
    st, res = _post(server, "reactions", "bob", {"message_id": m1, "emoji": "👍"})
    assert st == 200 and res["reactions"] == {"👍": ["bob"]} and res["mine"] == ["👍"]
    st, res = _post(server, "reactions", "bob", {"message_id": m1, "emoji": "👍"})
    assert st == 200 and res["reactions"] == {} and res["mine"] == []
    for _ in range(2):
        st, res = _post(server, "reactions", "bob", {"message_id": m1, "emoji": "✅", "on": True})
        assert st == 200 and res["mine"] == ["✅"]
    st, res = _post(server, "reactions", "alice", {"message_id": m1, "emoji": "✅"})
    assert st == 200 and sorted(res["reactions"]["✅"]) == ["alice", "bob"]
    st, res = _post(server, "reactions", "alice", {"message_id": m1, "emoji": "✅", "on": False})
    assert res["reactions"] == {"✅": ["bob"]}
    for body, reason in [
        ({"message_id": m1}, "'emoji' are required"),
        ({"message_id": m1, "emoji": "x" * 33}, "at most 32 characters"),
        ({"message_id": m1, "emoji": "👍", "on": "yes"}, "'on' must be"),
        ({"message_id": "nope", "emoji": "👍"}, "is not in room"),
    ]:
        st, err = _post(server, "reactions", "bob", body)
        assert st == 400 and reason in err["message"], (body, err)


def _receipts_move_forward(server: Server, m1: str, m2: str) -> None:
    """Read receipts move forward only; a reader who is not a member may mark read."""
    assert _post(server, "receipts", "bob", {"message_id": m2})[1] == {"read": m2}
    assert _post(server, "receipts", "bob", {"message_id": m1})[1] == {"read": m2}
    st, err = _post(server, "receipts", "bob", {"message_id": "nope"})
    assert st == 400 and "is not in room" in err["message"]
    receipts = server.get(f"/api/noctis/rooms/receipts/{ROOM}", "carol")["receipts"]
    assert "bob" in receipts[m1] and "bob" in receipts[m2]
    # a reader who is not a member (Carol, public room) may mark read but not react
    assert _post(server, "receipts", "carol", {"message_id": m1})[0] == 200
    assert _post(server, "reactions", "carol", {"message_id": m1, "emoji": "👍"})[0] == 403


def test_reactions_receipts_and_heartbeat(server: Server) -> None:
    assert server.request("POST", "/api/noctis/rooms", "alice", {"path": ROOM})[0] == 201
    ids = [_post(server, "system-message", "alice", {"text": f"scan {i}"})[1]["id"] for i in (1, 2)]
    m1, m2 = ids

    # reacting needs the write right: Bob is not a member yet
    st, err = _post(server, "reactions", "bob", {"message_id": m1, "emoji": "👍"})
    assert st == 403 and "may not write" in err["message"]
    assert _post(server, "join", "bob", {})[0] == 200
    _reactions_toggle_and_set(server, m1)
    _receipts_move_forward(server, m1, m2)

    # the messages view resolves everything and names the users
    view = server.get(f"/api/noctis/rooms/messages/{ROOM}", "carol")
    by_id = {m["id"]: m for m in view["messages"]}
    assert by_id[m1]["reactions"] == {"✅": ["bob"]}
    assert by_id[m1]["read_by"] == ["bob", "carol"]
    assert by_id[m2]["read_by"] == ["bob"]
    assert view["users"]["noctis-bot"] == "Noctis QA"

    # presence heartbeat records last-seen
    before = time.time()
    st, presence = _post(server, "presence", "carol", {})
    assert st == 200 and presence["last_seen"]["carol"] >= before - 1

    # a muted member may no longer react; a removed one may not even read
    assert _post(server, "mute", "alice", {"username": "bob"})[0] == 200
    st, err = _post(server, "reactions", "bob", {"message_id": m1, "emoji": "👍"})
    assert st == 403
    assert _post(server, "remove", "alice", {"username": "bob"})[0] == 200
    assert _post(server, "receipts", "bob", {"message_id": m1})[0] == 403
    assert _post(server, "presence", "bob", {})[0] == 403
