"""Who may do what in a room: one pure function of the room, the membership and the site role."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ._identity import ROLES
from ._store import Member, Room

__all__ = ["Access", "access_for"]


def _rank(role: str | None) -> int:
    return -1 if role is None else ROLES.index(role)


@dataclass(frozen=True)
class Access:
    """The rights of one user in one room.

    Attributes
    ----------
    read
        May open the room (REST GET of the file, collaboration websocket).
    write
        May post, edit own messages and react.
    moderate
        May delete others' messages, mute and remove members, read the moderation log.
    administer
        May change the room's settings and roles, invite moderators/admins.
    role
        The effective role in the room (site role raised by the room role), or None.
    member
        True when the user is an active member.
    """

    read: bool
    write: bool
    moderate: bool
    administer: bool
    role: str | None
    member: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def access_for(room: Room, member: Member | None, site_role: str | None) -> Access:
    """Compute a user's rights in ``room``.

    Rules: private rooms are read by active members only; public and read-only rooms by
    everyone except removed members. Writing needs an active, unmuted membership; in a
    read-only room it also needs the moderator or admin role. The effective role is the
    higher of the site role (users file) and the room role.
    """
    active = member is not None and member.state == "active"
    removed = member is not None and member.state == "removed"
    room_role = member.role if active and member is not None else None
    role_rank = max(_rank(room_role), _rank(site_role) if room.visibility != "private" else -1)
    role = ROLES[role_rank] if role_rank >= 0 else None
    read = active if room.visibility == "private" else not removed
    muted = bool(member is not None and member.muted)
    moderate = (
        read and role_rank >= ROLES.index("moderator") and (active or room.visibility != "private")
    )
    administer = read and role_rank >= ROLES.index("admin")
    write = active and not muted and (room.visibility != "read-only" or moderate)
    return Access(
        read=read,
        write=write,
        moderate=moderate,
        administer=administer,
        role=role,
        member=active,
    )
