"""The command line's contract: exit 2 with one line (no traceback) when a command could
not run, exit 0 when it ran; the same flag names for the same things."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _cli_tools import EXE, Run

from noctis_lab.cli import build_parser

_NO_PG = "postgresql+psycopg://nobody@127.0.0.1:1/x"


def _owned(case: list[str], owner: str, why: str) -> object:
    """A case another team fixes: strict xfail, so the fix shows up as a failure to update."""
    return pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=f"{owner}: {why}"))


#: One bad input for every subcommand (argument errors, missing files, unknown names,
#: unreachable servers).
BAD = [
    ["demo", "--out", "/proc/nope/demo", "--no-ai", "--quiet"],
    ["doctor", "--bogus"],
    ["hu", "analyze", "/nonexistent/series"],
    ["hu", "phantoms", "--bogus"],
    ["hu", "profiles", "--bogus"],
    ["hu", "history", "NO-SUCH-SCANNER"],
    ["hu", "history", "--db-url", _NO_PG],
    ["hu", "history", "--db-url", "nonsense://x"],
    ["hu", "trend", "NO-SUCH-SCANNER"],
    ["hu", "batch", "/nonexistent/archive"],
    ["ai", "register", "/nonexistent/model.pt", "m"],
    ["ai", "evaluate", "no-such-model", "/nonexistent/manifest.csv"],
    ["ai", "check", "/nonexistent/model.pt"],
    ["ai", "status", "no-such-model"],
    ["report", "hu", "--since", "yesterday", "--no-pdf", "--quiet"],
    ["schedule", "hu", "--at", "25:99"],
    ["dashboards", "--notebooks", "/nonexistent/dashboards"],
    ["lab", "--root", "/nonexistent/root"],
    ["alerts", "check", "--config", "/nonexistent/alerts.json"],
    ["services", "up", "--dir", "/proc/nope/services"],
    ["services", "down", "--dir", "/nonexistent/services"],
    ["services", "env", "--dir", "/nonexistent/services"],
    ["mlflow", "--tracking-uri", "sqlite:////nonexistent/mlflow.db"],
    ["mlflow"],  # an empty home has no MLflow store yet
]


def _id(case: object) -> str:
    argv = case.values[0] if hasattr(case, "values") else case
    return " ".join(str(a) for a in argv)[:60]


@pytest.mark.parametrize("argv", BAD, ids=[_id(c) for c in BAD])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], tmp_path: Path, run_cli: Run) -> None:
    home = tmp_path / "home"
    out = run_cli(*argv, cwd=tmp_path, env={"NOCTIS_HOME": str(home)})
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert re.match(r"noctis-lab( [\w-]+)*: error: \S", lines[0]), lines[0]


#: ``report``'s bad inputs, each refused before a kernel starts: (arguments, what the line
#: must say, whether the home holds a recorded calibration).
REPORT_BAD = [
    (["hu", "--date", "bogus"], "--date: 'bogus' is not a date", False),
    (["hu"], "No calibrations are recorded yet", False),
    (["ai"], "No AI models are registered yet", False),
    (["ai", "--tracking-uri", "nonsense://x"], "cannot read the MLflow store nonsense://x", False),
    (["hu", "--scanner", "NO-SUCH-SCANNER"], "no scanner 'NO-SUCH-SCANNER'", True),
    (["hu", "--calibration", "abc"], "--calibration 'abc' is not a record id", True),
    (["hu", "--calibration", "999"], "no calibration #999", True),
    (["hu", "--since", "2099-01-01"], "no calibration of any scanner in the period", True),
    (["hu", "--out", "/proc/nope/reports"], "--out /proc/nope/reports: cannot write", True),
    (["hu", "--db-url", "nonsense://x"], "calibration history at nonsense://x", True),
    (["hu", "--db-url", _NO_PG], "127.0.0.1:1", True),
    (["hu", "--post-to", "qa.txt"], "--post-to 'qa.txt': a chat room is a .chat file", True),
]


@pytest.mark.parametrize(
    ("argv", "says", "recorded"), REPORT_BAD, ids=[" ".join(c[0]) for c in REPORT_BAD]
)
def test_report_refuses_bad_input_before_running(
    argv: list[str], says: str, recorded: bool, tmp_path: Path, run_cli: Run, request: Any
) -> None:
    home = request.getfixturevalue("recorded_home") if recorded else tmp_path / "home"
    out_dir = tmp_path / "reports"
    extra = [] if "--out" in argv else ["--out", str(out_dir)]
    out = run_cli(
        "report",
        *argv,
        *extra,
        "--no-pdf",
        "--quiet",
        cwd=tmp_path,
        env={"NOCTIS_HOME": str(home)},
        timeout=120,
    )
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert re.match(r"noctis-lab report (hu|ai): error: \S", lines[0]), lines[0]
    assert says in lines[0], lines[0]
    assert not out_dir.exists(), "a refused report left a folder behind"


def test_commands_that_ran_exit_0(tmp_path: Path, run_cli: Run) -> None:
    env = {"NOCTIS_HOME": str(tmp_path / "home")}
    for argv in (["hu", "history"], ["doctor", "--quick"], ["hu", "phantoms"]):
        out = run_cli(*argv, cwd=tmp_path, env=env)
        assert out.returncode == 0, (argv, out.stderr)


def _options(argv: list[str]) -> set[str]:
    """The option strings of a (sub)command, as its parser knows them."""
    parser = build_parser()
    for word in argv:
        actions = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
        sub = next((a.choices[word] for a in actions if word in a.choices), None)
        if sub is not None:
            parser = sub
    return {o for a in parser._actions for o in a.option_strings if a.help != "==SUPPRESS=="}


#: Where a history/analyses database or an MLflow store is chosen.
DB_COMMANDS = [
    ["hu", "history"],
    ["hu", "trend"],
    ["hu", "batch"],
    ["report", "hu"],
    ["alerts", "check"],
    ["ai", "status"],
]


@pytest.mark.parametrize("argv", DB_COMMANDS, ids=[" ".join(a) for a in DB_COMMANDS])
def test_the_database_flag_is_db_url_everywhere(argv: list[str]) -> None:
    opts = _options(argv)
    assert "--db-url" in opts and "--db" not in opts, sorted(opts)


def test_old_spellings_still_work(tmp_path: Path, run_cli: Run) -> None:
    db = tmp_path / "h.db"
    out = run_cli("hu", "history", "--db", f"sqlite:///{db}", "--json", cwd=tmp_path)
    assert out.returncode == 0 and str(db) in out.stdout, out.stderr
    gone = run_cli("hu", "history", "--scanner", "X", "--db", f"sqlite:///{db}", cwd=tmp_path)
    assert gone.returncode == 2 and "no scanner 'X'" in gone.stderr


def test_scanner_is_positional_in_history_and_trend() -> None:
    for argv in (["hu", "history"], ["hu", "trend"]):
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a.choices, dict))
        hu = sub.choices["hu"]
        cmd = next(a for a in hu._actions if isinstance(a.choices, dict)).choices[argv[1]]
        positional = [a.dest for a in cmd._actions if not a.option_strings]
        assert positional == ["scanner"], (argv, positional)


def test_help_lists_mlflow() -> None:
    out = subprocess.run([str(EXE), "--help"], capture_output=True, text=True, check=True)
    assert "mlflow" in out.stdout
