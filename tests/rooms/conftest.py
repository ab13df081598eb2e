"""Fixtures for the rooms tests: real Jupyter servers (one per module; one Lab per session)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rooms_client import LABEXTENSION, Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``jupyter server`` with noctis_rooms, a users file (alice admin, bob, carol)."""
    srv = Server(Path(tmp_path_factory.mktemp("rooms")))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``jupyter lab`` with noctis_rooms and a study notebook (``notebooks/hu_qa.ipynb``).

    The repository's built Room panel is put first on the labextensions path, so the
    browser tests exercise the committed build whether or not it is installed.
    """
    work = Path(tmp_path_factory.mktemp("rooms-lab"))
    ext_dir = work / "labextensions"
    ext_dir.mkdir()
    (ext_dir / "noctis-rooms").symlink_to(LABEXTENSION, target_is_directory=True)
    srv = Server(work, app="lab", extra=[f"--LabApp.extra_labextensions_path={ext_dir}"])
    (srv.root / "notebooks").mkdir()
    nb = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# HU QA notebook"]}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (srv.root / "notebooks" / "hu_qa.ipynb").write_text(json.dumps(nb))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
