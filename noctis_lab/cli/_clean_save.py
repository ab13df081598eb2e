"""Keep the project's notebooks clean: a Jupyter pre-save hook that drops run results.

``noctis-lab lab`` installs :func:`strip_tracked_outputs` as the server's
``ContentsManager.pre_save_hook``. When a notebook that git tracks (the tutorials,
dashboards and report notebooks of a checkout) is saved, by hand or by autosave, its
outputs, execution counts, widget state and kernel details are left out of the file,
so running the tutorials never modifies the repository. The open notebook keeps its
outputs on screen. Any other notebook (your own, or a tutorial saved under a new name
with *File > Save As*) is saved as is, outputs included.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["is_tracked", "strip_run_results", "strip_tracked_outputs"]

#: Cell metadata written by running or viewing a cell, not by its author.
RUN_CELL_METADATA = frozenset({"execution", "collapsed", "scrolled", "papermill"})
#: Notebook metadata written by a kernel or by widgets.
RUN_NOTEBOOK_METADATA = frozenset({"widgets", "papermill"})


def is_tracked(path: Path) -> bool:
    """Whether git tracks ``path`` (False outside a work tree or without git)."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def strip_run_results(nb: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook (nbformat 4 dict) without what running it added.

    Code cells lose outputs and execution counts; cells lose run metadata
    (:data:`RUN_CELL_METADATA`); the notebook loses widget state and keeps only the
    language name of ``language_info``. Sources, cell ids, tags and titles stay.
    """
    out = dict(nb)
    cells = []
    for cell in nb.get("cells", []):
        c = dict(cell)
        c["metadata"] = {
            k: v for k, v in (cell.get("metadata") or {}).items() if k not in RUN_CELL_METADATA
        }
        if c.get("cell_type") == "code":
            c["outputs"] = []
            c["execution_count"] = None
        cells.append(c)
    out["cells"] = cells
    meta = {k: v for k, v in (nb.get("metadata") or {}).items() if k not in RUN_NOTEBOOK_METADATA}
    lang = meta.get("language_info")
    if isinstance(lang, Mapping) and "name" in lang:
        meta["language_info"] = {"name": lang["name"]}
    out["metadata"] = meta
    return out


def strip_tracked_outputs(
    model: dict[str, Any], path: str, contents_manager: Any, **_: Any
) -> None:
    """Jupyter ``pre_save_hook``: strip run results from git-tracked notebooks, in place."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), Mapping):
        return
    get_os_path = getattr(contents_manager, "_get_os_path", None)
    if get_os_path is None:
        return
    os_path = Path(os.fspath(get_os_path(path)))
    if os_path.is_file() and is_tracked(os_path):
        model["content"] = strip_run_results(model["content"])
