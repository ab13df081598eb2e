"""DICOM series discovery, sorting and HU conversion.

>>> from noctis_lab.dicom import load_series
>>> vol = load_series("data/demo/scanner-a/2026-01-05")  # doctest: +SKIP
"""

from __future__ import annotations

from noctis_lab.dicom._load import SeriesInfo, list_series, load_series, write_series
from noctis_lab.dicom._volume import ScannerInfo, Volume

__all__ = ["ScannerInfo", "SeriesInfo", "Volume", "list_series", "load_series", "write_series"]
