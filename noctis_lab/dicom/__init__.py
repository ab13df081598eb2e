"""DICOM series discovery, sorting and HU conversion.

>>> from noctis_lab.dicom import load_series
>>> vol = load_series("data/demo/ct-onc-1/2026-11-20")  # doctest: +SKIP

The loader (and pydicom with it) is imported on first use, so importing the
package to reach :class:`Volume` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noctis_lab.dicom._volume import ScannerInfo, Volume

if TYPE_CHECKING:
    from noctis_lab.dicom._load import (
        SeriesInfo,
        list_acquisitions,
        list_series,
        load_series,
        write_series,
    )

__all__ = [
    "ScannerInfo",
    "SeriesInfo",
    "Volume",
    "list_acquisitions",
    "list_series",
    "load_series",
    "write_series",
]

_LAZY = {"SeriesInfo", "list_acquisitions", "list_series", "load_series", "write_series"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from noctis_lab.dicom import _load

        return getattr(_load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
