"""Team identity: a users file mapping one login token to one named user.

The file is JSON::

    {"users": [{"username": "alice", "token": "...", "display_name": "Alice", "role": "admin",
                "execute": true}]}

Roles are site-wide defaults (``admin``, ``moderator``, ``member``); a room can raise a
user's role inside that room. ``execute`` (default false) is the separate right to start
kernels, sessions and terminals: code runs as the server's account, so whoever has it can
read and rewrite everything the server can (tokens, rooms, the moderation log).
Tokens are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from traitlets import Unicode, default

from noctis_lab._errors import IdentityError

__all__ = [
    "BOT_USERNAME",
    "ROLES",
    "NoctisIdentityProvider",
    "UserRecord",
    "load_users",
    "parse_users",
]

#: Roles, weakest first.
ROLES: tuple[str, ...] = ("member", "moderator", "admin")
#: The server-side bot that posts system messages (joins, QA alerts).
BOT_USERNAME = "noctis-bot"
BOT_DISPLAY_NAME = "Noctis QA"
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class UserRecord:
    """One user of the team, as listed in the users file."""

    username: str
    token: str
    display_name: str
    role: str = "member"
    execute: bool = False

    @property
    def initials(self) -> str:
        """Up to two initials from the display name."""
        parts = [p for p in re.split(r"[\s._-]+", self.display_name) if p]
        return "".join(p[0].upper() for p in parts[:2]) or self.username[:1].upper()

    def to_dict(self) -> dict[str, str | bool]:
        """The public fields (never the token)."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "execute": self.execute,
        }

    def __repr__(self) -> str:  # never print a token
        return f"UserRecord(username={self.username!r}, role={self.role!r})"


def parse_users(data: Any, source: str = "users file") -> tuple[UserRecord, ...]:
    """Validate the parsed JSON of a users file.

    Parameters
    ----------
    data
        The decoded JSON document.
    source
        A name for the file, used in error messages.

    Returns
    -------
    tuple of UserRecord

    Raises
    ------
    IdentityError
        When the structure, a field, or uniqueness of usernames/tokens is wrong.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("users"), list):
        raise IdentityError(f"{source}: expected an object with a 'users' list")
    users: list[UserRecord] = []
    for i, entry in enumerate(data["users"]):
        where = f"{source}: users[{i}]"
        user = _parse_user(entry, where)
        if any(u.username == user.username for u in users):
            raise IdentityError(f"{where}: duplicate username {user.username!r}")
        if any(hmac.compare_digest(user.token, u.token) for u in users):
            raise IdentityError(f"{where} ({user.username}): token is shared with another user")
        users.append(user)
    if not users:
        raise IdentityError(f"{source}: the 'users' list is empty")
    return tuple(users)


_USER_FIELDS = frozenset({"username", "token", "display_name", "role", "execute"})


def _parse_user(entry: Any, where: str) -> UserRecord:
    """One entry of the ``users`` list, validated field by field (``where`` names it)."""
    if not isinstance(entry, Mapping):
        raise IdentityError(f"{where}: expected an object, got {type(entry).__name__}")
    unknown = set(entry) - _USER_FIELDS
    if unknown:
        raise IdentityError(f"{where}: unknown field(s) {sorted(unknown)}")
    username = _parse_username(entry.get("username"), where)
    where = f"{where} ({username})"
    token = entry.get("token")
    if not isinstance(token, str) or len(token) < _MIN_TOKEN_LENGTH:
        raise IdentityError(
            f"{where}: 'token' must be a string of at least {_MIN_TOKEN_LENGTH} characters"
        )
    display_name = entry.get("display_name", username)
    if not isinstance(display_name, str) or not display_name.strip():
        raise IdentityError(f"{where}: 'display_name' must be a non-empty string")
    role = entry.get("role", "member")
    if role not in ROLES:
        raise IdentityError(f"{where}: 'role' must be one of {ROLES}, got {role!r}")
    execute = entry.get("execute", False)
    if not isinstance(execute, bool):
        raise IdentityError(f"{where}: 'execute' must be true or false, got {execute!r}")
    return UserRecord(username, token, display_name.strip(), role, execute)


def _parse_username(username: Any, where: str) -> str:
    """A valid username that is not the bot's."""
    if not isinstance(username, str) or not _USERNAME_RE.match(username):
        raise IdentityError(
            f"{where}: 'username' must be 1-64 letters, digits, '.', '_' or '-', got {username!r}"
        )
    if username == BOT_USERNAME:
        raise IdentityError(f"{where}: username {BOT_USERNAME!r} is reserved for the bot")
    return username


def load_users(path: str | os.PathLike[str]) -> tuple[UserRecord, ...]:
    """Read and validate a users file (see :func:`parse_users`).

    The file holds every user's token: it must not be readable by other OS accounts
    (mode 0600 or stricter), else :class:`IdentityError`.
    """
    p = Path(path)
    if not p.is_file():
        raise IdentityError(f"users file {str(p)!r} does not exist")
    mode = p.stat().st_mode & 0o777
    if os.name == "posix" and mode & 0o077:
        raise IdentityError(
            f"users file {str(p)!r} is readable by other accounts (mode {mode:o}); "
            f"run: chmod 600 {p}"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IdentityError(f"users file {str(p)!r} is not valid JSON: {exc}") from exc
    return parse_users(data, source=f"users file {str(p)!r}")


def token_fingerprint(token: str) -> str:
    """A short hash of a token, kept in the login cookie: a rotated token ends the cookie."""
    return hashlib.sha256(b"noctis-cookie:" + token.encode()).hexdigest()[:24]


def find_user_by_token(users: Iterable[UserRecord], token: str) -> UserRecord | None:
    """The user whose token equals ``token`` (constant-time comparison for each user)."""
    found: UserRecord | None = None
    for u in users:
        if hmac.compare_digest(u.token.encode(), token.encode()) and found is None:
            found = u
    return found


class NoctisIdentityProvider(IdentityProvider):
    """Each user logs in with their own token from the users file.

    Configure with ``--ServerApp.identity_provider_class=noctis_rooms.NoctisIdentityProvider
    --NoctisIdentityProvider.users_file=FILE`` (or the ``NOCTIS_USERS`` environment variable).
    """

    users_file = Unicode(
        "",
        config=True,
        help="JSON users file: {'users': [{'username','token','display_name','role'}]}.",
    )

    @default("users_file")
    def _users_file_default(self) -> str:
        return os.environ.get("NOCTIS_USERS", "")

    @default("token")
    def _token_default(self) -> str:
        # No shared token: each user has their own. Keeping this empty stops the
        # server from accepting (or printing) a team-wide token.
        self.token_generated = False
        return ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.users_file:
            raise IdentityError(
                "NoctisIdentityProvider needs a users file: pass "
                "--NoctisIdentityProvider.users_file=FILE or set NOCTIS_USERS"
            )
        self._loaded: tuple[float, int] | None = None
        self._records: dict[str, UserRecord] = {}
        self._reload()

    def _reload(self) -> None:
        st = os.stat(self.users_file)
        self._records = {u.username: u for u in load_users(self.users_file)}
        self._loaded = (st.st_mtime, st.st_size)

    @property
    def _users(self) -> dict[str, UserRecord]:
        """The users, re-read when the file changed.

        A rotated or removed token takes effect at once; a broken edit keeps the last good
        list and is logged.
        """
        try:
            st = os.stat(self.users_file)
            if (st.st_mtime, st.st_size) != self._loaded:
                self._reload()
        except (OSError, IdentityError) as exc:
            self.log.error("users file not reloaded, keeping the previous users: %s", exc)
            with contextlib.suppress(OSError):
                st = os.stat(self.users_file)
                self._loaded = (st.st_mtime, st.st_size)
        return self._records

    # -- lookups -------------------------------------------------------------
    @property
    def users(self) -> dict[str, UserRecord]:
        """Username -> record."""
        return dict(self._users)

    def record(self, username: str) -> UserRecord | None:
        """The record of ``username`` or None."""
        return self._users.get(username)

    def _user(self, rec: UserRecord) -> User:
        return User(
            username=rec.username,
            name=rec.display_name,
            display_name=rec.display_name,
            initials=rec.initials,
            avatar_url=None,
            color=None,
        )

    # -- IdentityProvider API ----------------------------------------------
    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        token = self.get_token(handler)
        if not token:
            return None
        rec = find_user_by_token(self._users.values(), token)
        return None if rec is None else self._user(rec)

    def user_to_cookie(self, user: User) -> str:
        rec = self._users.get(user.username)
        fingerprint = token_fingerprint(rec.token) if rec is not None else ""
        return json.dumps({"username": user.username, "token_fp": fingerprint})

    def user_from_cookie(self, cookie_value: str) -> User | None:
        """The cookie's user, only while the token it was issued for is still theirs."""
        try:
            data = json.loads(cookie_value)
            username, fingerprint = data["username"], data["token_fp"]
        except (ValueError, KeyError, TypeError):
            return None
        rec = self._users.get(username) if isinstance(username, str) else None
        if rec is None or not isinstance(fingerprint, str):
            return None
        if not hmac.compare_digest(fingerprint, token_fingerprint(rec.token)):
            return None
        return self._user(rec)

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        typed = handler.get_argument("password", default="")
        rec = find_user_by_token(self._users.values(), typed) if typed else None
        return None if rec is None else self._user(rec)

    def identity_model(self, user: User) -> dict[str, Any]:
        model = super().identity_model(user)
        rec = self._users.get(user.username)
        model["noctis_role"] = rec.role if rec is not None else None
        model["noctis_execute"] = bool(rec is not None and rec.execute)
        return model
