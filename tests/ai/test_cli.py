"""``noctis-lab ai ...`` through ``noctis_lab.cli.main`` and one real subprocess."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from noctis_lab.cli import main

VENV_CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "noctis-lab"


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_cli_register_check_evaluate_status(
    tracking: str,
    db: str,
    model_files: dict[str, Path],
    test_sets: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = ["--tracking-uri", tracking]
    assert (
        main(["ai", "register", str(model_files["classification"]), "cli-cls", "--json", *uri]) == 0
    )
    reg = json.loads(capsys.readouterr().out)
    assert reg["version"] == "1" and reg["aliases"] == ["champion"]
    assert main(["ai", "check", "cli-cls", "--json", *uri]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["status"] == "excellent" and rep["issues"] == []
    assert [c["state"] for c in rep["checks"]] == ["pass"] * 5
    assert (
        main(
            [
                "ai",
                "evaluate",
                "cli-cls",
                str(test_sets["classification"]),
                "--n-boot",
                "100",
                "--json",
                *uri,
            ]
        )
        == 0
    )
    ev = json.loads(capsys.readouterr().out)
    assert ev["run_id"] and "auroc" in ev["metrics"]["values"]
    code = main(["ai", "status", "cli-cls", "--json", "--db-url", db, *uri])
    st = json.loads(capsys.readouterr().out)
    assert code == (1 if st["status"] == "error" else 0)  # exit 1 flags an error status
    assert st["headline"]["name"] == "auroc" and st["sources"]["file"] == "excellent"
    assert main(["ai", "status", "--db-url", db, *uri]) in (0, 1)
    assert "cli-cls v1:" in capsys.readouterr().out


def test_cli_check_hostile_file_in_a_real_process(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    env = {**os.environ, "NOCTIS_HOME": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [str(VENV_CLI), "ai", "check", str(evil), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["status"] == "error"
    assert any(i["code"] == "unsafe_or_corrupt" for i in rep["issues"])
    assert not marker.exists()


def test_cli_errors_are_one_line(
    tmp_path: Path, tracking: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ai", "check", "no-such-model", "--json", "--tracking-uri", tracking]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["status"] == "error" and "no-such-model" in rep["target"]
    (tmp_path / "m.csv").write_text("case_id,image,label\na,missing.npy,1\n")
    code = main(["ai", "evaluate", "cli-cls", str(tmp_path / "m.csv"), "--tracking-uri", tracking])
    err = capsys.readouterr().err
    assert code == 2 and "row 1 (case a)" in err and "Traceback" not in err
