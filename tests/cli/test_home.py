"""One home: every entry point finds the data the same way, and finding it creates nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_jupyter import free_port, run_in_kernel, start_lab, stop
from _cli_tools import EXE, Run, tree


def _project(tmp_path: Path, body: str = 'home = "store"\n') -> Path:
    """A folder with a noctis.toml, and a working folder two levels below it."""
    proj = tmp_path / "proj"
    (proj / "a" / "b").mkdir(parents=True)
    (proj / "noctis.toml").write_text(body)
    return proj


def test_doctor_from_an_empty_folder_creates_nothing(tmp_path: Path, run_cli: Run) -> None:
    work = tmp_path / "somewhere"
    work.mkdir()
    before = tree(tmp_path)
    out = run_cli("doctor", cwd=work)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    user_home = tmp_path / "xdg" / "noctis-lab"
    home_line = next(line for line in out.stdout.splitlines() if " home " in line)
    assert str(user_home) in home_line and "per-user" in home_line and "not created" in home_line
    assert f"sqlite:///{user_home}/data/noctis.db (not created yet" in out.stdout
    assert f"sqlite:///{user_home}/mlflow/mlflow.db (not created yet" in out.stdout
    created = {k: v for k, v in tree(tmp_path).items() if k not in before}
    # jupyter's own per-user runtime folder may appear under xdg/jupyter; nothing of ours.
    ours = [k for k in created if not k.startswith("xdg/jupyter")]
    assert ours == [], f"doctor created {ours}"


def test_doctor_reads_existing_stores_without_touching_them(tmp_path: Path, run_cli: Run) -> None:
    proj = _project(tmp_path)
    made = run_cli("hu", "history", "--json", cwd=proj / "a")  # creates the history on use
    assert made.returncode == 0, made.stderr
    db = proj / "store" / "data" / "noctis.db"
    assert json.loads(made.stdout)["db"] == f"sqlite:///{db}"
    before = tree(proj)
    out = run_cli("doctor", "--quick", "--json", cwd=proj / "a" / "b")
    findings = {f["check"]: f for f in json.loads(out.stdout)}
    assert findings["home"]["detail"].startswith(f"{proj / 'store'} (from {proj / 'noctis.toml'})")
    assert findings["calibration store"]["ok"]
    assert "tables)" in findings["calibration store"]["detail"]
    assert "not created yet" in findings["MLflow store"]["detail"]
    assert tree(proj) == before, "doctor changed the stores"


def test_config_is_found_upward_by_every_command(tmp_path: Path, run_cli: Run) -> None:
    proj = _project(tmp_path)
    deep = proj / "a" / "b"
    store = proj / "store"
    hist = run_cli("hu", "history", "--json", cwd=deep)
    assert json.loads(hist.stdout)["db"] == f"sqlite:///{store}/data/noctis.db", hist.stderr
    cron = run_cli("schedule", "hu", cwd=deep)  # what cron will run, from any folder
    assert cron.returncode == 0, cron.stderr
    assert f"NOCTIS_HOME={store} " in cron.stdout
    demo_help = run_cli("demo", "--help", cwd=deep)
    assert str(store / "data" / "demo") in demo_help.stdout.replace("\n", " ").replace(" ", "")
    assert list(deep.iterdir()) == [], "a command wrote into the working folder"


def test_noctis_home_wins_and_settings_come_from_config(tmp_path: Path, run_cli: Run) -> None:
    proj = _project(tmp_path, 'db_url = "sqlite:////nonexistent-dir/x.db"\n')
    out = run_cli("hu", "history", "--json", cwd=proj, env={"NOCTIS_HOME": str(tmp_path / "e")})
    assert json.loads(out.stdout)["db"] == f"sqlite:///{tmp_path / 'e'}/data/noctis.db"
    cfg = run_cli("doctor", "--quick", "--json", cwd=proj / "a")
    detail = {f["check"]: f["detail"] for f in json.loads(cfg.stdout)}
    assert detail["calibration store"].startswith("sqlite:////nonexistent-dir/x.db")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("home = [1\n", "cannot read the home config"),
        ("hme = 'x'\n", "unknown setting(s) hme"),
        ("home = 3\n", "home must be a non-empty string"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, run_cli: Run, body: str, reason: str
) -> None:
    proj = _project(tmp_path, body)
    for args in (["doctor", "--quick"], ["hu", "history"]):
        out = run_cli(*args, cwd=proj / "a")
        assert out.returncode == 2, out
        assert out.stderr.count("\n") == 1 and reason in out.stderr, out.stderr
        assert str(proj / "noctis.toml") in out.stderr


@pytest.mark.server
@pytest.mark.slow
def test_lab_kernels_use_the_home_of_the_lab(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """A kernel finds the lab's home even when its notebook sits under another noctis.toml."""
    proj = _project(tmp_path)
    other = tmp_path / "other"
    (other / "nb").mkdir(parents=True)
    (other / "noctis.toml").write_text("")  # would make `other` the home if searched from there
    cmd = [str(EXE), "lab", "--root", str(other), "--port", str(free_port()), "--no-browser"]
    proc, base, token = start_lab(cmd, cwd=proj / "a", env=clean_env)
    try:
        code = "from noctis_lab import _paths; print(_paths.home()); print(_paths.db_url())"
        got = run_in_kernel(base, token, "nb/check.ipynb", code).split()
        assert got == [str(proj / "store"), f"sqlite:///{proj / 'store'}/data/noctis.db"]
    finally:
        stop(proc)
