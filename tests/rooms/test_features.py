"""Room features end to end, and that they survive a server restart."""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import zlib

import pytest
from noctis_rooms import StudyLink, post_system_message
from rooms_client import ChatClient, Server, wait_until

pytestmark = [pytest.mark.server, pytest.mark.slow]

SECRET = "patient-id-7f3a9c-should-vanish"


def _png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


LINK = StudyLink(
    study_uid="1.2.826.0.1.3680043.8.498.1",
    series_uid="1.2.826.0.1.3680043.8.498.2",
    description="ACR 464 <b>phantom</b> — CT 1",
    open_path="notebooks/hu_qa.ipynb",
)


def _create_room_and_refuse_bad_ones(server: Server) -> None:
    """Create qa/ct1.chat; the same room twice, a bad kind, a non-.chat path are clear errors."""
    st, _ = server.request(
        "POST",
        "/api/noctis/rooms",
        "alice",
        {"path": "qa/ct1.chat", "kind": "facility", "title": "CT 1"},
    )
    assert st == 201
    st, err = server.request("POST", "/api/noctis/rooms", "alice", {"path": "qa/ct1.chat"})
    assert st == 400 and "already exists" in err["message"]
    st, err = server.request(
        "POST", "/api/noctis/rooms", "alice", {"path": "x.chat", "kind": "party"}
    )
    assert st == 400 and "kind" in err["message"]
    st, err = server.request("POST", "/api/noctis/rooms", "alice", {"path": "notes.txt"})
    assert st == 400 and ".chat" in err["message"]


def _reply_react_and_alert(server: Server, b: ChatClient, ids: dict[str, str]) -> None:
    """Bob replies (REST and websocket), reacts and reads; the bot posts a study link."""
    st, rep = server.request(
        "POST",
        "/api/noctis/rooms/reply/qa/ct1.chat",
        "bob",
        {"reply_to": ids["hello"], "text": "On it."},
    )
    assert st == 201
    ids["reply"] = rep["id"]
    b.react_and_read(ids["hello"])
    # a reply over the websocket carries metadata.reply_to
    ids["ws_reply"] = b.post_with("second reply", metadata={"reply_to": ids["hello"]})
    # the QA bot posts a study link (in-server API over REST, admin only)
    st, sysmsg = server.system_message(
        "qa/ct1.chat", "alice", "HU calibration FAILED on CT 1", LINK.to_dict()
    )
    assert st == 201
    ids["system"] = sysmsg["id"]
    assert server.system_message("qa/ct1.chat", "bob", "fake alarm")[0] == 403


def _upload(server: Server, ids: dict[str, str]) -> None:
    """Bob uploads an image; a disguised file is refused."""
    st, up = server.request(
        "POST", "/api/noctis/rooms/upload/qa/ct1.chat?filename=roi.png", "bob", raw=_png()
    )
    assert st == 201 and up["mimetype"] == "image/png"
    ids["upload"] = up["id"]
    st, err = server.request(
        "POST",
        "/api/noctis/rooms/upload/qa/ct1.chat?filename=evil.png",
        "bob",
        raw=b"<html><script>",
    )
    assert st == 400 and "not accepted" in err["message"]


async def _post_and_delete_a_secret(a: ChatClient, b: ChatClient, ids: dict[str, str]) -> None:
    """Alice posts a secret, then deletes it; Bob sees it deleted; the purge has run."""
    ids["secret"] = a.post(f"oops {SECRET}")
    await asyncio.sleep(0.3)
    with a.doc.transaction():
        ym = a.ymessage(ids["secret"])
        ym["body"] = ""
        ym["deleted"] = True
    assert await wait_until(lambda: (b.by_id(ids["secret"]) or {}).get("deleted") is True)
    await asyncio.sleep(3.5)  # the history purge runs 0.5 s and 3 s after a delete


def _check_view(server: Server, ids: dict[str, str], tag: str) -> None:
    """The server's view of qa/ct1.chat has everything phase 1 did."""
    view = server.messages("qa/ct1.chat", "carol")
    assert view[ids["hello"]]["reactions"] == {"👍": ["bob"]}, tag
    assert "bob" in view[ids["hello"]]["read_by"], tag
    assert view[ids["reply"]]["reply_to"] == ids["hello"], tag
    assert view[ids["reply"]]["body"].startswith("> **alice:**"), tag
    assert view[ids["ws_reply"]]["reply_to"] == ids["hello"], tag
    sysm = view[ids["system"]]
    assert sysm["sender"] == "noctis-bot" and sysm["study_link"]["study_uid"] == LINK.study_uid, tag
    assert "<b>" not in sysm["body"] and "\\<b\\>" in sysm["body"], tag
    assert view[ids["secret"]]["deleted"] and view[ids["secret"]]["body"] == "", tag


def test_rooms_features_and_restart(server: Server) -> None:
    _create_room_and_refuse_bad_ones(server)

    async def phase1() -> dict[str, str]:
        ids: dict[str, str] = {}
        async with (
            ChatClient(server, "qa/ct1.chat", "alice") as a,
            ChatClient(server, "qa/ct1.chat", "bob") as b,
        ):
            ids["hello"] = a.post("Water HU drifted on CT 1 <script>alert(1)</script>")
            assert await wait_until(lambda: b.by_id(ids["hello"]) is not None)
            _reply_react_and_alert(server, b, ids)
            _upload(server, ids)
            # presence: both online
            pres = server.request("GET", "/api/noctis/rooms/presence/qa/ct1.chat", "alice")[1]
            assert {"alice", "bob"} <= set(pres["online"]) and "bob" in pres["last_seen"]
            await _post_and_delete_a_secret(a, b, ids)
        pres = server.request("GET", "/api/noctis/rooms/presence/qa/ct1.chat", "alice")[1]
        assert "bob" not in pres["online"]
        return ids

    ids = asyncio.run(phase1())
    # the upload is served to members only, with safe headers
    st, data = server.request("GET", f"/api/noctis/uploads/{ids['upload']}", "alice")
    assert st == 200 and data == _png()
    _check_view(server, ids, "before restart")
    # stopped as JupyterHub stops a server or service (SIGINT first, no terminal) after a room
    # was used: it exits by itself (it used to hang until killed, its store threads alive)
    server.stop(signal.SIGINT, must_exit_within=15)
    _, signalled, after = server.log().rpartition("received signal 2, stopping")
    assert signalled and "Shutting down" in after, "SIGINT skipped the server's clean stop"
    server.start()
    _check_view(server, ids, "after restart")
    # the deleted text is gone from every file under the root (chat file, ystore, rooms db)
    hits = [
        str(p.relative_to(server.root))
        for p in server.root.rglob("*")
        if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    assert hits == [], f"deleted text still stored in {hits}"
    # the chat file itself holds the history
    content = json.loads((server.root / "qa/ct1.chat").read_text())
    assert any(m["id"] == ids["hello"] for m in content["messages"])


def test_python_bot_api_with_and_without_server(server: Server, tmp_path: object) -> None:
    server.request("POST", "/api/noctis/rooms", "alice", {"path": "alerts.chat"})
    # a server runs on this root: the message goes through the outbox into the live room
    item = post_system_message(
        server.root,
        "alerts.chat",
        "AI model v3 status: DEGRADED",
        study_link={"study_uid": "1.2.3", "description": "Drift set"},
    )
    assert item

    async def see() -> None:
        async with ChatClient(server, "alerts.chat", "carol") as c:
            assert await wait_until(lambda: any("DEGRADED" in m["body"] for m in c.messages()), 5)
            msg = next(m for m in c.messages() if "DEGRADED" in m["body"])
            assert msg["sender"] == "noctis-bot"
            assert (
                msg["mime_model"]["data"]["application/vnd.noctis.study-link+json"]["study_uid"]
                == "1.2.3"
            )

    asyncio.run(see())
    with pytest.raises(Exception, match="does not exist"):
        post_system_message(server.root, "missing.chat", "x")
    with pytest.raises(Exception, match="non-empty"):
        post_system_message(server.root, "alerts.chat", "  ")
    with pytest.raises(Exception, match="study_uid"):
        post_system_message(server.root, "alerts.chat", "x", study_link={"description": "no uid"})
