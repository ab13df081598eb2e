"""Find, sort and decode the slices of a CT series into a :class:`Volume`.

Loading runs in two passes:

1. **Headers.** Every candidate file's header is read up to its Pixel Data, in
   this thread (parsing is GIL-bound Python; threads measured slower): the common
   files (Part 10, little endian, a single-byte or UTF-8 character set) by the lean
   reader of :mod:`noctis_lab.dicom._header`, which keeps only the elements used
   here and needs no pydicom import; every other file by pydicom
   (``stop_before_pixels``), imported then. Files
   that are not DICOM, or DICOM objects that are not images (a ``DICOMDIR``, a
   structured report), are set aside; image headers are grouped by
   SeriesInstanceUID, checked (orientation, size, rescale tags, truncation) and
   sorted by their position along the slice normal, ``ImagePositionPatient · (row × column)``.
2. **Pixels.** Slices are written straight into one preallocated float32
   ``(z, y, x)`` array, with ``RescaleSlope`` and ``RescaleIntercept`` applied per
   slice by numpy. For the uncompressed transfer syntaxes the Pixel Data bytes are
   read directly at the offset found in pass 1 and viewed with
   :func:`numpy.frombuffer` (the header is not parsed twice); compressed syntaxes
   (JPEG 2000, JPEG lossless, RLE ...) are decoded by pydicom and its pylibjpeg
   plugins.

Uncompressed slices are read in this thread, one read and one vectorised rescale
each (a thread pool gained nothing on 2 cores, a process pool was several times
slower). The pylibjpeg codecs hold the GIL, so when there are at least
``MIN_SLICES_FOR_PROCESSES`` compressed slices and ``workers > 1`` they are decoded in
a process pool (``fork``, started before pass 2 does anything else) and rescaled here;
otherwise they are decoded in this thread too. ``bench/bench_load.py`` measures these choices.

Missing rescale tags are an error (naming the tag), not a silent ``1/0``:
``assume_rescale=(slope, intercept)`` opts in to a default, used only where
*both* tags are absent.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from noctis_lab._errors import (
    AmbiguousSeriesError,
    DicomError,
    NoFilesFoundError,
    SeriesGeometryError,
    SliceGapWarning,
)
from noctis_lab.dicom._datetime import iso_datetime
from noctis_lab.dicom._header import EXPLICIT_LE, IMPLICIT_LE, LeanDataset, read_header
from noctis_lab.dicom._volume import ScannerInfo, Volume
from noctis_lab.dicom._walk import walk_files

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from pydicom.dataset import Dataset
    from pydicom.valuerep import DSfloat

__all__ = [
    "SeriesInfo",
    "file_header",
    "list_acquisitions",
    "list_series",
    "load_series",
    "write_series",
]

PathLike: TypeAlias = str | os.PathLike[str]
Source: TypeAlias = "PathLike | Dataset | Sequence[PathLike | Dataset]"

#: Largest angle (degrees) between the slice normal and the patient z axis that
#: still counts as axial: covers gantry tilt.
MAX_AXIAL_TILT_DEG = 30.0
#: Largest slice accepted (pixels): a header claiming more is refused before any memory
#: is set aside for it (CT slices are 512² to 1024², micro-CT up to 4096²).
MAX_SLICE_PIXELS = 4096 * 4096
#: Largest volume accepted, bytes of float32 HU.
MAX_VOLUME_BYTES = 8 * 1024**3
#: Largest zip member read (bytes, uncompressed), and the compression ratio above which
#: a large member is taken for a zip bomb.
MAX_ZIP_MEMBER_BYTES = 1024**3
MAX_ZIP_RATIO = 200.0
#: Two slices closer than this along the normal (mm) are duplicates.
DUPLICATE_TOLERANCE_MM = 1e-3
#: A step that differs from the most common step by more than this fraction is reported.
GAP_TOLERANCE = 0.1

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_NATIVE_SYNTAXES = {EXPLICIT_LE, IMPLICIT_LE}
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_CT_SOP_CLASSES = {_CT_IMAGE_STORAGE, "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"}
#: A header as pass 1 read it: by pydicom, or by the lean reader (:mod:`._header`).
Header: TypeAlias = "Dataset | LeanDataset"


def _pydicom() -> ModuleType:
    """pydicom, imported on first need (the common files are read without it)."""
    from noctis_lab.dicom._pydicom import pydicom

    return pydicom


def _is_dataset(obj: object) -> bool:
    """Whether ``obj`` is a pydicom Dataset.

    None can exist before pydicom is imported, so paths and lists of paths never import it.
    """
    pydicom = sys.modules.get("pydicom")
    return pydicom is not None and isinstance(obj, pydicom.Dataset)


def _uid_name(uid: str) -> str:
    """The registered name of a UID (pydicom's UID dictionary), for messages."""
    _pydicom()
    from pydicom.uid import UID

    return str(UID(uid).name)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a source: a choice for ``load_series(series_uid=)``.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID.
    description : str
        SeriesDescription (may be empty).
    n_slices : int
        Number of image files of the series.
    modality : str
        Modality tag, e.g. ``"CT"``.
    scanner : str
        :attr:`ScannerInfo.key` of the scanner: ``manufacturer/model/serial``.
    study_uid : str
        StudyInstanceUID (may be empty).
    """

    uid: str
    description: str
    n_slices: int
    modality: str
    scanner: str
    study_uid: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return asdict(self)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Item:
    """One candidate input: a file on disk, a member of a zip, or a dataset."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    dataset: Dataset | None = None

    def open(self) -> IO[bytes]:
        if self.path is not None:
            return open(self.path, "rb")
        assert self.data is not None
        return io.BytesIO(self.data)


@dataclass(frozen=True)
class _Header:
    """What pass 1 learnt about one image file."""

    item: _Item
    ds: Header
    transfer_syntax: str
    #: Byte offset and length of the native Pixel Data value (None: not native / in memory).
    value_offset: int | None
    value_length: int | None


@dataclass(frozen=True)
class _Skipped:
    item: _Item
    reason: str


def _collect(source: Source) -> tuple[list[_Item], str]:
    """Expand ``source`` into candidate items and a short label for messages."""
    if _is_dataset(source):
        return [_Item(name="<memory:0>", dataset=cast("Dataset", source))], "<memory>"
    if isinstance(source, str | os.PathLike):
        return _collect_path(Path(source)), str(source)
    if isinstance(source, Sequence):
        items: list[_Item] = []
        for i, entry in enumerate(source):
            if _is_dataset(entry):
                items.append(_Item(name=f"<memory:{i}>", dataset=cast("Dataset", entry)))
            elif isinstance(entry, str | os.PathLike):
                items.extend(_collect_path(Path(entry)))
            else:
                raise DicomError(
                    f"source item {i} is a {type(entry).__name__}; expected a path or a "
                    "pydicom Dataset"
                )
        return items, f"a list of {len(source)} inputs"
    raise DicomError(
        f"cannot load DICOM from a {type(source).__name__}; pass a folder, a zip file, "
        "a list of paths or pydicom datasets"
    )


def _collect_path(path: Path) -> list[_Item]:
    if not path.exists():
        raise NoFilesFoundError(f"'{path}' does not exist")
    if path.is_dir():
        return [_Item(name=str(p), path=p) for p in walk_files(path)]
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
                for info in members:
                    _check_zip_member(path, info)
                return [
                    _Item(name=f"{path}!/{info.filename}", data=zf.read(info))
                    for info in sorted(members, key=lambda i: i.filename)
                ]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DicomError(f"'{path}' is a damaged zip archive: {exc}") from exc
    return [_Item(name=str(path), path=path)]


def _check_zip_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a member too large to read, or so compressed it is a zip bomb (before reading)."""
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > MAX_ZIP_MEMBER_BYTES or (size > 16 * 1024**2 and size / packed > MAX_ZIP_RATIO):
        raise DicomError(
            f"'{path}!/{info.filename}' unpacks to {size / 1024**2:.0f} MiB from "
            f"{packed / 1024**2:.1f} MiB (ratio {size / packed:.0f}): refused as a zip bomb "
            f"(at most {MAX_ZIP_MEMBER_BYTES // 1024**2} MiB a member, ratio {MAX_ZIP_RATIO:g})"
        )


# --------------------------------------------------------------------------- pass 1


def _claims_dicom(fp: IO[bytes]) -> bool:
    fp.seek(128)
    marker = fp.read(4)
    fp.seek(0)
    return marker == b"DICM"


#: Groups a data set without preamble can start with (command, file meta, directory,
#: identifying: an image has (0008,0016)), little- or big-endian.
_FIRST_GROUPS = {0x0000, 0x0002, 0x0004, 0x0008, 0x0200, 0x0400, 0x0800}


def _may_be_raw_dataset(fp: IO[bytes]) -> bool:
    """Whether a file without ``DICM`` marker could be a data set (else: no pydicom needed)."""
    head = fp.read(2)
    fp.seek(0)
    return len(head) == 2 and struct.unpack("<H", head)[0] in _FIRST_GROUPS


def _read_header(item: _Item) -> _Header | _Skipped:
    """Read one file up to its Pixel Data; classify it (pass 1)."""
    if item.dataset is not None:
        if "Rows" not in item.dataset:
            return _Skipped(item, "is a dataset without an image (no Rows)")
        meta = getattr(item.dataset, "file_meta", None)
        ts = str(meta.get("TransferSyntaxUID", EXPLICIT_LE)) if meta else ""
        return _Header(item, item.dataset, ts or EXPLICIT_LE, None, None)

    fp = _open(item)
    with fp:
        parsed = _parse_header(item, fp)
        if isinstance(parsed, _Skipped):
            return parsed
        ds, pixels_at = parsed
        skipped = _not_an_image(item, ds)
        if skipped is not None:
            return skipped
        ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if ds.file_meta else ""
        if not ts:
            ts = IMPLICIT_LE if ds.is_implicit_VR else EXPLICIT_LE
        if pixels_at is not None:
            fp.seek(pixels_at)
        value_offset, value_length = _locate_pixels(fp, item, ts)
    return _Header(item, ds, ts, value_offset, value_length)


def _open(item: _Item) -> IO[bytes]:
    try:
        return item.open()
    except OSError as exc:
        raise DicomError(f"'{item.name}' cannot be read: {exc.strerror or exc}") from exc


def _parse_header(item: _Item, fp: IO[bytes]) -> tuple[Header, int | None] | _Skipped:
    """A file's header by the lean reader (with where it stopped) or else by pydicom."""
    lean = read_header(fp)
    if lean is not None:
        return lean
    parsed = _read_with_pydicom(item, fp)
    return parsed if isinstance(parsed, _Skipped) else (parsed, None)


def file_header(path: PathLike) -> Header | None:
    """The header of one DICOM file, read up to its Pixel Data, whatever the object.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    pydicom.Dataset or LeanDataset or None
        The header as the loader reads it (the lean reader's elements for the common
        files, pydicom's data set for the others); None when the file is not DICOM.

    Raises
    ------
    DicomError
        The file cannot be read, or claims to be DICOM and is truncated or corrupt.
    """
    item = _Item(name=str(path), path=Path(path))
    with _open(item) as fp:
        parsed = _parse_header(item, fp)
    return None if isinstance(parsed, _Skipped) else parsed[0]


def _read_with_pydicom(item: _Item, fp: IO[bytes]) -> Dataset | _Skipped:
    """A header the lean reader declined: pydicom reads it (up to the Pixel Data)."""
    claims = _claims_dicom(fp)
    if not claims and not _may_be_raw_dataset(fp):
        return _Skipped(item, "is not a DICOM file (no 'DICM' marker)")
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not claims)
    except pydicom.errors.InvalidDicomError:
        return _Skipped(item, "is not a DICOM file (no 'DICM' marker)")
    except Exception as exc:
        if claims:
            raise DicomError(
                f"'{item.name}' is truncated or corrupt DICOM: {type(exc).__name__}: {exc}"
            ) from exc
        return _Skipped(item, "is not a DICOM file (no 'DICM' marker)")
    if not claims:
        # Raw datasets without a preamble are legal but rare: accept only real ones.
        try:
            plausible = "SOPClassUID" in ds and "Rows" in ds and "Columns" in ds
        except Exception:
            plausible = False
        if not plausible:
            return _Skipped(item, "is not a DICOM file (no 'DICM' marker)")
    return cast("Dataset", ds)


def _not_an_image(item: _Item, ds: Header) -> _Skipped | None:
    """Why a DICOM file is set aside (a DICOMDIR, a non-image object), or None."""
    sop_class = str(ds.get("SOPClassUID", "") or "")
    media_class = str(ds.file_meta.get("MediaStorageSOPClassUID", "")) if ds.file_meta else ""
    if media_class == _MEDIA_DIRECTORY or "DirectoryRecordSequence" in ds:
        return _Skipped(item, "is a DICOMDIR (a media index, not an image)")
    if "Rows" in ds or "Image Storage" in _uid_name(sop_class or media_class):
        return None
    if not sop_class and not media_class:
        raise DicomError(
            f"'{item.name}' is truncated or corrupt DICOM: no SOP Class UID "
            f"({len(ds)} elements read)"
        )
    return _Skipped(item, f"is a DICOM {_uid_name(sop_class or media_class)} object, not an image")


def _locate_pixels(fp: IO[bytes], item: _Item, ts: str) -> tuple[int | None, int | None]:
    """Find the Pixel Data value right after the header; detect truncation."""
    start = fp.tell()
    end = fp.seek(0, io.SEEK_END)
    fp.seek(start)
    head = fp.read(12)
    if len(head) < 8:
        raise DicomError(
            f"'{item.name}' has no Pixel Data (7FE0,0010): the file ends after its header "
            f"({end} bytes): truncated, or an image without pixels"
        )
    group, elem = struct.unpack("<HH", head[:4])
    if (group << 16 | elem) not in _PIXEL_TAGS:
        return None, None  # big endian or unusual layout: pydicom decodes it in pass 2
    if ts not in _NATIVE_SYNTAXES:
        return None, None  # encapsulated: the decoder reports damage in pass 2
    if ts == IMPLICIT_LE:
        (length,) = struct.unpack("<I", head[4:8])
        offset = start + 8
    else:
        vr = head[4:6]
        if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN"):
            (length,) = struct.unpack("<I", head[8:12])
            offset = start + 12
        else:
            (length,) = struct.unpack("<H", head[6:8])
            offset = start + 8
    if length == 0xFFFFFFFF:
        return None, None
    if offset + length > end:
        raise DicomError(
            f"'{item.name}' is truncated: its Pixel Data should hold {length} bytes but the "
            f"file ends after {max(end - offset, 0)}"
        )
    return offset, length


def _read_headers(items: list[_Item]) -> tuple[list[_Header], list[_Skipped]]:
    # Sequential on purpose: parsing is pure Python under the GIL, and a thread
    # pool measured about 2x slower here than one thread (bench/bench_load.py).
    results = [_read_header(item) for item in items]
    headers = [r for r in results if isinstance(r, _Header)]
    skipped = [r for r in results if isinstance(r, _Skipped)]
    return headers, skipped


# --------------------------------------------------------------------------- tags


def _text(ds: Header, keyword: str) -> str:
    """A tag as one string; multi-valued tags joined with ``"; "``."""
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    if value is None:
        return ""
    if isinstance(value, MutableSequence | tuple):
        return "; ".join(str(v).strip() for v in value if str(v).strip())
    return str(value).strip()


def _number(ds: Header, keyword: str) -> float | None:
    """A numeric tag as float, or None when absent, empty or not a number."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ds.get(keyword)
            if value is None or value == "":
                return None
            if isinstance(value, MutableSequence | tuple):
                value = value[0]
            out = float(value)
    except (ValueError, TypeError, IndexError):
        return None
    return out if math.isfinite(out) else None


def _numbers(ds: Header, keyword: str, count: int, item: _Item) -> tuple[float, ...]:
    """A required multi-valued numeric tag; DicomError naming the file when unusable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = ds.get(keyword)
            values = tuple(float(v) for v in (raw if raw is not None else ()))
    except (ValueError, TypeError) as exc:
        raise DicomError(f"'{item.name}': {keyword} is not numeric ({exc})") from exc
    if len(values) != count or not all(math.isfinite(v) for v in values):
        what = "is missing" if not values else f"has {len(values)} values, expected {count}"
        raise DicomError(f"'{item.name}': {keyword} {what}")
    return values


def _acquisition_datetime(ds: Header) -> str:
    for date_kw, time_kw in (
        ("AcquisitionDate", "AcquisitionTime"),
        ("SeriesDate", "SeriesTime"),
        ("ContentDate", "ContentTime"),
    ):
        value = iso_datetime(_text(ds, date_kw), _text(ds, time_kw))
        if value:
            return value
    dt = _text(ds, "AcquisitionDateTime")
    return iso_datetime(dt[:8], dt[8:]) if dt else ""


#: Words in ImageType, SeriesDescription, ProtocolName or ManufacturerModelName that name
#: a cone-beam acquisition (Elekta XVI writes "CBCT" in the series description, Varian's
#: iCBCT and Siemens' syngo DynaCT say so in the image type or protocol).
_CONE_BEAM_WORDS = ("CBCT", "CONE BEAM", "CONE-BEAM", "CONEBEAM", "XVI", "ON-BOARD IMAGER")
#: Makers of treatment machines whose CT images are cone-beam (they build no fan-beam
#: diagnostic CT scanner): their CT series are cone-beam CT for image guidance.
_CONE_BEAM_MAKERS = ("VARIAN", "ELEKTA")


def cone_beam_evidence(ds: Header) -> str:
    """Why a CT dataset is cone-beam CT, in words; empty when nothing in the header says so.

    Evidence, in order: a cone-beam word in ImageType, SeriesDescription,
    ProtocolName or ManufacturerModelName; then a manufacturer that builds cone-beam
    CT on treatment machines and no fan-beam diagnostic CT.
    """
    image_type = ds.get("ImageType") or []
    values = [image_type] if isinstance(image_type, str) else list(image_type)
    fields = {
        "ImageType": "\\".join(str(v) for v in values),
        "SeriesDescription": _text(ds, "SeriesDescription"),
        "ProtocolName": _text(ds, "ProtocolName"),
        "ManufacturerModelName": _text(ds, "ManufacturerModelName"),
    }
    for keyword, value in fields.items():
        upper = value.upper()
        for word in _CONE_BEAM_WORDS:
            if word in upper:
                return f"{keyword} {value!r} names a cone-beam acquisition"
    maker = _text(ds, "Manufacturer")
    if any(m in maker.upper() for m in _CONE_BEAM_MAKERS):
        return (
            f"Manufacturer {maker!r} builds cone-beam CT on treatment machines "
            "(no fan-beam diagnostic CT)"
        )
    return ""


def scanner_info(ds: Header) -> ScannerInfo:
    """Scanner and acquisition metadata of one dataset (empty fields where tags are absent)."""
    tube = _number(ds, "XRayTubeCurrentInmA")
    return ScannerInfo(
        manufacturer=_text(ds, "Manufacturer"),
        model=_text(ds, "ManufacturerModelName"),
        station=_text(ds, "StationName"),
        serial=_text(ds, "DeviceSerialNumber"),
        software_versions=_text(ds, "SoftwareVersions"),
        institution=_text(ds, "InstitutionName"),
        kvp=_number(ds, "KVP"),
        tube_current_ma=tube if tube is not None else _number(ds, "XRayTubeCurrent"),
        convolution_kernel=_text(ds, "ConvolutionKernel"),
        slice_thickness_mm=_number(ds, "SliceThickness"),
        acquisition_datetime=_acquisition_datetime(ds),
        series_description=_text(ds, "SeriesDescription"),
        cone_beam_evidence=cone_beam_evidence(ds),
    )


def _is_ct(ds: Header) -> bool:
    return _text(ds, "Modality").upper() == "CT" or str(ds.get("SOPClassUID", "")) in (
        _CT_SOP_CLASSES
    )


# --------------------------------------------------------------------------- grouping


def _group(headers: list[_Header]) -> dict[str, list[_Header]]:
    groups: dict[str, list[_Header]] = {}
    for h in headers:
        groups.setdefault(_text(h.ds, "SeriesInstanceUID"), []).append(h)
    return groups


def _series_info(uid: str, members: list[_Header]) -> SeriesInfo:
    ds = members[0].ds
    return SeriesInfo(
        uid=uid,
        description=_text(ds, "SeriesDescription"),
        n_slices=len(members),
        modality=_text(ds, "Modality"),
        scanner=scanner_info(ds).key,
        study_uid=_text(ds, "StudyInstanceUID"),
    )


def _no_images(
    label: str, items: list[_Item], skipped: list[_Skipped]
) -> DicomError | NoFilesFoundError:
    if len(items) == 1 and skipped:
        return DicomError(f"'{skipped[0].item.name}' {skipped[0].reason}")
    if not items:
        return NoFilesFoundError(f"no files found in {label}")
    examples = "; ".join(f"'{s.item.name}' {s.reason}" for s in skipped[:3])
    return NoFilesFoundError(
        f"no DICOM images found in {label}: {len(skipped)} file(s) skipped ({examples})"
    )


def _scan(source: Source) -> tuple[dict[str, list[_Header]], str]:
    items, label = _collect(source)
    headers, skipped = _read_headers(items)
    if not headers:
        raise _no_images(label, items, skipped)
    return _group(headers), label


def list_series(source: Source) -> list[SeriesInfo]:
    """List the image series in ``source`` (any modality), to pick one for :func:`load_series`.

    Parameters
    ----------
    source : path, zip file, list of paths, or pydicom Dataset(s)
        Same as :func:`load_series`.

    Returns
    -------
    list of SeriesInfo
        CT series first, then by description and UID.

    Raises
    ------
    NoFilesFoundError
        Nothing in ``source`` is a DICOM image.
    DicomError
        A file claims to be DICOM but is truncated or corrupt.
    """
    groups, _ = _scan(source)
    infos = [_series_info(uid, members) for uid, members in groups.items()]
    return sorted(infos, key=lambda s: (s.modality.upper() != "CT", s.description, s.uid))


def _acquisition_key(ds: Header) -> tuple[object, ...]:
    """What series of one acquisition share: study, frame of reference, grid, orientation."""

    def rounded(keyword: str) -> tuple[float, ...]:
        v = ds.get(keyword)
        try:
            return tuple(round(float(x), 3) for x in v) if v is not None else ()
        except (TypeError, ValueError):
            return ()

    return (
        _text(ds, "StudyInstanceUID"),
        _text(ds, "FrameOfReferenceUID"),
        ds.get("Rows"),
        ds.get("Columns"),
        rounded("PixelSpacing"),
        rounded("ImageOrientationPatient"),
    )


def _positions_overlap(members: list[_Header]) -> bool:
    """Whether two images of these series lie at the same position (two reconstructions)."""
    seen: set[tuple[float, ...]] = set()
    for h in members:
        v = h.ds.get("ImagePositionPatient")
        try:
            key = tuple(round(float(x), 2) for x in v) if v is not None else None
        except (TypeError, ValueError):
            key = None
        if key is None or key in seen:
            return True
        seen.add(key)
    return False


def _acquisitions(ct: dict[str, list[_Header]]) -> list[tuple[str, ...]]:
    """CT series grouped into acquisitions.

    An acquisition: same study, frame of reference and grid, and no two images at one
    position (a sequence protocol exported one series per module).
    """
    by_key: dict[tuple[object, ...], list[str]] = {}
    for uid, members in ct.items():
        by_key.setdefault(_acquisition_key(members[0].ds), []).append(uid)
    out: list[tuple[str, ...]] = []
    for uids in by_key.values():
        merged = [h for u in uids for h in ct[u]]
        if len(uids) > 1 and not _positions_overlap(merged):
            out.append(tuple(sorted(uids)))
        else:
            out.extend((u,) for u in sorted(uids))
    return out


def list_acquisitions(source: Source) -> list[tuple[SeriesInfo, ...]]:
    """The CT acquisitions in ``source``: series that belong together, each as a tuple.

    Series of one study and frame of reference with the same image grid and no two
    images at one position are one acquisition (a sequence protocol that exports one
    series per phantom module); every other CT series is an acquisition of its own.

    Parameters
    ----------
    source : path, zip file, list of paths, or pydicom Dataset(s)
        Same as :func:`load_series`.

    Returns
    -------
    list of tuple of SeriesInfo
        Pass ``[s.uid for s in acquisition]`` as ``series_uid=`` to :func:`load_series`.
    """
    groups, _ = _scan(source)
    ct = {uid: m for uid, m in groups.items() if _is_ct(m[0].ds)}
    return [tuple(_series_info(u, ct[u]) for u in acq) for acq in _acquisitions(ct)]


def _not_ct(members: list[_Header]) -> DicomError:
    ds = members[0].ds
    return DicomError(
        f"'{members[0].item.name}' is {_text(ds, 'Modality') or 'no modality'} "
        f"({_uid_name(str(ds.get('SOPClassUID', ''))) or 'unknown SOP class'}), not CT"
    )


def _choose(
    groups: dict[str, list[_Header]], label: str, series_uid: str | Sequence[str] | None
) -> list[_Header]:
    if series_uid is not None:
        wanted = [series_uid] if isinstance(series_uid, str) else list(series_uid)
        missing = [u for u in wanted if u not in groups]
        if missing or not wanted:
            found = ", ".join(sorted(groups)) or "none"
            raise NoFilesFoundError(
                f"series {', '.join(missing) or '(none given)'} not in {label}; "
                f"series found: {found}"
            )
        for u in wanted:
            if not _is_ct(groups[u][0].ds):
                raise _not_ct(groups[u])
        members = [h for u in wanted for h in groups[u]]
        if len(wanted) > 1 and _positions_overlap(members):
            raise SeriesGeometryError(
                f"series {', '.join(wanted)} cannot be read as one acquisition: "
                "images of two of them lie at the same position"
            )
        return members
    ct = {uid: m for uid, m in groups.items() if _is_ct(m[0].ds)}
    if not ct:
        first = next(iter(groups.values()))
        raise DicomError(f"{_not_ct(first)}; no CT series in {label}")
    acquisitions = _acquisitions(ct)
    if len(acquisitions) > 1:
        infos = sorted((_series_info(u, m) for u, m in ct.items()), key=lambda s: s.uid)
        listing = "; ".join(
            f"{s.uid} ({s.description or 'no description'}, {s.n_slices} slices)" for s in infos
        )
        raise AmbiguousSeriesError(
            f"{len(ct)} CT series in {label} that are not one acquisition; choose one "
            f"(--series UID on the command line, series_uid= in Python): {listing}",
            series={s.uid: s.description for s in infos},
        )
    return [h for u in acquisitions[0] for h in ct[u]]


# --------------------------------------------------------------------------- geometry


def _orientation_label(normal: npt.NDArray[np.float64]) -> tuple[str, float]:
    """Name the plane of a slice normal and its angle (degrees) from the z axis."""
    tilt = math.degrees(math.acos(min(1.0, abs(float(normal[2])))))
    axis = int(np.argmax(np.abs(normal)))
    angle = math.degrees(math.acos(min(1.0, abs(float(normal[axis])))))
    plane = ("sagittal", "coronal", "axial")[axis]
    if angle > 10.0:
        plane = f"oblique (nearest {plane})"
    return plane, tilt


def _geometry(
    members: list[_Header],
) -> tuple[list[_Header], npt.NDArray[np.float64], tuple[float, ...], npt.NDArray[np.float64]]:
    """Check orientation and sort slices along the normal; return sorted headers."""
    first = members[0]
    iop = _numbers(first.ds, "ImageOrientationPatient", 6, first.item)
    row, col = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(row, col)
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        raise SeriesGeometryError(
            f"'{first.item.name}': ImageOrientationPatient {iop} has parallel row and column"
        )
    normal /= norm
    plane, tilt = _orientation_label(normal)
    if tilt > MAX_AXIAL_TILT_DEG:
        raise SeriesGeometryError(
            f"'{first.item.name}': series is oriented {plane} (slice normal "
            f"{np.round(normal, 3).tolist()}, {tilt:.1f}° from the patient z axis); only axial "
            f"series (tilt up to {MAX_AXIAL_TILT_DEG:g}°) are supported"
        )
    for h in members[1:]:
        other = _numbers(h.ds, "ImageOrientationPatient", 6, h.item)
        if not np.allclose(other, iop, atol=1e-4):
            raise SeriesGeometryError(
                f"'{h.item.name}': ImageOrientationPatient {other} differs from "
                f"'{first.item.name}' {iop}: mixed orientations in one series"
            )
    ipp = np.array([_numbers(h.ds, "ImagePositionPatient", 3, h.item) for h in members])
    positions = ipp @ normal
    order = np.argsort(positions, kind="stable")
    members = [members[i] for i in order]
    return members, positions[order], iop, ipp[order]


def _check_steps(members: list[_Header], positions: npt.NDArray[np.float64]) -> float | None:
    """Slice spacing: the most common step. Duplicates raise, gaps warn."""
    if len(positions) < 2:
        return None
    steps = np.diff(positions)
    dup = np.flatnonzero(steps < DUPLICATE_TOLERANCE_MM)
    if dup.size:
        i = int(dup[0])
        raise SeriesGeometryError(
            f"duplicate slice position {positions[i]:.3f} mm: '{members[i].item.name}' and "
            f"'{members[i + 1].item.name}' ({dup.size} duplicate(s) in the series)"
        )
    rounded = np.round(steps, 2)
    values, counts = np.unique(rounded, return_counts=True)
    spacing = float(np.median(steps[rounded == values[int(np.argmax(counts))]]))
    odd = np.flatnonzero(np.abs(steps - spacing) > GAP_TOLERANCE * spacing + 1e-3)
    for i in odd[:5]:
        step = float(steps[i])
        kind = (
            f"a gap of {step:.3f} mm (about {round(step / spacing) - 1} missing slice(s))"
            if step > spacing
            else f"an uneven step of {step:.3f} mm"
        )
        warnings.warn(
            SliceGapWarning(
                f"{kind} between positions {positions[i]:.3f} and {positions[i + 1]:.3f} mm "
                f"('{members[i].item.name}' -> '{members[i + 1].item.name}'); spacing used: "
                f"{spacing:.3f} mm (most common step)"
            ),
            stacklevel=3,
        )
    if odd.size > 5:
        warnings.warn(
            SliceGapWarning(f"{odd.size - 5} more irregular step(s) in the series"), stacklevel=3
        )
    return spacing


def _check_frames(members: list[_Header]) -> tuple[int, int, tuple[float, float]]:
    """Single-frame grayscale slices of one size and one pixel spacing."""
    first = members[0]
    shape = (int(first.ds.get("Rows", 0) or 0), int(first.ds.get("Columns", 0) or 0))
    for h in members:
        ds = h.ds
        frames = _number(ds, "NumberOfFrames")
        if frames is not None and frames != 1:
            raise DicomError(
                f"'{h.item.name}' is a multi-frame image ({int(frames)} frames, "
                f"{_uid_name(str(ds.get('SOPClassUID', '')))}); only single-frame CT slices "
                "are supported"
            )
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        if spp != 1:
            raise DicomError(f"'{h.item.name}' has {spp} samples per pixel: not a grayscale CT")
        if h.item.dataset is not None and "PixelData" not in ds:
            raise DicomError(f"'{h.item.name}' has no Pixel Data (7FE0,0010)")
        this = (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))
        if this != shape:
            raise SeriesGeometryError(
                f"mixed image sizes: '{h.item.name}' is {this[0]}x{this[1]} but "
                f"'{first.item.name}' is {shape[0]}x{shape[1]}"
            )
    if shape[0] < 1 or shape[1] < 1:
        raise DicomError(f"'{first.item.name}' has no image size (Rows/Columns missing)")
    if shape[0] * shape[1] > MAX_SLICE_PIXELS:
        raise DicomError(
            f"'{first.item.name}' claims {shape[0]}x{shape[1]} pixels per slice: more than "
            f"the {MAX_SLICE_PIXELS:,} a CT slice can have; refused before reading"
        )
    total = 4 * shape[0] * shape[1] * len(members)
    if total > MAX_VOLUME_BYTES:
        raise DicomError(
            f"{len(members)} slices of {shape[0]}x{shape[1]} need {total / 1024**3:.1f} GiB: "
            f"more than the {MAX_VOLUME_BYTES / 1024**3:.0f} GiB limit; load fewer slices"
        )
    pixel_spacing = _numbers(first.ds, "PixelSpacing", 2, first.item)
    for h in members[1:]:
        ps = _numbers(h.ds, "PixelSpacing", 2, h.item)
        if not np.allclose(ps, pixel_spacing, atol=1e-4):
            raise SeriesGeometryError(
                f"mixed pixel spacing: '{h.item.name}' has {ps} mm but "
                f"'{first.item.name}' has {pixel_spacing} mm"
            )
    return shape[0], shape[1], (pixel_spacing[0], pixel_spacing[1])


def _rescale(h: _Header, assume: tuple[float, float] | None) -> tuple[float, float]:
    ds = h.ds
    present = {kw: kw in ds for kw in ("RescaleSlope", "RescaleIntercept")}
    if not any(present.values()) and assume is not None:
        return float(assume[0]), float(assume[1])
    out = []
    for kw, tag in (("RescaleSlope", "(0028,1053)"), ("RescaleIntercept", "(0028,1052)")):
        if not present[kw]:
            raise DicomError(
                f"'{h.item.name}': {kw} {tag} is missing, so stored values cannot be "
                "converted to HU; pass assume_rescale=(slope, intercept) to load anyway"
            )
        value = _number(ds, kw)
        if value is None:
            raw = ds[kw].value if kw in ds else None
            raise DicomError(f"'{h.item.name}': {kw} {tag} is not a number: {raw!r}")
        out.append(value)
    return out[0], out[1]


# --------------------------------------------------------------------------- pass 2


def _native_dtype(ds: Header, item: _Item) -> np.dtype[Any]:
    bits = int(ds.get("BitsAllocated", 16) or 16)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    if bits not in (8, 16, 32):
        raise DicomError(f"'{item.name}': BitsAllocated {bits} is not supported for CT")
    return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")


def _fix_unused_bits(raw: npt.NDArray[Any], ds: Header) -> npt.NDArray[Any]:
    """Ignore bits above BitsStored, as pydicom does (PS3.5 8.1.1), vectorised."""
    allocated = raw.dtype.itemsize * 8
    stored = int(ds.get("BitsStored", allocated) or allocated)
    shift = allocated - stored
    if 0 < shift < allocated:
        raw = np.right_shift(np.left_shift(raw, shift), shift)
    return raw


def _is_fast(h: _Header) -> bool:
    """Native pixels read with numpy; everything else goes through pydicom's decoders."""
    if h.value_offset is not None and h.value_length is not None:
        return True
    return h.item.dataset is not None and h.transfer_syntax in _NATIVE_SYNTAXES


def _native_pixels(h: _Header, rows: int, cols: int) -> npt.NDArray[Any]:
    """Stored values of an uncompressed slice, straight from the Pixel Data bytes."""
    dtype = _native_dtype(h.ds, h.item)
    count = rows * cols
    memory = h.item.dataset
    have = len(memory.PixelData) if memory is not None else cast(int, h.value_length)
    if have < count * dtype.itemsize:
        raise DicomError(
            f"'{h.item.name}': Pixel Data holds {have} bytes, a {rows}x{cols} image needs "
            f"{count * dtype.itemsize}"
        )
    if memory is not None:
        flat = np.frombuffer(memory.PixelData, dtype, count)
    elif h.item.path is not None:
        with open(h.item.path, "rb") as fp:
            fp.seek(cast(int, h.value_offset))
            flat = np.fromfile(fp, dtype=dtype, count=count)
    else:
        flat = np.frombuffer(cast(bytes, h.item.data), dtype, count, h.value_offset or 0)
    if flat.size < count:
        raise DicomError(f"'{h.item.name}' is truncated inside its Pixel Data")
    return _fix_unused_bits(flat.reshape(rows, cols), h.ds)


def _codec_pixels(
    name: str, path: Path | None, data: bytes | None, dataset: Dataset | None, ts: str
) -> npt.NDArray[Any]:
    """Decode one compressed (or unusual) slice with pydicom; picklable for processes."""
    try:
        if dataset is None:
            with open(path, "rb") if path is not None else io.BytesIO(cast(bytes, data)) as fp:
                dataset = _pydicom().dcmread(fp)
        return dataset.pixel_array
    except Exception as exc:
        raise DicomError(
            f"'{name}': cannot decode its pixel data ({_uid_name(ts)}): {type(exc).__name__}: {exc}"
        ) from None


def _store(
    h: _Header, raw: npt.NDArray[Any], out: npt.NDArray[np.float32], slope: float, intercept: float
) -> None:
    """Rescale stored values into ``out`` (a view of the volume), vectorised."""
    if raw.shape != out.shape:
        raise DicomError(f"'{h.item.name}': decoded image is {raw.shape}, expected {out.shape}")
    # One pass per slice, straight into the volume (no temporary).
    if slope == 1.0:
        np.add(raw, np.float32(intercept), out=out, casting="unsafe")
    else:
        np.multiply(raw, np.float32(slope), out=out, casting="unsafe")
        if intercept != 0.0:
            out += np.float32(intercept)


def _workers(workers: int | None) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return workers


def _progress(iterable: Iterable[Any], total: int, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="Decoding slices", unit="slice") as bar:
        for value in iterable:
            yield value
            bar.update(1)


#: Fewest codec-decoded slices worth starting worker processes for.
MIN_SLICES_FOR_PROCESSES = 16


def _decode_all(
    members: list[_Header],
    hu: npt.NDArray[np.float32],
    rescale: list[tuple[float, float]],
    workers: int,
    progress: bool,
) -> None:
    """Fill ``hu``: native slices in this thread, codec slices in processes when many.

    Uncompressed slices are one read and one vectorised rescale each; threads gave
    them nothing on 2 cores (measured: 0.243 s with a pool vs 0.218 s without for
    300 slices 512²), so they are read here while worker processes decode the codec
    slices, whose decoders hold the GIL.
    """
    rows, cols = hu.shape[1:]
    fast = [k for k, h in enumerate(members) if _is_fast(h)]
    codec = [k for k, h in enumerate(members) if not _is_fast(h)]

    def native(k: int) -> None:
        _store(members[k], _native_pixels(members[k], rows, cols), hu[k], *rescale[k])

    def args(k: int) -> tuple[Any, ...]:
        h = members[k]
        return (h.item.name, h.item.path, h.item.data, h.item.dataset, h.transfer_syntax)

    processes: ProcessPoolExecutor | None = None
    try:
        # Processes first: they fork before this call starts any thread of its own.
        if workers > 1 and len(codec) >= MIN_SLICES_FOR_PROCESSES:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            processes = ProcessPoolExecutor(
                max_workers=min(workers, len(codec)),
                mp_context=multiprocessing.get_context("fork"),
            )
            decoded: Iterable[npt.NDArray[Any]] = processes.map(
                _codec_pixels, *zip(*(args(k) for k in codec), strict=True)
            )
        else:
            decoded = (_codec_pixels(*args(k)) for k in codec)
        natives: Iterable[None] = map(native, fast)

        def store(k: int, raw: npt.NDArray[Any]) -> int:
            _store(members[k], raw, hu[k], *rescale[k])
            return k

        stored = itertools.starmap(store, zip(codec, decoded, strict=True))
        for _ in _progress(itertools.chain(natives, stored), len(members), progress):
            pass
    finally:
        if processes is not None:
            processes.shutdown(cancel_futures=True)


def load_series(
    source: Source,
    *,
    series_uid: str | Sequence[str] | None = None,
    workers: int | None = None,
    progress: bool = False,
    assume_rescale: tuple[float, float] | None = None,
) -> Volume:
    """Load one CT series as a float32 HU :class:`Volume`.

    Parameters
    ----------
    source : str, os.PathLike, pydicom Dataset, or a sequence of them
        A folder (searched recursively), a zip archive, one file, a list of
        paths (files or folders) or in-memory pydicom datasets. Files that are
        not DICOM images (``README.txt``, ``DICOMDIR``) are skipped when images
        exist; a file that claims DICOM and is truncated is an error.
    series_uid : str or sequence of str, optional
        SeriesInstanceUID to load when ``source`` holds several CT series (see
        :func:`list_series`); several UIDs are read as one acquisition. Without it,
        series of one acquisition (:func:`list_acquisitions`: a sequence protocol's
        one series per module) are read together.
    workers : int, optional
        Parallel decoders (default: one per core; ``1`` runs everything in
        this thread). Uncompressed slices are read in this thread (one read and
        one vectorised rescale each: threads were measured to gain nothing);
        compressed slices (JPEG 2000, JPEG lossless ...) are decoded in worker
        processes when there are at least ``MIN_SLICES_FOR_PROCESSES`` of them,
        because the codecs hold the GIL.
    progress : bool
        Show a tqdm bar while slices decode.
    assume_rescale : (slope, intercept), optional
        Used only for slices where *both* RescaleSlope and RescaleIntercept are
        absent; without it such slices raise :class:`DicomError`.

    Returns
    -------
    Volume
        HU ``(z, y, x)`` sorted by increasing position along the slice normal;
        ``spacing`` ``(dz, dy, dx)`` with dz the most common step between
        positions (SliceThickness, else SpacingBetweenSlices, for one slice).

    Raises
    ------
    NoFilesFoundError
        Nothing usable in ``source``, or ``series_uid`` not found.
    AmbiguousSeriesError
        Several CT acquisitions and no ``series_uid``.
    DicomError
        Not DICOM, truncated, not CT, no pixel data, missing or non-numeric
        rescale tags, undecodable pixels.
    SeriesGeometryError
        Non-axial orientation, mixed orientations, sizes or pixel spacing,
        duplicate positions.

    Warns
    -----
    SliceGapWarning
        Positions jump by more than the most common step (missing slices).
    """
    groups, label = _scan(source)
    members = _choose(groups, label, series_uid)
    rows, cols, (dy, dx) = _check_frames(members)
    members, positions, iop, ipp = _geometry(members)
    rescale = [_rescale(h, assume_rescale) for h in members]
    dz = _check_steps(members, positions)
    if dz is None:
        ds = members[0].ds
        dz = _number(ds, "SliceThickness") or _number(ds, "SpacingBetweenSlices")
        if dz is None or dz <= 0:
            raise SeriesGeometryError(
                f"'{members[0].item.name}': a single slice needs SliceThickness or "
                "SpacingBetweenSlices to give the slice spacing"
            )

    hu = np.empty((len(members), rows, cols), dtype=np.float32)
    _decode_all(members, hu, rescale, _workers(workers), progress)

    first = members[0].ds
    uids = sorted({_text(h.ds, "SeriesInstanceUID") for h in members})
    return Volume(
        hu=hu,
        spacing=(float(dz), float(dy), float(dx)),
        origin=(float(ipp[0, 0]), float(ipp[0, 1]), float(ipp[0, 2])),
        orientation=tuple(float(v) for v in iop),
        slice_positions=tuple(float(p) for p in positions),
        scanner=scanner_info(first),
        series_uid="+".join(uids),
        study_uid=_text(first, "StudyInstanceUID"),
        sources=tuple(h.item.name for h in members),
    )


# --------------------------------------------------------------------------- writing


def _stored_range(hu: npt.NDArray[np.float32]) -> tuple[float, float]:
    """RescaleSlope and RescaleIntercept that fit ``hu`` into int16."""
    lo, hi = float(np.min(hu)), float(np.max(hu))
    if lo + 1024 >= -32768 and hi + 1024 <= 32767:
        return 1.0, -1024.0
    if hi - lo <= 65000:
        return 1.0, float(round((hi + lo) / 2))
    return (hi - lo) / 65000, (hi + lo) / 2


def _split(text: str) -> str | list[str]:
    parts = [p.strip() for p in text.split(";") if p.strip()]
    return parts if len(parts) > 1 else (parts[0] if parts else "")


def _ds(value: float) -> DSfloat:
    """A decimal string value of at most 16 characters."""
    from pydicom.valuerep import DSfloat

    return DSfloat(float(value), auto_format=True)


def _dicom_date_time(iso: str) -> tuple[str, str]:
    date, _, time = iso.partition("T")
    return date.replace("-", ""), time.replace(":", "")


def _uid(value: str, *entropy: str) -> str:
    _pydicom()
    from pydicom.uid import UID, generate_uid

    if value and UID(value).is_valid:
        return UID(value)
    return generate_uid(entropy_srcs=list(entropy)) if entropy[0] else generate_uid()


def write_series(
    volume: Volume,
    folder: PathLike,
    *,
    patient_name: str = "NOCTIS^PHANTOM",
    compress: bool = False,
) -> list[Path]:
    """Write ``volume`` as a CT Image Storage series, one file per slice.

    Stored values are int16 with RescaleSlope 1 and RescaleIntercept -1024 (or
    another intercept, then slope, that fits the HU range). UIDs derive
    deterministically from ``volume.series_uid`` when it is set (a
    ``series_uid`` that is not a valid UID is hashed into one). Every
    :class:`ScannerInfo` field is written back into its tag.

    Parameters
    ----------
    volume : Volume
        The HU volume; ``slice_positions`` place each slice along the normal
        from ``origin``.
    folder : path
        Created if needed; files are ``CT00000.dcm``, ``CT00001.dcm`` ...
    patient_name : str
        PatientName (and, upper-cased without ``^``, PatientID).
    compress : bool
        JPEG 2000 lossless instead of explicit VR little endian (RLE lossless
        for images under 32 pixels a side, which OpenJPEG cannot encode).

    Returns
    -------
    list of Path
        The files written, in slice order.
    """
    _pydicom()
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    hu = np.asarray(volume.hu, dtype=np.float32)
    if not np.all(np.isfinite(hu)):
        raise DicomError("cannot write a volume with NaN or infinite HU values")
    series = _series_tags(volume, hu, patient_name)
    paths: list[Path] = []
    for k in range(hu.shape[0]):
        ds = _slice_dataset(series, k)
        _set_pixels(ds, hu[k], series, compress)
        path = out_dir / f"CT{k:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass(frozen=True)
class _SeriesTags:
    """What every slice of a series being written shares."""

    volume: Volume
    patient_name: str
    series_uid: str
    study_uid: str
    frame_uid: str
    date: str
    time: str
    orientation: npt.NDArray[np.float64]
    normal: npt.NDArray[np.float64]
    origin: npt.NDArray[np.float64]
    positions: npt.NDArray[np.float64]
    slope: float
    intercept: float


def _series_tags(volume: Volume, hu: npt.NDArray[np.float32], patient_name: str) -> _SeriesTags:
    """The UIDs, dates, geometry and stored-value rescale of a series to write."""
    seed = volume.series_uid
    iop = np.asarray(volume.orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    normal /= np.linalg.norm(normal)
    date, time = _dicom_date_time(volume.scanner.acquisition_datetime)
    slope, intercept = _stored_range(hu)
    return _SeriesTags(
        volume=volume,
        patient_name=patient_name,
        series_uid=_uid(seed, seed, "series"),
        study_uid=_uid(volume.study_uid, seed, "study"),
        frame_uid=_uid("", seed, "frame-of-reference"),
        date=date,
        time=time,
        orientation=iop,
        normal=normal,
        origin=np.asarray(volume.origin, dtype=np.float64),
        positions=np.asarray(volume.slice_positions, dtype=np.float64),
        slope=slope,
        intercept=intercept,
    )


def _slice_dataset(series: _SeriesTags, k: int) -> Dataset:
    """Slice ``k``'s data set, every tag but the pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    seed = series.volume.series_uid
    sop_uid = generate_uid(entropy_srcs=[seed, "sop", str(k)]) if seed else generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    _set_patient_and_study(ds, series)
    ds.InstanceNumber = k + 1
    _set_scanner(ds, series)
    _set_geometry(ds, series, k)
    return ds


def _set_patient_and_study(ds: Dataset, series: _SeriesTags) -> None:
    """Patient, study and series identity, and the study's dates."""
    ds.PatientName = series.patient_name
    ds.PatientID = series.patient_name.replace("^", "_").upper()
    ds.StudyInstanceUID = series.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.FrameOfReferenceUID = series.frame_uid
    ds.PositionReferenceIndicator = ""
    # type 2 attributes of the Patient and General Study modules: present, empty when
    # unknown (derived objects such as a DICOM SEG copy them from their source images)
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    if series.date:
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = series.date
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series.time


def _set_scanner(ds: Dataset, series: _SeriesTags) -> None:
    """Every :class:`ScannerInfo` field in its tag."""
    sc = series.volume.scanner
    dz = series.volume.spacing[0]
    ds.Manufacturer = sc.manufacturer
    ds.ManufacturerModelName = sc.model
    ds.StationName = sc.station
    ds.DeviceSerialNumber = sc.serial
    ds.SoftwareVersions = _split(sc.software_versions)
    ds.InstitutionName = sc.institution
    if sc.kvp is not None:
        ds.KVP = _ds(sc.kvp)
    if sc.tube_current_ma is not None:
        ds.XRayTubeCurrent = round(sc.tube_current_ma)
        ds.XRayTubeCurrentInmA = float(sc.tube_current_ma)
    ds.ConvolutionKernel = _split(sc.convolution_kernel)
    ds.SliceThickness = _ds(dz if sc.slice_thickness_mm is None else sc.slice_thickness_mm)
    ds.SpacingBetweenSlices = _ds(dz)
    ds.SeriesDescription = sc.series_description


def _set_geometry(ds: Dataset, series: _SeriesTags, k: int) -> None:
    """Slice ``k``'s position and orientation, and the pixel grid."""
    positions = series.positions
    _, dy, dx = series.volume.spacing
    position = series.origin + (positions[k] - positions[0]) * series.normal
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v) for v in series.orientation]
    ds.SliceLocation = _ds(positions[k])
    ds.PixelSpacing = [_ds(dy), _ds(dx)]


def _set_pixels(
    ds: Dataset, hu: npt.NDArray[np.float32], series: _SeriesTags, compress: bool
) -> None:
    """A slice's stored values (int16 and its rescale), compressed on request."""
    from pydicom.uid import JPEG2000Lossless, RLELossless

    ds.Rows, ds.Columns = hu.shape[0], hu.shape[1]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = _ds(series.slope)
    ds.RescaleIntercept = _ds(series.intercept)
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    exact = (hu.astype(np.float64) - series.intercept) / series.slope
    stored = np.clip(np.rint(exact), -32768, 32767).astype("<i2")
    ds.PixelData = stored.tobytes()
    if compress:
        # OpenJPEG's 6 resolution levels need 32+ pixels a side; RLE below that. Lossless:
        # the same SOP instance, so its derived UID stays (pydicom would make a random one)
        small = min(stored.shape) < 32
        syntax = RLELossless if small else JPEG2000Lossless
        ds.compress(syntax, stored, generate_instance_uid=False)
