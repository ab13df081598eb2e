"""The pool that analyses and records every series of an archive (see :mod:`noctis_lab.batch`)."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noctis_lab._errors import NoFilesFoundError
from noctis_lab.batch._report import BatchReport, SeriesOutcome

if TYPE_CHECKING:
    from noctis_lab.hu.history import CalibrationHistory

__all__ = ["PhantomChoice", "analyze_archive", "find_series_folders"]

#: Modules the local pool's fork server imports once for all workers.
_PRELOAD = (
    "noctis_lab.batch._archive",
    "noctis_lab.hu",
    "noctis_lab.dicom._load",
    "noctis_lab.hu.history",
)

PhantomChoice = str | Mapping[str, str] | Callable[[Path], str]


def _is_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def find_series_folders(root: str | Path) -> list[Path]:
    """Every folder under ``root`` (itself included) that directly holds DICOM files.

    Raises
    ------
    NoFilesFoundError
        ``root`` does not exist or holds no DICOM file.
    """
    base = Path(root)
    if not base.is_dir():
        raise NoFilesFoundError(f"archive {base} is not a folder")
    from noctis_lab.dicom import walk_files

    found = {path.parent for path in walk_files(base) if _is_dicom(path)}
    if not found:
        raise NoFilesFoundError(f"no DICOM series found under {base}")
    return sorted(found)


def _manifest_phantoms(root: Path) -> dict[str, str]:
    """Phantom per series folder from a demo-style ``manifest.json``, if there is one."""
    path = root / "manifest.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("series", [])
        return {str((root / e["path"]).resolve()): str(e["phantom"]) for e in entries}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _resolver(root: Path, phantom: PhantomChoice | None) -> Callable[[Path], str]:
    if callable(phantom):
        return phantom
    if isinstance(phantom, Mapping):
        table = {str(Path(k).resolve()): v for k, v in phantom.items()}
        return lambda p: table.get(str(p.resolve()), "catphan604")
    from_manifest = _manifest_phantoms(root)
    default = phantom or "catphan604"
    return lambda p: from_manifest.get(str(p.resolve()), default)


@functools.cache
def _worker_history(db_url: str | None) -> CalibrationHistory:
    """One open history per worker process and URL (opening runs the migration check)."""
    from noctis_lab.hu.history import CalibrationHistory

    return CalibrationHistory(db_url)


def _analyze_one(
    path: str, phantom: str, profile: str, db_url: str | None, operator: str
) -> dict[str, Any]:
    """Worker task: analyse one series folder and record it unless already recorded."""
    t0 = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    base: dict[str, Any] = {"path": path, "phantom": phantom, "worker": worker}
    try:
        from noctis_lab.dicom import list_series, load_series
        from noctis_lab.hu import analyze

        infos = list_series(path)
        uid = infos[0].uid if len(infos) == 1 else ""
        history = _worker_history(db_url)
        if uid:
            done = history.find_series(uid, phantom=phantom, profile=profile)
            if done:
                return {
                    **base,
                    "outcome": "skipped",
                    "series_uid": uid,
                    "record_id": done[0],
                    "seconds": time.perf_counter() - t0,
                }
        volume = load_series(path)
        result = analyze(volume, phantom=phantom, profile=profile)
        rid = history.record(result, operator=operator, notes=f"batch: {path}")
        return {
            **base,
            "outcome": "recorded",
            "series_uid": volume.series_uid,
            "scanner": volume.scanner.key,
            "status": result.status,
            "record_id": rid,
            "seconds": time.perf_counter() - t0,
        }
    except Exception as exc:  # a failing series is reported, never stops the batch
        return {
            **base,
            "outcome": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "seconds": time.perf_counter() - t0,
        }


def analyze_archive(
    root: str | Path,
    *,
    phantom: PhantomChoice | None = None,
    profile: str = "seed",
    client: Any = None,
    workers: int | None = None,
    db_url: str | None = None,
    operator: str = "batch",
    progress: bool = True,
    folders: Iterable[str | Path] | None = None,
) -> BatchReport:
    """Analyse and record every phantom series under ``root``.

    Parameters
    ----------
    root : str or Path
        The archive: every folder below it that holds DICOM files is one series.
    phantom : str, mapping or callable, optional
        The phantom of each series: one name for all, a mapping from folder to
        name, or a function of the folder. Default: the archive's ``manifest.json``
        when it has one (as the demo set does), else ``"catphan604"``.
    profile : str
        Tolerance profile for every series.
    client : dask.distributed.Client, optional
        Run on this Dask cluster. Without it, a local process pool is used.
    workers : int, optional
        Size of the local pool (default: the number of CPUs).
    db_url : str, optional
        Calibration history URL (default: ``NOCTIS_DB_URL`` or the local SQLite file).
    operator : str
        Operator recorded with each result.
    progress : bool
        Show a progress bar.
    folders : iterable of paths, optional
        Analyse these folders instead of discovering them under ``root``.

    Returns
    -------
    BatchReport
        One :class:`SeriesOutcome` per series, in the order of the folders.
    """
    from tqdm.auto import tqdm

    base = Path(root)
    paths = [Path(f) for f in folders] if folders is not None else find_series_folders(base)
    which = _resolver(base, phantom)
    jobs = [(str(p), which(p)) for p in paths]
    if db_url is None:
        from noctis_lab import _paths

        db_url = _paths.db_url()
    # Open (and migrate) the store once before the workers race to do it.
    from noctis_lab.hu.history import CalibrationHistory

    CalibrationHistory(db_url).close()

    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(jobs), desc="analysing series", disable=not progress)
    if client is not None:
        from dask import distributed

        dask_completed: Callable[[list[Any]], Iterable[Any]] = distributed.as_completed  # untyped
        futures = [
            client.submit(
                _analyze_one, p, ph, profile, db_url, operator, key=f"noctis-{p}", retries=2
            )
            for p, ph in jobs
        ]
        for fut in dask_completed(futures):
            res = fut.result()
            results[res["path"]] = res
            bar.update()
        executor = f"dask ({len(client.scheduler_info().get('workers', {}))} workers)"
    else:
        import multiprocessing as mp

        n = workers or os.cpu_count() or 1
        # A fork server that has already imported the analysis: workers start in
        # milliseconds, and no fork happens from a threaded parent (a Jupyter kernel).
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(_PRELOAD))
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            pending: list[Future[dict[str, Any]]] = [
                pool.submit(_analyze_one, p, ph, profile, db_url, operator) for p, ph in jobs
            ]
            for fut in as_completed(pending):
                res = fut.result()
                results[res["path"]] = res
                bar.update()
        executor = f"local process pool ({n} workers)"
    bar.close()
    outcomes = tuple(SeriesOutcome(**results[p]) for p, _ in jobs)
    return BatchReport(str(base), outcomes, time.perf_counter() - t0, executor)
