"""Fixtures for the rooms tests: one real Jupyter server per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rooms_client import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``jupyter server`` with noctis_rooms, a users file (alice admin, bob, carol)."""
    srv = Server(Path(tmp_path_factory.mktemp("rooms")))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
