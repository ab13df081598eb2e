"""The moderation log on the record layer: tampered behind the server's back, `verify` names it.

A real Jupyter server with noctis_rooms records moderation (create, invite, mute,
remove) through its REST API; the test then rewrites one entry and deletes another
straight in ``<root>/.noctis/rooms.db`` (the triggers first refuse, then are dropped)
and ``noctis-lab verify --rooms ROOT`` must name exactly those entries, while the
untouched log verifies clean. A ``rooms.db`` from before the chain keeps every entry.
The shared server's log is restored at the end, and verifies clean again.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from rooms_client import Server

from noctis_lab.cli import main
from noctis_lab.records import append_only_ddl


def _sql(db: Path, *statements: str | tuple[str, dict[str, Any]]) -> None:
    """Statements (or statement, parameters) in a plain sqlite3 session: no server, no layer."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        for item in statements:
            sql, params = (item, {}) if isinstance(item, str) else item
            con.execute(sql, params)
    finally:
        con.close()


def _rows(db: Path) -> dict[int, dict[str, Any]]:
    con = sqlite3.connect(db)
    try:
        con.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in con.execute("SELECT * FROM modlog")}
    finally:
        con.close()


def _verify(target: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["verify", "--rooms", str(target), "--json", "--exit-code"])
    return code, json.loads(capsys.readouterr().out)


def _findings(doc: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(f["table"], f["record_id"], f["kind"]) for f in doc["findings"]}


def _moderate(server: Server, room: str) -> dict[str, int]:
    """Create a room, invite, mute and remove bob: the ids of the four log entries."""
    assert server.request("POST", "/api/noctis/rooms", "alice", {"path": room})[0] == 201
    for action, body in (
        ("invite", {"username": "bob"}),
        ("mute", {"username": "bob"}),
        ("remove", {"username": "bob", "reason": "spam"}),
    ):
        status, data = server.request("POST", f"/api/noctis/rooms/{action}/{room}", "alice", body)
        assert status == 200, data
    status, log = server.request("GET", f"/api/noctis/rooms/modlog/{room}", "alice")
    assert status == 200
    ids = {e["action"]: e["seq"] for e in log["entries"]}
    assert set(ids) == {"create", "invite", "mute", "remove"}
    return ids


def test_a_rewritten_and_a_deleted_moderation_entry_are_named(
    lab: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _moderate(lab, "modchain.chat")
    db = lab.root / ".noctis" / "rooms.db"
    code, doc = _verify(lab.root, capsys)
    assert (code, doc["status"]) == (0, "ok"), doc["findings"]
    assert {t["table"]: t["rows"] for t in doc["tables"]}["modlog"] >= 4
    before = _rows(db)
    rewrite = f"UPDATE modlog SET actor = 'bob', detail = NULL WHERE id = {ids['remove']}"
    delete = f"DELETE FROM modlog WHERE id = {ids['invite']}"
    for sql in (rewrite, delete):  # the triggers refuse ...
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            _sql(db, sql)
    try:
        _sql(db, "DROP TRIGGER modlog_no_update", "DROP TRIGGER modlog_no_delete", rewrite, delete)
        log = lab.request("GET", "/api/noctis/rooms/modlog/modchain.chat", "alice")[1]
        assert [e["action"] for e in log["entries"]] == ["create", "mute", "remove"]
        assert log["entries"][-1]["actor"] == "bob"  # the server now shows the forgery ...
        after_invite = min(i for i in before if i > ids["invite"])
        code, doc = _verify(lab.root, capsys)  # ... and verify names both entries
        assert (code, doc["status"]) == (1, "tampered")
        assert _findings(doc) == {
            ("modlog", ids["remove"], "rewritten"),
            ("modlog", after_invite, "deleted"),
        }
        assert main(["verify", "--rooms", str(db)]) == 0  # the rooms.db file itself works too
        out = capsys.readouterr().out
        assert f"TAMPERED: modlog record {ids['remove']} was rewritten" in out
        assert f"record {ids['invite']} deleted" in out
    finally:  # the shared server's log as it was
        gone, forged = before[ids["invite"]], before[ids["remove"]]
        _sql(
            db,
            "DROP TRIGGER IF EXISTS modlog_no_update",
            "DROP TRIGGER IF EXISTS modlog_no_replace",
            ("UPDATE modlog SET actor = :actor, detail = :detail WHERE id = :id", forged),
            (f"INSERT INTO modlog ({', '.join(gone)}) VALUES (:{', :'.join(gone)})", gone),
            *append_only_ddl("modlog", "sqlite"),
        )
    assert _rows(db) == before
    assert _verify(lab.root, capsys)[1]["status"] == "ok"


_LEGACY = """
CREATE TABLE modlog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    path TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_user TEXT,
    message_id TEXT,
    detail TEXT
);
CREATE TRIGGER modlog_no_update BEFORE UPDATE ON modlog
BEGIN SELECT RAISE(ABORT, 'moderation log is append-only'); END;
CREATE TRIGGER modlog_no_delete BEFORE DELETE ON modlog
BEGIN SELECT RAISE(ABORT, 'moderation log is append-only'); END;
"""


def test_an_older_moderation_log_is_chained_with_every_entry_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from noctis_rooms import RoomStore

    db = tmp_path / ".noctis" / "rooms.db"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.executescript(_LEGACY)
    con.executemany(
        "INSERT INTO modlog (time, path, actor, action, target_user, message_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (1_700_000_000.125, "a.chat", "alice", "create", None, None, None),
            (1_700_000_060.5, "a.chat", "alice", "mute", "bob", None, None),
            (1_700_000_120.0, "a.chat", "carol", "delete_message", "bob", "m-1", None),
        ],
    )
    con.commit()
    con.close()
    store = RoomStore(db)  # the upgrade: seq -> id, the chain over the three entries
    try:
        store.log("a.chat", "alice", "unmute", target_user="bob")
        entries = store.moderation_log("a.chat")
    finally:
        store.close()
    assert [(e.seq, e.actor, e.action, e.time) for e in entries] == [
        (1, "alice", "create", 1_700_000_000.125),
        (2, "alice", "mute", 1_700_000_060.5),
        (3, "carol", "delete_message", 1_700_000_120.0),
        (4, "alice", "unmute", entries[3].time),
    ]
    code, doc = _verify(tmp_path, capsys)
    assert (code, doc["status"]) == (0, "ok"), doc["findings"]
    # the moderator's deletion is now blamed on alice, by INSERT OR REPLACE
    replace = (
        "INSERT OR REPLACE INTO modlog SELECT id, time, path, 'alice', action, target_user, "
        "message_id, detail, row_hash, prev_hash FROM modlog WHERE id = 3"
    )
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        _sql(db, replace)
    _sql(db, "DROP TRIGGER modlog_no_replace", "DROP TRIGGER modlog_no_delete", replace)
    code, doc = _verify(tmp_path, capsys)
    assert code == 1 and _findings(doc) == {("modlog", 3, "rewritten")}
