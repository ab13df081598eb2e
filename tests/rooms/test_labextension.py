"""The committed prebuilt Room panel: present, small, wired for wheels and editable installs."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import noctis_rooms
from rooms_client import LABEXTENSION


def test_prebuilt_labextension_is_complete_and_small() -> None:
    meta = json.loads((LABEXTENSION / "package.json").read_text(encoding="utf-8"))
    assert meta["name"] == "noctis-rooms"
    entry = LABEXTENSION / meta["jupyterlab"]["_build"]["load"]
    assert entry.is_file(), f"{entry} is missing: run extensions/noctis_rooms/build.sh"
    files = [p for p in (LABEXTENSION / "static").iterdir() if p.is_file()]
    assert not [p.name for p in files if p.suffix == ".map"], "source maps must not be committed"
    assert sum(p.stat().st_size for p in files) < 200_000
    # every chunk the entry loads is there, and nothing stale is left beside them
    chunks = {f"{i}.{h}.js" for i, h in re.findall(r'(\d+):"([0-9a-f]{20})"', entry.read_text())}
    assert chunks, "no chunk map found in the remote entry"
    present = {p.name for p in files} - {entry.name, "style.js", "third-party-licenses.json"}
    assert present == chunks


def test_labextension_paths_and_wheel_data_files() -> None:
    (spec,) = noctis_rooms._jupyter_labextension_paths()
    assert spec["dest"] == "noctis-rooms"
    assert Path(noctis_rooms.__file__).parent / spec["src"] == LABEXTENSION
    pyproject = tomllib.loads(
        (LABEXTENSION.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )
    data = pyproject["tool"]["setuptools"]["data-files"]
    assert data["share/jupyter/labextensions/noctis-rooms"] == [
        "noctis_rooms/labextension/package.json"
    ]
    assert data["share/jupyter/labextensions/noctis-rooms/static"] == [
        "noctis_rooms/labextension/static/*"
    ]
