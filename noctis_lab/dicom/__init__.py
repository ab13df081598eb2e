"""DICOM series discovery, sorting and HU conversion.

>>> from noctis_lab.dicom import load_series
>>> vol = load_series("data/demo/ct-onc-1/2026-11-20")  # doctest: +SKIP

The loader (and pydicom with it) is imported on first use, so importing the
package to reach :class:`Volume` stays fast. Every path of the package that reads
DICOM goes through here: :func:`load_series` for images, :func:`file_header` for one
file's header, :func:`walk_files` for the files of a folder and
:func:`parse_datetime` / :func:`iso_datetime` for DA, TM and DT values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noctis_lab.dicom._datetime import iso_datetime, parse_datetime
from noctis_lab.dicom._volume import ScannerInfo, Volume
from noctis_lab.dicom._walk import walk_files

if TYPE_CHECKING:
    from noctis_lab.dicom._load import (
        SeriesInfo,
        file_header,
        list_acquisitions,
        list_series,
        load_series,
        write_series,
    )

__all__ = [
    "ScannerInfo",
    "SeriesInfo",
    "Volume",
    "file_header",
    "iso_datetime",
    "list_acquisitions",
    "list_series",
    "load_series",
    "parse_datetime",
    "walk_files",
    "write_series",
]

_LAZY = {
    "SeriesInfo",
    "file_header",
    "list_acquisitions",
    "list_series",
    "load_series",
    "write_series",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from noctis_lab.dicom import _load

        return getattr(_load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
