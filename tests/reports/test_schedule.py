"""Schedules: crontab lines, systemd timers, idempotent install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from noctis_lab._errors import ReportError
from noctis_lab.reports import (
    cron_lines,
    install_systemd,
    make_schedules,
    merge_crontab,
    systemd_units,
)


def test_cron_lines_and_merge(tmp_path: Path) -> None:
    scheds = make_schedules(["hu", "ai"], tmp_path / "out", at="06:05", home=tmp_path)
    lines = cron_lines(scheds)
    assert len(lines) == 2
    assert lines[0].startswith("5 6 * * * ")
    assert f"report hu --out {tmp_path / 'out'}" in lines[0]
    assert f"NOCTIS_HOME={tmp_path}" in lines[0] and lines[0].endswith("# noctis-lab:report:hu")
    existing = "0 1 * * * backup.sh\n" + lines[0].replace("5 6", "0 7") + "\n"
    merged = merge_crontab(existing, lines)
    assert merged.count("# noctis-lab:report:hu") == 1 and "0 7 * * *" not in merged
    assert "backup.sh" in merged and merged == merge_crontab(merged, lines)  # idempotent
    weekly = cron_lines(make_schedules(["ai"], tmp_path, day="sun", at="23:59"))
    assert weekly[0].startswith("59 23 * * 7 ")


def test_systemd_units_install(tmp_path: Path) -> None:
    scheds = make_schedules(["hu"], tmp_path / "out", day="Mon", post_to="qa.chat")
    units = systemd_units(scheds)
    assert set(units) == {"noctis-report-hu.service", "noctis-report-hu.timer"}
    assert "OnCalendar=Mon *-*-* 06:30:00" in units["noctis-report-hu.timer"]
    assert "--post-to qa.chat" in units["noctis-report-hu.service"]
    written = install_systemd(units, tmp_path / "units", enable=False)
    assert sorted(p.name for p in written) == sorted(units)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"at": "25:00"}, "not a time of day"), ({"day": "someday"}, "not a weekday")],
)
def test_bad_schedule(tmp_path: Path, kw: dict[str, str], match: str) -> None:
    with pytest.raises(ReportError, match=match):
        make_schedules(["hu"], tmp_path, **kw)


def test_schedule_cli(tmp_path: Path) -> None:
    env = dict(os.environ, NOCTIS_HOME=str(tmp_path))
    cmd = [sys.executable, "-m", "noctis_lab.cli", "schedule"]
    r = subprocess.run(
        [
            *cmd,
            "--format",
            "systemd",
            "--install",
            "--unit-dir",
            str(tmp_path / "u"),
            "--no-enable",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "[Timer]" in r.stdout and len(list((tmp_path / "u").iterdir())) == 4
    bad = subprocess.run([*cmd, "--at", "7pm"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "not a time of day" in bad.stderr
