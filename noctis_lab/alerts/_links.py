"""Study links: the series a message is about, and the notebook that opens it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from noctis_lab._errors import NoctisError
from noctis_lab.alerts._config import AlertConfig
from noctis_lab.alerts._wording import qa_date

if TYPE_CHECKING:  # pragma: no cover
    from noctis_lab.hu._result import CalibrationResult


__all__ = ["HU_NOTEBOOK", "study_link"]

#: The notebook a calibration's study link opens, when it exists under the chat root.
HU_NOTEBOOK = "hu_calibration.ipynb"


def _study_uid(source: str, series_uid: str) -> str | None:
    """The StudyInstanceUID of ``series_uid`` in the DICOM at ``source``, if found.

    Read by the loader (:func:`noctis_lab.dicom.list_series`: its zip-bomb and size
    limits, its skipping of non-DICOM files); ``series_uid`` may join the series of
    one acquisition with ``+``.
    """
    from noctis_lab.dicom import list_series

    try:
        infos = list_series(source)
    except (NoctisError, OSError):
        return None
    wanted = set(series_uid.split("+")) if series_uid else set()
    for info in infos:
        if info.study_uid and (not wanted or info.uid in wanted):
            return info.study_uid
    return None


def _open_path(config: AlertConfig, root: Path) -> str:
    candidates = (
        [config.open_path] if config.open_path else [HU_NOTEBOOK, f"notebooks/{HU_NOTEBOOK}"]
    )
    for c in candidates:
        if c and (root / c).is_file():
            return c
    return ""


def study_link(
    result: CalibrationResult,
    record_id: int | None,
    config: AlertConfig,
    root: Path,
    study_uid: str | None = None,
) -> dict[str, str] | None:
    uid = study_uid or result.study_uid or _study_uid(result.source, result.series_uid)
    if not uid:
        return None
    sc = result.scanner
    desc = f"{result.phantom_title} QA — {sc.station or sc.model or sc.key}, {qa_date(result)}"
    if record_id is not None:
        desc += f" (record {record_id})"
    link = {"study_uid": uid, "description": desc, "series_uid": result.series_uid}
    path = _open_path(config, root)
    if path:
        link["open_path"] = path
    return link
