"""The services' folder: its layout, the private credentials and the state file."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noctis_lab._errors import ServiceError
from noctis_lab.services._postgres import ADMIN_ROLE, APP_ROLE, MLFLOW_ROLE, OWNER_ROLE

__all__ = [
    "CREDENTIALS",
    "STATE",
    "Layout",
    "add_missing_roles",
    "credentials",
    "read_json",
    "write_private",
]

CREDENTIALS = "credentials.json"
STATE = "services.json"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlflow-artifacts"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mlflow_pid(self) -> Path:
        return self.root / "run" / "mlflow.pid"

    @property
    def credentials(self) -> Path:
        return self.root / CREDENTIALS

    @property
    def state(self) -> Path:
        return self.root / STATE


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{path}: cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ServiceError(f"{path}: expected a JSON object")
    return data


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by this account only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def credentials(lay: Layout, create: bool) -> dict[str, Any]:
    creds = read_json(lay.credentials)
    if creds:
        if lay.credentials.stat().st_mode & 0o077:
            raise ServiceError(
                f"{lay.credentials} is readable by other users; run `chmod 600` on it"
            )
        return add_missing_roles(lay, creds) if create else creds
    if not create:
        return {}
    creds = {}
    return add_missing_roles(lay, creds)


def add_missing_roles(lay: Layout, creds: dict[str, Any]) -> dict[str, Any]:
    """Give every role a generated password (older state folders lack the owner role)."""
    missing = [r for r in (ADMIN_ROLE, OWNER_ROLE, APP_ROLE, MLFLOW_ROLE) if r not in creds]
    if not missing:
        return creds
    creds = {**creds, **{r: {"user": r, "password": secrets.token_urlsafe(24)} for r in missing}}
    write_private(lay.credentials, creds)
    return creds
