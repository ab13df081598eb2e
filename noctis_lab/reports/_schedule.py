"""Report schedules: crontab lines or systemd user timers that run ``noctis-lab report``.

papermill has no scheduler of its own, so reports run from cron or a systemd timer.
Each run writes ``OUT/<kind>/<YYYY-MM-DD>/`` (see :func:`~noctis_lab.reports.run_report`),
so a schedule is idempotent: a second run on the same day replaces that day's files.
Installed entries carry a marker (``# noctis-lab:report:<kind>``, unit names
``noctis-report-<kind>``) so installing again replaces them instead of adding twins.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from noctis_lab import _paths
from noctis_lab._errors import ReportError

__all__ = [
    "Schedule",
    "cron_lines",
    "install_cron",
    "install_systemd",
    "make_schedules",
    "merge_crontab",
    "systemd_units",
]

Format = Literal["cron", "systemd"]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MARK = "# noctis-lab:report:"


@dataclass(frozen=True)
class Schedule:
    """When and how one report runs.

    Attributes
    ----------
    kind : {"hu", "ai"}
    out_dir : str
        Base output folder (absolute).
    at : str
        Local time ``HH:MM``.
    day : str or None
        ``None`` for every day, else a weekday (``mon`` ... ``sun``) for weekly runs.
    home : str
        ``NOCTIS_HOME`` of the runs (absolute).
    post_to : str or None
        A ``.chat`` room for the one-line summary.
    pdf : bool
        Also print a PDF.
    """

    kind: str
    out_dir: str
    at: str = "06:30"
    day: str | None = None
    home: str = ""
    post_to: str | None = None
    pdf: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("hu", "ai"):
            raise ReportError(f"unknown report {self.kind!r}; choose 'hu' or 'ai'")
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", self.at):
            raise ReportError(f"--at {self.at!r} is not a time of day (expected HH:MM)")
        if self.day is not None and self.day.lower()[:3] not in _DAYS:
            raise ReportError(f"--day {self.day!r} is not a weekday (mon ... sun)")

    @property
    def hour_minute(self) -> tuple[int, int]:
        """``(hour, minute)`` of :attr:`at`."""
        h, m = self.at.split(":")
        return int(h), int(m)

    def command(self) -> list[str]:
        """The ``noctis-lab report`` command line of one run."""
        exe = Path(sys.executable).parent / "noctis-lab"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "noctis_lab.cli"]
        cmd = [*base, "report", self.kind, "--out", self.out_dir, "--quiet"]
        if not self.pdf:
            cmd.append("--no-pdf")
        if self.post_to:
            cmd += ["--post-to", self.post_to]
        return cmd

    @property
    def unit(self) -> str:
        """The systemd unit name (without suffix)."""
        return f"noctis-report-{self.kind}"


def make_schedules(
    kinds: list[str],
    out_dir: str | Path,
    *,
    at: str = "06:30",
    day: str | None = None,
    home: str | Path | None = None,
    post_to: str | None = None,
    pdf: bool = True,
) -> list[Schedule]:
    """One :class:`Schedule` per report kind, with absolute paths.

    Parameters
    ----------
    kinds : list of str
        The reports (``hu``, ``ai``).
    out_dir : str or Path
        Where the reports are written.
    at : str
        The time of day, ``HH:MM``.
    day : str, optional
        A weekday (weekly); default: every day.
    home : str or Path, optional
        The project home the reports read (default: this one).
    post_to : str, optional
        A ``.chat`` room for the one-line summary.
    pdf : bool
        Also print each report as PDF.
    """
    h = str(Path(home).resolve()) if home is not None else str(_paths.home())
    out = str(Path(out_dir).resolve())
    return [
        Schedule(kind=k, out_dir=out, at=at, day=day, home=h, post_to=post_to, pdf=pdf)
        for k in kinds
    ]


def cron_lines(schedules: list[Schedule]) -> list[str]:
    """One crontab line per schedule (each ends with its marker comment)."""
    lines = []
    for s in schedules:
        h, m = s.hour_minute
        dow = "*" if s.day is None else str(_DAYS.index(s.day.lower()[:3]) + 1)
        log = Path(s.out_dir) / s.kind / "cron.log"
        env = f"NOCTIS_HOME={shlex.quote(s.home)} MLFLOW_DISABLE_TELEMETRY=true MPLBACKEND=Agg"
        cmd = shlex.join(s.command())
        lines.append(
            f"{m} {h} * * {dow} mkdir -p {shlex.quote(str(log.parent))} && "
            f"cd {shlex.quote(s.home)} && {env} {cmd} >> {shlex.quote(str(log))} 2>&1 "
            f"{_MARK}{s.kind}"
        )
    return lines


def merge_crontab(existing: str, lines: list[str]) -> str:
    """``existing`` crontab text with our earlier entries for the same kinds replaced."""
    kinds = {line.rsplit(_MARK, 1)[1].strip() for line in lines if _MARK in line}
    kept = [
        line
        for line in existing.splitlines()
        if not (_MARK in line and line.rsplit(_MARK, 1)[1].strip() in kinds)
    ]
    return "\n".join([*kept, *lines]) + "\n"


def systemd_units(schedules: list[Schedule]) -> dict[str, str]:
    """``{file name: text}`` of a oneshot service and its timer per schedule."""
    units: dict[str, str] = {}
    for s in schedules:
        h, m = s.hour_minute
        day = "" if s.day is None else s.day.capitalize()[:3] + " "
        units[f"{s.unit}.service"] = (
            "[Unit]\n"
            f"Description=Noctis Lab {s.kind.upper()} report\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"WorkingDirectory={s.home}\n"
            f"Environment=NOCTIS_HOME={s.home}\n"
            "Environment=MLFLOW_DISABLE_TELEMETRY=true\n"
            "Environment=MPLBACKEND=Agg\n"
            f"ExecStart={shlex.join(s.command())}\n"
        )
        units[f"{s.unit}.timer"] = (
            "[Unit]\n"
            f"Description=Run the Noctis Lab {s.kind.upper()} report at {s.at}\n\n"
            "[Timer]\n"
            f"OnCalendar={day}*-*-* {h:02d}:{m:02d}:00\n"
            "Persistent=true\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )
    return units


def install_cron(lines: list[str], *, crontab: str = "crontab") -> str:
    """Merge ``lines`` into the user's crontab (replacing our earlier ones); returns it."""
    exe = shutil.which(crontab)
    if exe is None:
        raise ReportError(
            f"cannot install: no {crontab!r} command on this machine "
            "(install cron, or use --format systemd)"
        )
    current = subprocess.run([exe, "-l"], capture_output=True, text=True, check=False)
    existing = current.stdout if current.returncode == 0 else ""
    merged = merge_crontab(existing, lines)
    done = subprocess.run([exe, "-"], input=merged, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ReportError(f"crontab refused the new table: {done.stderr.strip()}")
    return merged


def install_systemd(
    units: dict[str, str], unit_dir: str | Path | None = None, *, enable: bool = True
) -> list[Path]:
    """Write the units (default ``~/.config/systemd/user``) and enable the timers."""
    folder = (
        Path(unit_dir) if unit_dir is not None else Path.home() / ".config" / "systemd" / "user"
    )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if enable:
        systemctl = shutil.which("systemctl")
        if systemctl is None:
            raise ReportError(f"wrote {len(written)} units to {folder}, but systemctl is missing")
        steps = [[systemctl, "--user", "daemon-reload"]] + [
            [systemctl, "--user", "enable", "--now", name]
            for name in units
            if name.endswith(".timer")
        ]
        for step in steps:
            r = subprocess.run(step, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise ReportError(
                    f"wrote the units to {folder}, but `{shlex.join(step)}` failed: "
                    f"{(r.stderr or r.stdout).strip()}"
                )
    return written
