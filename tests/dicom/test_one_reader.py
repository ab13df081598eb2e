"""One DICOM date/time parser, one folder walker, one header reader (issue 16.2)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from noctis_lab.dicom import file_header, iso_datetime, load_series, parse_datetime, walk_files

PACKAGE = Path(__file__).resolve().parents[2] / "noctis_lab"


@pytest.mark.parametrize(
    "date,time,iso",
    [
        ("20261120", "123456", "2026-11-20T12:34:56"),
        ("20261120", "123456.25", "2026-11-20T12:34:56.25"),
        ("20261120", "12:34:56", "2026-11-20T12:34:56"),  # ACR-NEMA TM
        ("2026.11.20", "0715", "2026-11-20T07:15:00"),  # ACR-NEMA DA, TM without seconds
        ("20261120", "", "2026-11-20"),
        ("20261120", "7", "2026-11-20"),  # no hour: the date alone
        ("20261120", "256000", "2026-11-20"),  # hour 25: the date alone
        ("20261340", "120000", ""),  # no 40th of a 13th month
        ("2026112", "120000", ""),
    ],
)
def test_iso_datetime_of_da_and_tm(date: str, time: str, iso: str) -> None:
    assert iso_datetime(date, time) == iso


def test_parse_datetime_reads_dt_with_its_offset() -> None:
    when = parse_datetime("20261120123456.5-0130")
    assert when == datetime(
        2026, 11, 20, 12, 34, 56, 500000, tzinfo=timezone(-timedelta(hours=1, minutes=30))
    )
    assert when is not None and when.astimezone(UTC).replace(tzinfo=None) == datetime(
        2026, 11, 20, 14, 4, 56, 500000
    )
    assert parse_datetime("2026") == datetime(2026, 1, 1)  # trailing parts left out
    assert parse_datetime("202611") == datetime(2026, 11, 1)
    assert parse_datetime("20261120", "0930") == datetime(2026, 11, 20, 9, 30)
    for bad in ("", "2026-11-20", "20261120T1200", "20260230", "2026112012345"):
        assert parse_datetime(bad) is None, bad


def test_history_reads_dicom_times_through_the_one_parser() -> None:
    from noctis_lab.hu.history import _parse_time

    assert _parse_time("20261120123456.5+0100") == datetime(2026, 11, 20, 11, 34, 56, 500000)
    assert _parse_time("2026-11-20T12:00:00+01:00") == datetime(2026, 11, 20, 11, 0)
    assert _parse_time("20261131") is None


def test_walk_files_is_sorted_recursive_and_takes_a_file(tmp_path: Path) -> None:
    for rel in ("b/2", "a/z", "a/c/1", "0"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    assert [p.relative_to(tmp_path).as_posix() for p in walk_files(tmp_path)] == [
        "0",
        "a/c/1",
        "a/z",
        "b/2",
    ]
    assert walk_files(tmp_path / "0") == [tmp_path / "0"]


def test_file_header_reads_any_dicom_object(axial_series, kit, tmp_path: Path) -> None:
    first = axial_series.paths[0]
    header = file_header(first)
    assert header is not None
    assert str(header.get("SOPInstanceUID")) == str(axial_series.datasets[0].SOPInstanceUID)
    assert str(header.get("SeriesInstanceUID")) == axial_series.series_uid
    # a DICOMDIR is no image, but it has a header; a text file has none
    assert file_header(kit.testdata("DICOMDIR")) is not None
    (tmp_path / "notes.txt").write_text("not DICOM")
    assert file_header(tmp_path / "notes.txt") is None
    # the loader's sources are the walker's files, read in position order
    vol = load_series(axial_series.folder)
    assert sorted(vol.sources) == sorted(str(p) for p in walk_files(axial_series.folder))


#: Calls that read DICOM, walk folders or parse dates, allowed only in noctis_lab.dicom.
#: ``segread``: a DICOM SEG is decoded by highdicom (load_series reads images only).
_READERS = {"dcmread", "rglob", "walk", "strptime"}
#: Known users outside noctis_lab.dicom, with their owner: remove a line when mended.
_KNOWN: set[tuple[str, str]] = set()


def _reader_calls(source: str) -> set[str]:
    """The reading/walking/parsing calls of a module's source (``os.walk``, ``x.rglob`` ...)."""
    calls = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, owner = node.func.attr, node.func.value
        if attr in _READERS - {"walk"} or (
            attr == "walk" and isinstance(owner, ast.Name) and owner.id == "os"
        ):
            calls.add(attr)
    return calls


def test_only_noctis_lab_dicom_reads_dicom_walks_folders_or_parses_dates() -> None:
    found = {
        (path.relative_to(PACKAGE).as_posix(), call)
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.relative_to(PACKAGE).as_posix().startswith("dicom/")
        for call in _reader_calls(path.read_text(encoding="utf-8"))
    }
    assert found <= _KNOWN, f"outside noctis_lab.dicom: {sorted(found - _KNOWN)}"
