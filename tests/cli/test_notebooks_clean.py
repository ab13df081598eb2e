"""Running the notebooks in the lab never modifies tracked files or litters the checkout."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket
from _cli_jupyter import api, free_port, start_lab, stop
from _cli_tools import EXE

_GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=m"]


def _checkout(tmp_path: Path, repo_root: Path) -> Path:
    """A git checkout holding a copy of the project's notebooks, noctis.toml and .gitignore."""
    repo = tmp_path / "checkout"
    shutil.copytree(repo_root / "notebooks", repo / "notebooks")
    for name in ("noctis.toml", ".gitignore"):
        shutil.copy(repo_root / name, repo / name)
    subprocess.run([*_GIT, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*_GIT, "add", "."], cwd=repo, check=True)
    subprocess.run([*_GIT, "commit", "-q", "-m", "seed"], cwd=repo, check=True)
    return repo


def _as_if_run(nb: dict[str, Any]) -> dict[str, Any]:
    """What a Run All leaves in a notebook: outputs, counts, kernel and widget metadata."""
    ran = copy.deepcopy(nb)
    n = 0
    for cell in ran["cells"]:
        if cell["cell_type"] != "code":
            continue
        n += 1
        cell["execution_count"] = n
        cell["metadata"]["execution"] = {"iopub.status.idle": "2026-12-01T00:00:00Z"}
        cell["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": "ran\n"},
            {
                "output_type": "display_data",
                "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
                "metadata": {},
            },
            {
                "output_type": "execute_result",
                "execution_count": n,
                "data": {"text/plain": "42"},
                "metadata": {},
            },
        ]
    ran["metadata"]["language_info"] = {
        "name": "python",
        "version": "3.11.7",
        "mimetype": "text/x-python",
        "file_extension": ".py",
    }
    ran["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return ran


def _open_collaboratively(base: str, token: str, rel: str) -> None:
    """Join the notebook's collaboration room, as opening it in JupyterLab does."""
    session = api(
        base,
        token,
        f"/api/collaboration/session/{rel}",
        "PUT",
        {"format": "json", "type": "notebook"},
    )
    room = f"{session['format']}:{session['type']}:{session['fileId']}"
    ws = websocket.create_connection(
        f"{base.replace('http://', 'ws://')}/api/collaboration/room/{room}"
        f"?sessionId={session['sessionId']}",
        header=[f"Authorization: token {token}"],
        timeout=60,
    )
    try:
        ws.recv()  # the server's first sync message: the room is open
    finally:
        ws.close()


def _porcelain(repo: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.server
@pytest.mark.slow
def test_saving_run_notebooks_leaves_the_checkout_clean(
    tmp_path: Path, repo_root: Path, clean_env: dict[str, str]
) -> None:
    repo = _checkout(tmp_path, repo_root)
    port = free_port()
    proc, base, token = start_lab(
        [str(EXE), "lab", "--port", str(port), "--no-browser"], cwd=repo, env=clean_env
    )
    try:
        # `make lab` / `noctis-lab lab` opens notebooks/, not the checkout's root.
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=30) as resp:
            assert resp.geturl().split("?")[0].endswith("/lab/tree/notebooks")
        tracked = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.ipynb"))
        assert len(tracked) >= 6
        for rel in tracked:
            nb = api(base, token, f"/api/contents/{rel}")["content"]
            _open_collaboratively(base, token, rel)
            ran = {"type": "notebook", "content": _as_if_run(nb)}
            api(base, token, f"/api/contents/{rel}", "PUT", ran)
        # Saved under a new name (File > Save As), a run keeps its outputs.
        nb = api(base, token, f"/api/contents/{tracked[0]}")["content"]
        api(
            base,
            token,
            "/api/contents/notebooks/my_run.ipynb",
            "PUT",
            {"type": "notebook", "content": _as_if_run(nb)},
        )
    finally:
        stop(proc)  # the rooms write their last saves on the way out: judge what is left
    mine = json.loads((repo / "notebooks" / "my_run.ipynb").read_text())
    assert any(c.get("outputs") for c in mine["cells"]), "an untracked notebook lost its outputs"
    assert _porcelain(repo) == "?? notebooks/my_run.ipynb", "the run modified tracked files"
    assert not list(repo.rglob(".jupyter")), "a .jupyter folder appeared in the checkout"
