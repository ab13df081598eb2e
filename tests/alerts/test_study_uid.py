"""The bot finds a result's study through the one DICOM reader (``dicom.list_series``)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from noctis_lab.alerts._links import _study_uid


def test_study_of_a_series_folder_zip_and_acquisition(analysed: Any, tmp_path: Path) -> None:
    a = analysed["fail"]
    assert a.study_uid  # the generator wrote one
    assert _study_uid(str(a.folder), a.series_uid) == a.study_uid
    assert _study_uid(str(a.folder), f"{a.series_uid}+1.2.3.4") == a.study_uid  # one acquisition
    assert _study_uid(str(a.folder), "1.2.3.4") is None  # not that series
    packed = tmp_path / "series.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for f in sorted(a.folder.iterdir()):
            zf.write(f, f.name)
    assert _study_uid(str(packed), a.series_uid) == a.study_uid


def test_no_study_from_what_is_not_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not DICOM")
    assert _study_uid(str(tmp_path), "") is None
    assert _study_uid(str(tmp_path / "missing"), "1.2") is None
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.dcm", b"\0" * (64 * 1024**2))  # 64 MiB of zeros: ratio ~1000
    assert _study_uid(str(bomb), "") is None  # refused by the loader's limits, not read
