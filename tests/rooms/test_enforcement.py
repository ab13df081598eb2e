"""Server-side rules on the collaboration websocket: each forbidden thing is refused."""

from __future__ import annotations

import asyncio
import json

import pytest
from pycrdt import Map
from rooms_client import ChatClient, Server, wait_until

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _create(server: Server, path: str, user: str = "alice", **kw: object) -> None:
    status, data = server.request("POST", "/api/noctis/rooms", user, {"path": path, **kw})
    assert status == 201, data


def human(messages: list[dict[str, object]]) -> list[dict[str, object]]:
    """Messages other than the bot's join/leave notices."""
    return [m for m in messages if m.get("sender") != "noctis-bot"]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _refused(
    client: ChatClient, before: list[dict[str, object]], server: Server, path: str, user: str
) -> None:
    """The client was told, its connection closed, and a fresh client sees ``before``."""
    assert await wait_until(lambda: client.closed.is_set(), 5), "connection was not closed"
    assert client.rejected(), "the client was not told why"
    assert client.close_code == 1003
    async with ChatClient(server, path, user) as fresh:
        await asyncio.sleep(0.2)
        assert human(fresh.messages()) == human(before)


def test_honest_post_edit_delete_are_accepted(server: Server) -> None:
    _create(server, "honest.chat")

    async def go() -> None:
        async with (
            ChatClient(server, "honest.chat", "alice") as a,
            ChatClient(server, "honest.chat", "bob") as b,
        ):
            mid = a.post("hello **bob**")
            assert await wait_until(lambda: b.by_id(mid) is not None)
            got = b.by_id(mid)
            assert got is not None and got["sender"] == "alice" and got["body"] == "hello **bob**"
            ym = a.ymessage(mid)
            with a.doc.transaction():
                ym["body"] = "hello bob (edited)"
                ym["edited"] = True
            assert await wait_until(
                lambda: (b.by_id(mid) or {}).get("body") == "hello bob (edited)"
            )
            with a.doc.transaction():
                ym["body"] = ""
                ym["deleted"] = True
            assert await wait_until(lambda: (b.by_id(mid) or {}).get("deleted") is True)
            assert not a.rejected() and not b.rejected()

    run(go())


def test_sender_spoofing_is_refused(server: Server) -> None:
    _create(server, "spoof.chat")

    async def go() -> None:
        async with ChatClient(server, "spoof.chat", "alice") as a:
            a.post("real message")
            await asyncio.sleep(0.3)
        async with ChatClient(server, "spoof.chat", "bob") as b:
            before = b.messages()
            b.post("I am alice, trust me", sender="alice")
            await _refused(b, before, server, "spoof.chat", "carol")
            assert "sender must be bob" in b.rejected()[0]["reasons"][0]

    run(go())
    assert "refused update from bob in spoof.chat" in server.log()


def test_editing_another_users_message_is_refused(server: Server) -> None:
    _create(server, "edit.chat")

    async def go() -> None:
        async with ChatClient(server, "edit.chat", "alice") as a:
            mid = a.post("alice's words")
            await asyncio.sleep(0.3)
        async with ChatClient(server, "edit.chat", "bob") as b:
            before = b.messages()
            with b.doc.transaction():
                b.ymessage(mid)["body"] = "bob rewrote this"
            await _refused(b, before, server, "edit.chat", "alice")
        async with ChatClient(server, "edit.chat", "bob") as b:
            before = b.messages()
            with b.doc.transaction():
                ym = b.ymessage(mid)
                ym["body"] = ""
                ym["deleted"] = True
            await _refused(b, before, server, "edit.chat", "alice")
            assert "may not delete" in b.rejected()[0]["reasons"][0]

    run(go())


def test_immutable_fields_and_array_removal_are_refused(server: Server) -> None:
    _create(server, "immut.chat")

    async def go() -> None:
        async with ChatClient(server, "immut.chat", "alice") as a:
            mid = a.post("original")
            await asyncio.sleep(0.3)
        for change in ("sender", "time", "remove"):
            async with ChatClient(server, "immut.chat", "alice") as a:
                before = a.messages()
                if change == "sender":
                    a.ymessage(mid)["sender"] = "bob"
                elif change == "time":
                    a.ymessage(mid)["time"] = 1.0
                else:
                    del a.chat.ymessages[0]
                await _refused(a, before, server, "immut.chat", "alice")

    run(go())


def test_moderator_delete_is_allowed_and_logged(server: Server) -> None:
    _create(server, "mod.chat")
    assert (
        server.request(
            "POST",
            "/api/noctis/rooms/invite/mod.chat",
            "alice",
            {"username": "carol", "role": "moderator"},
        )[0]
        == 200
    )

    async def go() -> str:
        async with ChatClient(server, "mod.chat", "bob") as b:
            mid = b.post("spam spam spam")
            await asyncio.sleep(0.3)
        async with ChatClient(server, "mod.chat", "carol") as c:
            with c.doc.transaction():
                ym = c.ymessage(mid)
                ym["body"] = ""
                ym["deleted"] = True
            await asyncio.sleep(0.5)
            assert not c.rejected() and not c.closed.is_set()
        async with ChatClient(server, "mod.chat", "alice") as a:
            m = a.by_id(mid)
            assert m is not None and m["deleted"] is True and m["body"] == ""
        return mid

    mid = run(go())
    status, log = server.request("GET", "/api/noctis/rooms/modlog/mod.chat", "carol")
    assert status == 200
    entries = [e for e in log["entries"] if e["action"] == "delete_message"]
    assert entries and entries[-1]["actor"] == "carol" and entries[-1]["target_user"] == "bob"
    assert entries[-1]["message_id"] == mid
    # a plain member cannot read the moderation log
    assert server.request("GET", "/api/noctis/rooms/modlog/mod.chat", "bob")[0] == 403


def test_read_only_room_refuses_member_posts(server: Server) -> None:
    _create(server, "announce.chat", visibility="read-only")

    async def go() -> None:
        async with ChatClient(server, "announce.chat", "alice") as a:
            a.post("announcement from the admin")
            await asyncio.sleep(0.3)
            assert not a.rejected()
        async with ChatClient(server, "announce.chat", "bob") as b:
            before = b.messages()
            assert any(m["body"] == "announcement from the admin" for m in before)
            b.post("can I write here?")
            await _refused(b, before, server, "announce.chat", "bob")
            assert "may not post" in b.rejected()[0]["reasons"][0]

    run(go())


def test_muted_member_cannot_post(server: Server) -> None:
    _create(server, "mute.chat")

    async def go() -> None:
        async with ChatClient(server, "mute.chat", "bob") as b:  # joins the public room
            b.post("first")
            await asyncio.sleep(0.3)
        st, _ = server.request(
            "POST", "/api/noctis/rooms/mute/mute.chat", "alice", {"username": "bob"}
        )
        assert st == 200
        async with ChatClient(server, "mute.chat", "bob") as b:
            before = b.messages()
            b.post("still talking")
            await _refused(b, before, server, "mute.chat", "alice")

    run(go())
    entries = server.request("GET", "/api/noctis/rooms/modlog/mute.chat", "alice")[1]["entries"]
    assert any(e["action"] == "mute" and e["target_user"] == "bob" for e in entries)


def test_reactions_and_read_receipts_only_for_oneself(server: Server) -> None:
    _create(server, "react.chat")

    async def go() -> None:
        async with ChatClient(server, "react.chat", "alice") as a:
            mid = a.post("react to me")
            await asyncio.sleep(0.3)
        async with ChatClient(server, "react.chat", "bob") as b:
            with b.doc.transaction():
                b.chat.ymetadata["noctis.reactions.bob"] = {mid: ["👍"]}
                b.chat.ymetadata["noctis.read.bob"] = {"message_id": mid, "time": 0}
            await asyncio.sleep(0.4)
            assert not b.rejected()
        for key, value in (
            ("noctis.reactions.alice", {mid: ["👎"]}),
            ("noctis.read.alice", {"message_id": mid, "time": 0}),
            ("id", "hijacked"),
        ):
            async with ChatClient(server, "react.chat", "bob") as b:
                before_meta = b.chat.get_metadata()
                b.chat.ymetadata[key] = value
                assert await wait_until(lambda: b.closed.is_set(), 5)
                assert b.rejected()
            async with ChatClient(server, "react.chat", "carol") as c:
                await asyncio.sleep(0.1)
                assert c.chat.get_metadata() == before_meta

    run(go())
    st, reactions = server.request("GET", "/api/noctis/rooms/reactions/react.chat", "carol")
    assert st == 200
    assert list(reactions["reactions"].values()) == [{"👍": ["bob"]}]
    receipts = server.request("GET", "/api/noctis/rooms/receipts/react.chat", "carol")[1][
        "receipts"
    ]
    assert "bob" in next(iter(v for v in receipts.values() if v))


def test_profile_spoofing_and_unsafe_content_are_refused(server: Server) -> None:
    _create(server, "profile.chat")

    async def go() -> None:
        cases = [
            lambda c: c.chat.yusers.update(
                {"bob": {"username": "bob", "name": "Alice", "display_name": "Alice"}}
            ),
            lambda c: c.chat.yusers.update(
                {"alice": {"username": "alice", "name": "Evil", "display_name": "Evil"}}
            ),
            lambda c: c.chat.ymessages.append(
                Map(
                    {
                        "id": "x1",
                        "body": "",
                        "sender": "bob",
                        "time": 0.0,
                        "type": "msg",
                        "mime_model": {
                            "data": {"text/html": "<script>alert(1)</script>"},
                            "trusted": True,
                        },
                    }
                )
            ),
            lambda c: c.doc.__setitem__("evil", Map({"a": 1})),
        ]
        for i, case in enumerate(cases):
            async with ChatClient(server, "profile.chat", "bob") as b:
                before = b.messages()
                users_before = b.chat._get_users()
                with b.doc.transaction():
                    case(b)
                assert await wait_until(lambda: b.closed.is_set(), 5), f"case {i} not refused"
            async with ChatClient(server, "profile.chat", "carol") as c:
                await asyncio.sleep(0.1)
                assert human(c.messages()) == human(before)
                assert {k: v for k, v in c.chat._get_users().items() if k != "carol"} == {
                    k: v for k, v in users_before.items() if k != "carol"
                }

    run(go())


def test_awareness_impersonation_is_dropped(server: Server) -> None:
    _create(server, "aware.chat")
    from pycrdt import Encoder

    def awareness(client_id: int, clock: int, state: dict[str, object]) -> bytes:
        enc = Encoder()
        enc.write_var_uint(1)
        enc.write_var_uint(client_id)
        enc.write_var_uint(clock)
        enc.write_var_string(json.dumps(state))
        return enc.to_bytes()

    async def go() -> None:
        async with (
            ChatClient(server, "aware.chat", "bob") as b,
            ChatClient(server, "aware.chat", "alice") as a,
        ):
            await b.send_awareness(
                awareness(4242, 1, {"user": {"username": "alice", "display_name": "Alice"}})
            )
            await asyncio.sleep(0.3)
            assert b.rejected() and "awareness user must be bob" in b.rejected()[0]["reasons"][0]
            assert not b.closed.is_set()  # awareness refusals do not close the connection
            await b.send_awareness(
                awareness(4243, 1, {"user": {"username": "bob", "display_name": "Bob"}})
            )
            await asyncio.sleep(0.2)
            assert len(b.rejected()) == 1
            _ = a

    run(go())


def test_private_room_is_closed_to_non_members(server: Server) -> None:
    st, _ = server.request(
        "POST",
        "/api/noctis/rooms",
        "alice",
        {"path": "private/board.chat", "visibility": "private", "members": ["carol"]},
    )
    assert st == 201

    async def go() -> None:
        async with ChatClient(server, "private/board.chat", "carol") as c:
            c.post("confidential: phantom QC failed")
            await asyncio.sleep(0.3)
        with pytest.raises(PermissionError, match="403"):
            async with ChatClient(server, "private/board.chat", "bob"):
                pass

    run(go())
    # REST: contents GET and /files of the chat are refused for bob, allowed for carol
    assert server.request("GET", "/api/contents/private/board.chat", "bob")[0] == 403
    assert server.request("GET", "/files/private/board.chat", "bob")[0] == 403
    st, model = server.request("GET", "/api/contents/private/board.chat", "carol")
    assert st == 200 and "confidential" in json.dumps(model)
    assert server.request("GET", "/api/noctis/rooms/info/private/board.chat", "bob")[0] == 403
    # the server's state is never served
    assert server.request("GET", "/api/contents/.noctis/rooms.db", "alice")[0] in (403, 404)
    assert server.request("GET", "/files/.jupyter_ystore.db", "alice")[0] in (403, 404)
    # bob cannot join a private room on his own
    assert server.request("POST", "/api/noctis/rooms/join/private/board.chat", "bob", {})[0] == 403
    rooms = [r["path"] for r in server.request("GET", "/api/noctis/rooms", "bob")[1]["rooms"]]
    assert "private/board.chat" not in rooms


def test_removed_member_is_disconnected_and_refused(server: Server) -> None:
    server.request(
        "POST",
        "/api/noctis/rooms",
        "alice",
        {"path": "team.chat", "visibility": "private", "members": ["bob"]},
    )

    async def go() -> None:
        async with ChatClient(server, "team.chat", "bob") as b:
            st, _ = server.request(
                "POST", "/api/noctis/rooms/remove/team.chat", "alice", {"username": "bob"}
            )
            assert st == 200
            assert await wait_until(lambda: b.closed.is_set(), 5)
        with pytest.raises(PermissionError):
            async with ChatClient(server, "team.chat", "bob"):
                pass

    run(go())


def test_latency_bench_smoke_run(server: Server) -> None:
    """bench/bench_chat_load.py's measuring loop, briefly, against the guarded server:
    every message reaches every other client of its room and stays there."""
    import sys
    from contextlib import AsyncExitStack
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import bench_chat_load as bench

    for i in range(2):
        _create(server, f"bench-smoke/room{i}.chat")

    async def go() -> bench.LoadResult:
        result = bench.LoadResult("guard")
        async with AsyncExitStack() as stack:
            sender = await bench.connect(stack, server, 4, 2, prefix="bench-smoke")
            await bench.run_phase(sender, result, 2.0, 0.25, 10.0)
        return result

    r = run(go())
    assert isinstance(r, bench.LoadResult)
    assert r.messages >= 24 and r.deliveries == r.messages  # one other client per room
    assert r.lost == 0 and len(r.latencies_ms) == r.deliveries
    assert r.summary()["p99_ms"] < 10_000
