"""The one reader of DICOM dates and times (DA, TM and DT values, PS3.5 table 6.2-1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["iso_datetime", "parse_datetime"]

#: A DT value, ``YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]``.
_DT = re.compile(
    r"^(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<H>\d{2})?(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:\.(?P<f>\d{1,6}))?(?P<tz>[+-]\d{4})?$"
)


@dataclass(frozen=True)
class _Parts:
    """A DT value read: the datetime, whether it had a time, and its fraction as written."""

    when: datetime
    has_time: bool
    fraction: str


def _read_dt(text: str) -> _Parts | None:
    """A DT value as its parts, or None when it is not one (or names no real date)."""
    m = _DT.match(text.strip())
    if m is None:
        return None
    g = m.groupdict()
    tz = None
    if g["tz"]:
        sign = 1 if g["tz"][0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][3:5])))
    try:
        when = datetime(
            int(g["y"]),
            int(g["m"] or 1),
            int(g["d"] or 1),
            int(g["H"] or 0),
            int(g["M"] or 0),
            int(g["S"] or 0),
            int((g["f"] or "0").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None
    return _Parts(when, g["H"] is not None, g["f"] or "")


def _tm_as_dt(time: str) -> str:
    """A TM value (``HHMMSS.FFFFFF``, or ACR-NEMA's ``HH:MM:SS``) as the time part of a DT."""
    whole, _, frac = time.strip().replace(":", "").partition(".")
    if len(whole) < 2 or not whole.isdigit():
        return ""
    return whole.ljust(6, "0")[:6] + (f".{frac[:6]}" if frac.isdigit() else "")


def parse_datetime(value: str, time: str | None = None) -> datetime | None:
    """A DICOM DT value, or a DA value with its TM value, as a :class:`~datetime.datetime`.

    Parameters
    ----------
    value : str
        A DT value (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``, any trailing part left out), or, with
        ``time``, a DA value (``YYYYMMDD``; ACR-NEMA's ``YYYY.MM.DD`` too).
    time : str, optional
        The TM value that goes with the DA value ``value``; empty or unreadable: midnight.

    Returns
    -------
    datetime or None
        Aware when the value carries a UTC offset, naive otherwise; None when the text
        is not a DICOM date/time or names no real date.
    """
    parts = _read(value, time)
    return None if parts is None else parts.when


def _read(value: str, time: str | None) -> _Parts | None:
    """A DT value, or a DA value with a TM value (the date alone when the TM is unusable)."""
    if time is None:
        return _read_dt(value)
    date = "".join(ch for ch in value if ch.isdigit())
    if len(date) != 8:
        return None
    return _read_dt(date + _tm_as_dt(time)) or _read_dt(date)


def iso_datetime(date: str, time: str = "") -> str:
    """A DA and a TM value as ISO 8601 text: ``YYYY-MM-DDTHH:MM:SS[.F]``, or the date alone.

    Parameters
    ----------
    date : str
        The DA value.
    time : str, optional
        The TM value; without a readable one the result is the date alone.

    Returns
    -------
    str
        The fraction of a second as written in the TM value; empty when ``date`` is not
        a real date.
    """
    parts = _read(date, time)
    if parts is None:
        return ""
    if not parts.has_time:
        return parts.when.date().isoformat()
    text = parts.when.replace(microsecond=0).isoformat()
    return f"{text}.{parts.fraction}" if parts.fraction else text
