"""Test helpers: a real Jupyter server in a subprocess, and a real Yjs chat client.

The client speaks the y-websocket sync protocol over ``websockets`` with a pycrdt
``Doc`` wrapped in jupyterlab_chat's ``YChat``, like the JupyterLab frontend does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import _servers as servers
import websockets
from _servers import stop_process
from jupyterlab_chat.ychat import YChat
from pycrdt import (
    Decoder,
    Doc,
    Map,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

#: The QA bot's alert of the browser tests: a failed calibration with a study card.
STUDY_ALERT = "HU calibration FAILED on CT 1"
STUDY_LINK = {
    "study_uid": "1.2.3.4",
    "description": "ACR 464 on CT 1",
    "open_path": "notebooks/hu_qa.ipynb",
}
#: The committed prebuilt Room panel (what the wheel ships and ``labextension develop`` links).
LABEXTENSION = (
    Path(__file__).resolve().parents[2] / "extensions" / "noctis_rooms" / "noctis_rooms"
) / "labextension"
VENV_BIN = Path(sys.executable).parent
USERS = {
    "alice": {"display_name": "Alice", "role": "admin", "execute": True},
    "bob": {"display_name": "Bob", "role": "member"},
    "carol": {"display_name": "Carol", "role": "member"},
}


class Server:
    """``jupyter server`` (or ``jupyter lab``) with noctis_rooms on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        app: str = "server",
        extra: list[str] | None = None,
        noctis: bool = True,
    ) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tokens = {u: f"{u}-{secrets.token_hex(12)}" for u in USERS}
        self.users_file = workdir / "users.json"
        self.users_file.write_text(
            json.dumps(
                {"users": [{"username": u, "token": self.tokens[u], **v} for u, v in USERS.items()]}
            )
        )
        self.users_file.chmod(0o600)
        self.app = app
        self.noctis = noctis
        if not noctis:  # the stock stack: one shared token, no room rules
            shared = secrets.token_hex(16)
            self.tokens = {u: shared for u in USERS}
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = workdir / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env_extra: dict[str, str] | None = None) -> None:
        self.port = servers.free_port()
        env = {
            **os.environ,
            "JUPYTER_DATA_DIR": str(self.workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
            "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
            "JUPYTER_PLATFORM_DIRS": "1",
            **(env_extra or {}),
        }
        cmd = [
            str(VENV_BIN / "jupyter"),
            self.app,
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.root_dir={self.root}",
            f"--SQLiteYStore.db_path={self.root / '.jupyter_ystore.db'}",
            "--YDocExtension.document_save_delay=0.2",
            *self.extra,
        ]
        if self.noctis:
            cmd += [
                "--ServerApp.jpserver_extensions=noctis_rooms=True",
                "--ServerApp.identity_provider_class=noctis_rooms.NoctisIdentityProvider",
                f"--NoctisIdentityProvider.users_file={self.users_file}",
            ]
        else:
            # the stock server: `make` enables noctis_rooms in the venv, so switch it off
            cmd += [
                "--ServerApp.jpserver_extensions=noctis_rooms=False",
                f"--IdentityProvider.token={self.tokens['alice']}",
            ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        servers.wait_until(
            f"jupyter {self.app} answering as alice",
            lambda: self.get("/api/status", "alice"),
            timeout=150,  # a loaded 2-core CI machine can take over 60 s
            proc=self.proc,
            log=self.log_path,
            interval=0.25,
        )

    def stop(self, sig: int = signal.SIGTERM, *, must_exit_within: float | None = None) -> None:
        """Stop the server with ``sig`` (killed after 10 s).

        With ``must_exit_within``, the server must exit by itself within that many seconds
        (AssertionError otherwise, after killing it).
        """
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if must_exit_within is None:
            stop_process(proc, sig, timeout=10)
            return
        proc.send_signal(sig)
        try:
            proc.wait(must_exit_within)
        except subprocess.TimeoutExpired:
            stop_process(proc, signal.SIGKILL, timeout=10)
            raise AssertionError(
                f"jupyter {self.app} did not exit within {must_exit_within:g} s of signal {sig}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- REST ------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        user: str | None,
        body: Any = None,
        raw: bytes | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method)
        tok = token if token is not None else (self.tokens[user] if user else None)
        if tok:
            req.add_header("Authorization", f"token {tok}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                payload = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            payload = e.read()
            status = e.code
        try:
            return status, json.loads(payload or b"null")
        except ValueError:
            return status, payload

    def get(self, path: str, user: str) -> Any:
        status, data = self.request("GET", path, user)
        if status >= 400:
            raise urllib.error.URLError(f"{status}: {data}")
        return data

    def messages(self, room: str, user: str) -> dict[str, dict[str, Any]]:
        """The server's message view of ``room`` as ``user`` sees it, by message id."""
        status, data = self.request("GET", f"/api/noctis/rooms/messages/{room}", user)
        assert status == 200, (status, data)
        return {m["id"]: m for m in data["messages"]}

    def system_message(
        self, room: str, user: str, text: str, study_link: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """``POST system-message``: the QA bot's message (with a study card) as ``user`` asks."""
        body: dict[str, Any] = {"text": text}
        if study_link is not None:
            body["study_link"] = study_link
        return self.request("POST", f"/api/noctis/rooms/system-message/{room}", user, body)

    def session(self, path: str, user: str) -> tuple[int, Any]:
        return self.request(
            "PUT", f"/api/collaboration/session/{path}", user, {"format": "text", "type": "chat"}
        )


class ClientYChat(YChat):
    """A client-side YChat: the server stamps times and owns the document state.

    The stock ``YChat`` is the server's model: it re-stamps incoming messages and writes
    ``state.dirty``, both of which the server refuses from a client.
    """

    @property
    def dirty(self) -> bool:
        return bool(self._ystate.get("dirty", False))

    @dirty.setter
    def dirty(self, value: bool) -> None:
        return None

    def _set_timestamp(self, msg_idx: int, timestamp: float) -> None:
        return None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the server model's id table, rebuilt by converting every message on each
        # out-of-order insert, is not something a client keeps (the frontend does not)
        if self._ymessages_subscription is not None:
            self._ymessages.unobserve(self._ymessages_subscription)
            self._ymessages_subscription = None


class ChatClient:
    """One websocket connection to a chat room, with a synced ``YChat``."""

    def __init__(self, server: Server, path: str, user: str) -> None:
        self.server, self.path, self.user = server, path, user
        self.doc: Doc = Doc()
        self.chat = ClientYChat(ydoc=self.doc)
        self.raw: list[dict[str, Any]] = []
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.ws: Any = None
        self._remote = False
        self._task: asyncio.Task[None] | None = None
        self.latencies: list[float] = []

    async def __aenter__(self) -> ChatClient:
        status, sess = self.server.session(self.path, self.user)
        if status >= 400:
            raise PermissionError(f"session {status}: {sess}")
        url = (
            f"ws://127.0.0.1:{self.server.port}/api/collaboration/room/"
            f"text:chat:{sess['fileId']}?sessionId={sess['sessionId']}"
        )
        self.ws = await websockets.connect(
            url,
            additional_headers={"Authorization": f"token {self.server.tokens[self.user]}"},
            max_size=None,
        )
        self._sub = self.doc.observe(self._on_local)
        self._task = asyncio.create_task(self._reader())
        await self.ws.send(create_sync_message(self.doc))
        await asyncio.wait_for(self.synced.wait(), 15)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _on_local(self, event: Any) -> None:
        if self._remote or self.ws is None:
            return
        msg = create_update_message(event.update)
        asyncio.get_event_loop().create_task(self._send(msg))

    async def _send(self, msg: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(msg)

    async def send_raw(self, msg: bytes) -> None:
        await self.ws.send(msg)

    async def _reader(self) -> None:
        try:
            async for msg in self.ws:
                if not isinstance(msg, bytes) or not msg:
                    continue
                if msg[0] == YMessageType.SYNC:
                    self._remote = True
                    try:
                        reply = handle_sync_message(msg[1:], self.doc)
                    finally:
                        self._remote = False
                    if reply is not None:
                        await self.ws.send(reply)
                    if msg[1] == YSyncMessageType.SYNC_STEP2:
                        self.synced.set()
                elif msg[0] == 2:  # RAW
                    d = Decoder(msg)
                    d.read_var_uint()
                    with contextlib.suppress(ValueError):
                        self.raw.append(json.loads(d.read_var_string()))
        except websockets.ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                self.close_code = self.ws.close_code
            self.closed.set()

    # -- conveniences -------------------------------------------------------------
    def post(self, body: str, sender: str | None = None) -> str:
        """Append a message, as the JupyterLab frontend does (one push, no scan)."""
        return self.post_with(body, sender=sender or self.user)

    def post_with(self, body: str, **fields: Any) -> str:
        """Post a message with extra fields (e.g. ``metadata={"reply_to": id}``) in one update."""
        mid = str(uuid.uuid4())
        msg = {
            "id": mid,
            "body": body,
            "sender": self.user,
            "time": time.time(),
            "type": "msg",
            "mentions": [],
        }
        msg.update(fields)
        self.chat.ymessages.append(Map(msg))
        return mid

    def messages(self) -> list[dict[str, Any]]:
        return self.chat._get_messages()

    def react_and_read(self, mid: str, emoji: str = "👍") -> None:
        """In one update: the user's reaction ``emoji`` on ``mid`` and their read receipt."""
        with self.doc.transaction():
            self.chat.ymetadata[f"noctis.reactions.{self.user}"] = {mid: [emoji]}
            self.chat.ymetadata[f"noctis.read.{self.user}"] = {"message_id": mid, "time": 0}

    def by_id(self, mid: str) -> dict[str, Any] | None:
        return next((m for m in self.messages() if m.get("id") == mid), None)

    def ymessage(self, mid: str) -> Any:
        for i, m in enumerate(self.messages()):
            if m.get("id") == mid:
                return self.chat.ymessages[i]
        raise KeyError(mid)

    async def send_awareness(self, payload: bytes) -> None:
        await self.ws.send(create_awareness_message(payload))

    def rejected(self) -> list[dict[str, Any]]:
        return [r for r in self.raw if r.get("type") == "noctis-rejected"]


async def wait_until(cond: Any, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(interval)
    return bool(cond())
