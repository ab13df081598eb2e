"""Message payloads built by the server: system messages, study links, replies.

Pure functions; the service writes their results into the live chat document.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from noctis_lab._errors import RoomError

from ._guard import MAX_BODY_CHARS, STUDY_LINK_MIME

__all__ = ["StudyLink", "escape_markdown", "quote_reply", "system_message_payload"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def escape_markdown(text: str) -> str:
    """Escape markdown and HTML specials so user text renders literally."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


@dataclass(frozen=True)
class StudyLink:
    """A link to a study (and optionally a series) that opens it in a notebook or viewer.

    Attributes
    ----------
    study_uid
        StudyInstanceUID.
    description
        Human text, e.g. "CT ACR 464 — Somatom Force, 2024-05-02".
    series_uid
        SeriesInstanceUID, optional.
    open_path
        Path, relative to the server root, of the notebook or dashboard that opens it
        (e.g. ``notebooks/hu_qa.ipynb``).
    """

    study_uid: str
    description: str = ""
    series_uid: str = ""
    open_path: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.study_uid, str) or not self.study_uid.strip():
            raise RoomError("study link: 'study_uid' must be a non-empty string")
        if self.open_path and (self.open_path.startswith("/") or ".." in self.open_path.split("/")):
            raise RoomError(
                f"study link: open_path {self.open_path!r} must be relative to the root"
            )

    @classmethod
    def from_dict(cls, data: Any) -> StudyLink:
        """Build from a JSON object (clear errors on bad input)."""
        if isinstance(data, StudyLink):
            return data
        if not isinstance(data, dict):
            raise RoomError("study link must be an object with 'study_uid'")
        unknown = set(data) - {"study_uid", "description", "series_uid", "open_path"}
        if unknown:
            raise RoomError(f"study link: unknown field(s) {sorted(unknown)}")
        for k, v in data.items():
            if not isinstance(v, str):
                raise RoomError(f"study link: {k!r} must be a string")
        return cls(**data)

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return asdict(self)

    def markdown(self) -> str:
        """A card as markdown: title line, UIDs, and a link that opens the study."""
        title = escape_markdown(self.description or "Study")
        lines = [f"**Study:** {title}", "", f"Study UID `{self.study_uid}`"]
        if self.series_uid:
            lines.append(f"· Series UID `{self.series_uid}`")
        if self.open_path:
            lines += ["", f"[Open study]({self.open_path.replace(' ', '%20')})"]
        return "\n".join(lines)


def system_message_payload(
    text: str, study_link: StudyLink | dict[str, Any] | None = None
) -> dict[str, Any]:
    """Body, metadata and mime model of a bot message (text is escaped)."""
    if not isinstance(text, str) or not text.strip():
        raise RoomError("system message text must be a non-empty string")
    body = escape_markdown(text)
    metadata: dict[str, Any] = {"noctis_system": True}
    mime: dict[str, Any] | None = None
    if study_link is not None:
        link = StudyLink.from_dict(study_link)
        body = f"{body}\n\n{link.markdown()}"
        metadata["study_link"] = link.to_dict()
        mime = {"data": {STUDY_LINK_MIME: link.to_dict(), "text/markdown": body}}
    if len(body) > MAX_BODY_CHARS:
        raise RoomError(f"system message is longer than {MAX_BODY_CHARS} characters")
    return {"body": body, "metadata": metadata, "mime_model": mime}


def quote_reply(original_body: str, original_sender: str, text: str) -> str:
    """A reply body that quotes the original (what the stock chat UI shows)."""
    first = (original_body.strip().splitlines() or [""])[0]
    if len(first) > 200:
        first = first[:200] + "…"
    return f"> **{escape_markdown(original_sender)}:** {first}\n\n{text}"
