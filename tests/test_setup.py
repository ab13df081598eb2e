"""The project's setup: pins agree, the CLI answers, the package imports lazily."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.strip().lstrip("-").strip()
        if not line or line.startswith("#") or "==" not in line:
            continue
        name, version = line.split("==", 1)
        name = re.sub(r"\[.*\]", "", name)  # extras: psycopg[binary] -> psycopg
        out[re.sub(r"[-_.]+", "-", name.lower())] = version
    return out


def test_environment_yml_matches_requirements() -> None:
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env_text = (ROOT / "environment.yml").read_text()
    pip_section = env_text.split("- pip:", 1)[1].splitlines()
    env = _pins(pip_section)
    assert req, "requirements.txt has no pins"
    assert env == req, f"environment.yml drifted: {set(env.items()) ^ set(req.items())}"
    assert "- -e ." in env_text


def test_requirements_agree_with_lock() -> None:
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    wrong = {n: (v, lock.get(n)) for n, v in req.items() if lock.get(n) != v}
    assert not wrong, f"requirements.txt and requirements.lock disagree: {wrong}"


def test_installed_versions_match_pins() -> None:
    from importlib.metadata import PackageNotFoundError, version

    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    wrong = {}
    for name, pinned in req.items():
        try:
            got = version(name).split("+")[0]
        except PackageNotFoundError:
            got = None
        if got != pinned:
            wrong[name] = (pinned, got)
    assert not wrong, f"installed versions differ from the pins: {wrong}"


def test_import_is_lazy() -> None:
    code = (
        "import sys, noctis_lab, noctis_lab.dicom, noctis_lab.hu;"
        "heavy = [m for m in ('torch', 'mlflow', 'matplotlib', 'sklearn', 'monai') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import noctis_lab pulled in heavy modules: {out.stdout}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo"],
        ["doctor"],
        ["hu"],
        ["hu", "analyze"],
        ["ai"],
        ["report"],
        ["schedule"],
        ["dashboards"],
        ["lab"],
        ["services"],
        ["services", "up"],
        ["mlflow"],
        ["alerts"],
        ["alerts", "check"],
    ],
)
def test_every_subcommand_has_help(argv: list[str]) -> None:
    exe = Path(sys.executable).with_name("noctis-lab")
    out = subprocess.run([str(exe), *argv, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: noctis-lab" in out.stdout
