"""The one folder walker of the package: the files a DICOM source folder holds."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["walk_files"]


def walk_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every regular file under a folder, subfolders included, sorted by path.

    Parameters
    ----------
    path : str or path-like
        A folder, or a single file (returned alone).

    Returns
    -------
    list of Path
        The files, in a stable order (sorted by their full path), so that whatever is
        built from them (a series, a hash) does not depend on the file system's order.
    """
    root = Path(path)
    if not root.is_dir():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file())
