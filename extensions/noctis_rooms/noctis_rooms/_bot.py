"""The QA bot's Python API: post system messages (with study links) to rooms."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from noctis_lab._errors import RoomError

from ._identity import BOT_DISPLAY_NAME, BOT_USERNAME
from ._messages import StudyLink, system_message_payload
from ._store import normalize_path

__all__ = ["apost_system_message", "post_system_message"]


def _server_alive(state_dir: Path) -> bool:
    try:
        info = json.loads((state_dir / "server.json").read_text(encoding="utf-8"))
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _service_of(server: Any) -> Any:
    settings = getattr(getattr(server, "web_app", None), "settings", None)
    svc = settings.get("noctis_rooms") if isinstance(settings, dict) else None
    if svc is None:
        raise RoomError("the server does not run the noctis_rooms extension")
    return svc


async def apost_system_message(
    server: Any,
    room_path: str,
    text: str,
    study_link: StudyLink | dict[str, Any] | None = None,
) -> str:
    """Post from inside the running server's event loop; returns the message id."""
    return str(await _service_of(server).post(room_path, text, study_link=study_link))


def post_system_message(
    target: Any,
    room_path: str,
    text: str,
    study_link: StudyLink | dict[str, Any] | None = None,
) -> str:
    """Post a system message from the QA bot to a room.

    Parameters
    ----------
    target
        The server root directory (str or Path), or a running ``ServerApp`` with the
        extension (then call from another thread, or use :func:`apost_system_message`).
    room_path
        The ``.chat`` file, relative to the root.
    text
        Plain text (escaped: markdown and HTML render literally).
    study_link
        Optional :class:`StudyLink` (or dict with ``study_uid``, ``description``,
        ``series_uid``, ``open_path``): the message renders a card linking the study.

    Returns
    -------
    str
        The message id (for a root directory whose server is running, the id of the
        queued item; the server posts it within a second).

    Notes
    -----
    With a root directory: when a Noctis server runs on it, the message goes to
    ``.noctis/outbox/`` and the server posts it into the live room (no file race);
    otherwise it is appended to the ``.chat`` file directly.
    """
    payload = system_message_payload(text, study_link)  # validates before any I/O
    link = None if study_link is None else StudyLink.from_dict(study_link).to_dict()
    if not isinstance(target, str | os.PathLike):
        return _post_to_running_server(target, room_path, text, link)
    root = Path(target).resolve()
    path = normalize_path(room_path)
    chat_file = root / path
    if not chat_file.is_file():
        raise RoomError(f"room {path!r} does not exist under {str(root)!r}")
    state_dir = root / ".noctis"
    if _server_alive(state_dir):
        return _queue_in_outbox(state_dir, path, text, link)
    return _append_to_file(chat_file, payload)


def _post_to_running_server(
    server: Any, room_path: str, text: str, link: dict[str, Any] | None
) -> str:
    """Post through a ``ServerApp`` of this process, from another thread than its loop."""
    svc = _service_of(server)
    loop = server.io_loop.asyncio_loop
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RoomError(
            "post_system_message was called on the server's loop: await apost_system_message"
        )
    fut = asyncio.run_coroutine_threadsafe(svc.post(room_path, text, study_link=link), loop)
    return str(fut.result(timeout=30))


def _queue_in_outbox(state_dir: Path, path: str, text: str, link: dict[str, Any] | None) -> str:
    """Leave the message in ``.noctis/outbox/`` for the running server to post; its id."""
    item_id = uuid.uuid4().hex
    outbox = state_dir / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    tmp = outbox / f".{item_id}.tmp"
    tmp.write_text(json.dumps({"room": path, "text": text, "study_link": link}), encoding="utf-8")
    tmp.rename(outbox / f"{time.time():.6f}-{item_id}.json")
    return item_id


def _append_to_file(chat_file: Path, payload: dict[str, Any]) -> str:
    try:
        content = json.loads(chat_file.read_text(encoding="utf-8") or "{}")
    except ValueError as exc:
        raise RoomError(f"room file {str(chat_file)!r} is not valid JSON: {exc}") from exc
    if not isinstance(content, dict):
        raise RoomError(f"room file {str(chat_file)!r} is not a chat document")
    content.setdefault("messages", [])
    content.setdefault("users", {})
    content.setdefault("attachments", {})
    content.setdefault("metadata", {})
    content["users"].setdefault(
        BOT_USERNAME,
        {
            "username": BOT_USERNAME,
            "name": BOT_DISPLAY_NAME,
            "display_name": BOT_DISPLAY_NAME,
            "initials": "QA",
            "avatar_url": None,
            "color": None,
            "bot": True,
        },
    )
    mid = str(uuid.uuid4())
    msg = {
        "body": payload["body"],
        "id": mid,
        "time": time.time(),
        "sender": BOT_USERNAME,
        "type": "msg",
        "raw_time": False,
        "mentions": [],
        "metadata": payload["metadata"],
    }
    if payload["mime_model"] is not None:
        msg["mime_model"] = payload["mime_model"]
    content["messages"].append(msg)
    tmp = chat_file.with_name(f".{chat_file.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(content, indent=2), encoding="utf-8")
    with contextlib.suppress(OSError):
        os.chmod(tmp, chat_file.stat().st_mode & 0o777)
    tmp.replace(chat_file)
    return mid
