"""The lean header reader gives pydicom's values, or declines and leaves the file to pydicom.

Referee: pydicom itself (``dcmread(stop_before_pixels=True)``), on every file of
pydicom's own test data (86 files from many vendors and toolkits: big endian,
deflated, implicit VR, private and nested sequences, undefined lengths, ISO 2022
character sets, truncated files) and on the real scans of ``../shared/realdata``.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _ci import realdata_dir
from pydicom.datadict import dictionary_VR, tag_for_keyword

from noctis_lab.dicom import _load, load_series
from noctis_lab.dicom._header import ELEMENTS, META_ELEMENTS, read_header

PYDICOM_FILES = sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*"))
REAL_SCANS = ("catphan_mft_cbct_head", "imageqc_ctp404_fov150", "xvi_catphan_3slices")


def _real_files() -> list[Path]:
    return sorted(p for scan in REAL_SCANS for p in (realdata_dir() / scan).rglob("*.dcm"))


def test_the_element_table_is_the_dicom_dictionarys() -> None:
    for keyword, (tag, vr) in {**ELEMENTS, **META_ELEMENTS}.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert dictionary_VR(tag) == vr, keyword


def _pydicom_view(path: Path) -> tuple[pydicom.Dataset, int]:
    with open(path, "rb") as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(fp, stop_before_pixels=True)
        return ds, fp.tell()


def _same_values(path: Path) -> bool | None:
    """None: the lean reader declined; else assert every element equals pydicom's."""
    with open(path, "rb") as fp:
        lean = read_header(fp)
    if lean is None:
        return None
    ours, pixel_offset = lean
    ref, ref_offset = _pydicom_view(path)
    assert pixel_offset == ref_offset, f"{path.name}: Pixel Data offset"
    for keyword, (_, vr) in ELEMENTS.items():
        assert (keyword in ours) == (keyword in ref), f"{path.name}: {keyword} presence"
        if keyword not in ref or vr == "SQ":
            continue
        if vr in ("DS", "IS", "US", "FD"):
            assert _load._number(ours, keyword) == _load._number(ref, keyword), (
                f"{path.name}: {keyword} {ours.get(keyword)!r} vs {ref.get(keyword)!r}"
            )
            if vr != "FD" and ref[keyword].VM > 1:
                assert [float(v) for v in ours.get(keyword)] == [
                    float(v) for v in ref.get(keyword)
                ], f"{path.name}: {keyword}"
        else:
            assert _load._text(ours, keyword) == _load._text(ref, keyword), (
                f"{path.name}: {keyword} {ours.get(keyword)!r} vs {ref.get(keyword)!r}"
            )
    for keyword in META_ELEMENTS:
        assert str(ours.file_meta.get(keyword, "")) == str(ref.file_meta.get(keyword, "")), (
            f"{path.name}: {keyword}"
        )
    assert ours.is_implicit_VR == ref.is_implicit_VR
    return True


def test_pydicoms_test_files_read_the_same_or_are_declined() -> None:
    read, declined = [], []
    for path in PYDICOM_FILES:
        if not path.is_file():
            continue
        try:
            _pydicom_view(path)
        except Exception:
            with open(path, "rb") as fp:  # pydicom cannot read it: neither may we
                assert read_header(fp) is None, path.name
            continue
        (declined if _same_values(path) is None else read).append(path.name)
    # the common case is read; the unusual ones go to pydicom
    assert len(read) >= 100, (len(read), declined)
    for name in (
        "ExplVR_BigEnd.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "rtplan_truncated.dcm",
    ):
        assert name in declined, name
    for name in ("CT_small.dcm", "MR_small_implicit.dcm", "nested_priv_SQ.dcm", "JPEG2000.dcm"):
        assert name in read, name


def test_iso_2022_character_sets_are_left_to_pydicom() -> None:
    charset = sorted((Path(pydicom.__file__).parent / "data" / "charset_files").glob("*.dcm"))
    assert charset, "pydicom's character-set files are missing"
    outcomes = {}
    for path in charset:
        with open(path, "rb") as fp:
            lean = read_header(fp)
        ref, _ = _pydicom_view(path)
        cs = ref.get("SpecificCharacterSet", "")
        terms = [cs] if isinstance(cs, str) else list(cs)
        if any("2022" in t for t in terms):
            assert lean is None, path.name
        outcomes[path.name] = _same_values(path)
    assert any(v is None for v in outcomes.values())
    assert any(v for v in outcomes.values())


def test_real_scans_are_read_without_pydicom_and_give_its_values() -> None:
    files = _real_files()
    assert len(files) > 90
    assert all(_same_values(p) for p in files)


def test_damaged_headers_are_declined_not_misread() -> None:
    good = (Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm").read_bytes()
    lean = read_header(io.BytesIO(good))
    assert lean is not None
    pixel = lean[1]
    for cut in (100, 140, 300, pixel - 3):  # truncated inside the meta, an element, a value
        assert read_header(io.BytesIO(good[:cut])) is None, cut
    # a length that runs past the end of the file
    broken = bytearray(good)
    broken[pixel - 200 : pixel - 196] = b"\xff\xff\xff\x7f"
    assert read_header(io.BytesIO(bytes(broken))) is None


def test_corrupted_bytes_never_raise_or_hang() -> None:
    """Random damage anywhere in the header: the reader declines or reads, nothing else."""
    good = (
        Path(pydicom.__file__).parent / "data" / "test_files" / "nested_priv_SQ.dcm"
    ).read_bytes()
    rng = np.random.default_rng(12)
    outcomes = set()
    for _ in range(300):
        bad = bytearray(good)
        for at in rng.integers(128, len(good), size=int(rng.integers(1, 4))):
            bad[int(at)] = int(rng.integers(0, 256))
        lean = read_header(io.BytesIO(bytes(bad)))
        outcomes.add(lean is None)
    assert outcomes == {True, False}  # some damage is declined, some is harmless


def test_deeply_nested_sequences_are_declined() -> None:
    """Undefined-length sequences nested thousands deep: declined, not a RecursionError.

    Three deep, the same structure is read (the nesting itself is fine).
    """
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # item, undefined length
    seq = b"\x09\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff"  # (0009,1010) SQ, undefined
    meta = b"\x02\x00\x10\x00UI\x14\x00" + b"1.2.840.10008.1.2.1\x00"
    ends = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    body = (seq + item) * 5000 + ends * 5000  # well formed, only too deep
    data = b"\x00" * 128 + b"DICM" + meta + body
    assert read_header(io.BytesIO(data)) is None
    shallow = b"\x00" * 128 + b"DICM" + meta + (seq + item) * 3 + ends * 3
    assert read_header(io.BytesIO(shallow)) is not None


@pytest.mark.parametrize("scan", REAL_SCANS)
def test_load_series_is_the_same_with_and_without_the_lean_reader(
    scan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = realdata_dir() / scan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lean = load_series(folder)
        monkeypatch.setattr(_load, "read_header", lambda fp: None)
        ref = load_series(folder)
    np.testing.assert_array_equal(lean.hu, ref.hu)
    for field in ("spacing", "origin", "orientation", "slice_positions", "scanner", "series_uid"):
        assert getattr(lean, field) == getattr(ref, field), field


def test_a_fresh_analysis_of_common_files_never_imports_pydicom() -> None:
    folder = realdata_dir() / "xvi_catphan_3slices"
    code = (
        "import sys, warnings; warnings.simplefilter('ignore');"
        "from noctis_lab.dicom import load_series;"
        f"v = load_series({str(folder)!r});"
        "print(v.hu.shape, 'pydicom' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False", out.stdout
