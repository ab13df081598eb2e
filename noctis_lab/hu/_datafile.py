"""Reading the HU data files (phantoms, profiles, references): one parser for all.

Each file is JSON with a ``schema`` tag and is validated by a pydantic model; a
failure raises the caller's error class with a message naming the file, and the
field or line at fault.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from noctis_lab._errors import NoctisError

__all__ = ["builtin_dir", "builtin_names", "format_validation", "parse_data_file"]

M = TypeVar("M", bound=BaseModel)


def format_validation(err: ValidationError) -> str:
    """The first five problems of a pydantic error as ``field.path: message; ...``."""
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    more = "" if err.error_count() <= 5 else f" (and {err.error_count() - 5} more)"
    return "; ".join(parts) + more


def parse_data_file(
    text: str, where: str, *, kind: str, schema: str, model: type[M], error: type[NoctisError]
) -> M:
    """Parse and validate one data file.

    Parameters
    ----------
    text : str
        The file's content.
    where : str
        How to name the file in messages (a path, or ``"seed.json (built-in)"``).
    kind : str
        What the file is, for messages (``"phantom"``, ``"profile"``, ``"reference"``).
    schema : str
        The required value of the file's ``schema`` field.
    model : pydantic model class
        Validates the content.
    error : NoctisError subclass
        Raised, naming the file and the reason, when anything is wrong.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{kind} file {where} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise error(f"{kind} file {where} must hold a JSON object")
    if data.get("schema") != schema:
        raise error(f"{kind} file {where}: 'schema' must be {schema!r}, got {data.get('schema')!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{kind} file {where} is invalid: {format_validation(exc)}") from None


def builtin_dir(*parts: str) -> Traversable:
    """A folder (or file) of the built-in data, ``noctis_lab/hu/data/...``."""
    res = resources.files("noctis_lab.hu") / "data"
    for p in parts:
        res = res / p
    return res


def builtin_names(folder: str) -> list[str]:
    """Names (without ``.json``) of the built-in data files in ``folder``."""
    return sorted(
        p.name.removesuffix(".json")
        for p in builtin_dir(folder).iterdir()
        if p.name.endswith(".json")
    )
