"""The header of a common CT file, read without importing pydicom.

Importing pydicom costs a fresh ``noctis-lab hu analyze`` about a fifth of a second
(its pixel-handler and codec plugins are imported with it), and parsing every element
of every header into a :class:`pydicom.Dataset` another tenth: more than loading the
pixels. Almost every CT file is a Part 10 file (preamble and ``DICM``) in a
little-endian transfer syntax, and the loader reads about forty of its elements. This
module reads those files: it walks the elements up to the Pixel Data, keeps the raw
bytes of the elements in :data:`ELEMENTS` (sequences and everything else are skipped
by their lengths, nested undefined-length items included) and converts a value only
when it is asked for.

It declines — :func:`read_header` returns ``None`` and the loader reads the file with
pydicom, as before — whenever the file is not that common case: no ``DICM`` marker,
big-endian or deflated transfer syntax, a character set it does not decode (ISO 2022
code extensions), an element running past the end of the file, or anything else out of
order. It never guesses: a file it reads gives the same values as pydicom's
(``tests/dicom/test_header.py`` compares both on pydicom's own test files and the real
scans).
"""

from __future__ import annotations

import codecs
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Final

__all__ = ["ELEMENTS", "META_ELEMENTS", "HeaderValue", "LeanDataset", "read_header"]

EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"
IMPLICIT_LE: Final = "1.2.840.10008.1.2"
_DEFLATED: Final = "1.2.840.10008.1.2.1.99"
_BIG_ENDIAN: Final = "1.2.840.10008.1.2.2"

#: Elements of the data set the loader reads: keyword -> (tag, VR), as in the DICOM
#: data dictionary (PS3.6 section 6; checked against pydicom's dictionary in the tests).
ELEMENTS: Final[Mapping[str, tuple[int, str]]] = {
    "DirectoryRecordSequence": (0x00041220, "SQ"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "SeriesDate": (0x00080021, "DA"),
    "AcquisitionDate": (0x00080022, "DA"),
    "ContentDate": (0x00080023, "DA"),
    "AcquisitionDateTime": (0x0008002A, "DT"),
    "SeriesTime": (0x00080031, "TM"),
    "AcquisitionTime": (0x00080032, "TM"),
    "ContentTime": (0x00080033, "TM"),
    "Modality": (0x00080060, "CS"),
    "Manufacturer": (0x00080070, "LO"),
    "InstitutionName": (0x00080080, "LO"),
    "StationName": (0x00081010, "SH"),
    "SeriesDescription": (0x0008103E, "LO"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "SliceThickness": (0x00180050, "DS"),
    "KVP": (0x00180060, "DS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "DeviceSerialNumber": (0x00181000, "LO"),
    "SoftwareVersions": (0x00181020, "LO"),
    "ProtocolName": (0x00181030, "LO"),
    "XRayTubeCurrent": (0x00181151, "IS"),
    "ConvolutionKernel": (0x00181210, "SH"),
    "XRayTubeCurrentInmA": (0x00189330, "FD"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "SamplesPerPixel": (0x00280002, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
}
#: Elements of the file meta information (group 0002) the loader reads.
META_ELEMENTS: Final[Mapping[str, tuple[int, str]]] = {
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
}
_VR_BY_TAG: Final = {tag: vr for tag, vr in (*ELEMENTS.values(), *META_ELEMENTS.values())}

#: Explicit-VR value representations with a 2-byte reserved field and a 4-byte length.
_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_PIXEL_TAGS: Final = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED: Final = 0xFFFFFFFF
#: Single-valued text VRs (a backslash is text, PS3.5 6.2).
_SINGLE_TEXT: Final = frozenset({"LT", "ST", "UT", "UR"})
#: Text VRs whose characters follow the Specific Character Set (the others are ASCII).
_CHARSET_VRS: Final = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_BINARY: Final = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
#: Specific Character Set terms with a single-byte or UTF-8 codec (PS3.3 C.12.1.1.2);
#: ISO 2022 code extensions ("ISO 2022 IR ...") are left to pydicom.
_CHARSETS: Final = {
    "": "ascii",
    "ISO_IR 6": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 166": "tis_620",
    "ISO_IR 192": "utf_8",
    "GB18030": "gb18030",
    "GBK": "gbk",
}
#: Largest header read (bytes before the Pixel Data); a larger one is left to pydicom.
MAX_HEADER_BYTES: Final = 64 * 1024**2
_CHUNK: Final = 64 * 1024


class _Decline(Exception):
    """The file is not the common case: read it with pydicom."""


@dataclass(frozen=True)
class HeaderValue:
    """An element as ``ds[keyword]`` gives it (only its ``value`` is used)."""

    value: Any


class LeanDataset:
    """The elements of :data:`ELEMENTS` of one file; read-only, converted on access.

    Offers the part of :class:`pydicom.Dataset` the loader uses: ``get``, ``in``,
    ``ds[keyword].value``, ``len``, ``file_meta`` and ``is_implicit_VR``. Values are
    what pydicom gives, with surrounding spaces removed: text as ``str``, numbers (DS,
    IS and binary) as ``float``/``int``, several values as a ``list``, an empty value as
    ``""`` (text, DS, IS) or ``None`` (binary). Only the keywords of :data:`ELEMENTS`
    (or :data:`META_ELEMENTS` for ``file_meta``) may be asked for.
    """

    __slots__ = ("_encoding", "_keywords", "_raw", "file_meta", "is_implicit_VR")

    def __init__(
        self,
        raw: Mapping[int, tuple[str, bytes]],
        keywords: Mapping[str, tuple[int, str]],
        *,
        encoding: str = "ascii",
        implicit: bool = False,
        file_meta: LeanDataset | None = None,
    ) -> None:
        self._raw = dict(raw)
        self._keywords = keywords
        self._encoding = encoding
        self.is_implicit_VR = implicit
        self.file_meta = file_meta

    def _tag(self, keyword: str) -> int:
        try:
            return self._keywords[keyword][0]
        except KeyError:
            raise KeyError(
                f"{keyword!r} is not read by the lean header reader; add it to ELEMENTS"
            ) from None

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and self._tag(keyword) in self._raw

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, keyword: str) -> HeaderValue:
        tag = self._tag(keyword)
        if tag not in self._raw:
            raise KeyError(keyword)
        return HeaderValue(_convert(*self._raw[tag], self._encoding))

    def get(self, keyword: str, default: Any = None) -> Any:
        """The value of ``keyword``, or ``default`` when the file does not have it."""
        tag = self._tag(keyword)
        if tag not in self._raw:
            return default
        return _convert(*self._raw[tag], self._encoding)


def _convert(vr: str, raw: bytes, encoding: str) -> Any:
    """A raw value as pydicom presents it (stripped text, numbers, lists)."""
    if vr in _BINARY:
        fmt = _BINARY[vr]
        size = struct.calcsize(fmt)
        if not raw:
            return None
        values = struct.unpack(f"<{len(raw) // size}{fmt}", raw[: len(raw) - len(raw) % size])
        return values[0] if len(values) == 1 else list(values)
    if vr == "SQ":
        return []
    text = raw.decode(encoding if vr in _CHARSET_VRS else "ascii", errors="replace")
    parts = [text] if vr in _SINGLE_TEXT else text.split("\\")
    converted = [_text_value(vr, p) for p in parts]
    return converted[0] if len(converted) == 1 else converted


def _text_value(vr: str, text: str) -> Any:
    s = text.strip(" \x00")
    if vr == "DS" and s:
        try:
            value = float(s)
        except ValueError:
            return s  # not a number: the loader says so, naming the tag
        return value if math.isfinite(value) else s
    if vr == "IS" and s:
        try:
            number = float(s)
        except ValueError:
            return s
        return int(number) if number.is_integer() else s
    return s


class _Reader:
    """Reads a file forward in chunks, never past :data:`MAX_HEADER_BYTES`."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.fp = fp
        self.buf = b""
        self.base = fp.tell()

    def need(self, end: int) -> None:
        """Make sure bytes up to ``end`` (relative to the start) are in the buffer."""
        if end > MAX_HEADER_BYTES:
            raise _Decline
        while len(self.buf) < end:
            chunk = self.fp.read(max(_CHUNK, end - len(self.buf)))
            if not chunk:
                raise _Decline  # runs past the end: pydicom names the damage
            self.buf += chunk


def _element_head(r: _Reader, pos: int, implicit: bool) -> tuple[int, bytes, int, int]:
    """Tag, VR (b"" when implicit), value length and value offset of the element at pos."""
    r.need(pos + 8)
    group, elem = struct.unpack_from("<HH", r.buf, pos)
    tag = group << 16 | elem
    if implicit or group == 0xFFFE:
        (length,) = struct.unpack_from("<I", r.buf, pos + 4)
        return tag, b"", length, pos + 8
    vr = r.buf[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        r.need(pos + 12)
        (length,) = struct.unpack_from("<I", r.buf, pos + 8)
        return tag, vr, length, pos + 12
    if not (vr.isalpha() and vr.isupper()):
        raise _Decline  # not an explicit VR: a mislabelled transfer syntax
    (length,) = struct.unpack_from("<H", r.buf, pos + 6)
    return tag, vr, length, pos + 8


def _skip_undefined(r: _Reader, pos: int, implicit: bool) -> int:
    """Offset after an undefined-length sequence (its items and the delimiter)."""
    while True:
        tag, _, length, start = _element_head(r, pos, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise _Decline
        if length != _UNDEFINED:
            pos = start + length
            continue
        pos = start
        while True:  # an undefined-length item: elements up to the item delimiter
            tag, _, length, start = _element_head(r, pos, implicit)
            if tag == _ITEM_END:
                pos = start
                break
            pos = _skip_undefined(r, start, implicit) if length == _UNDEFINED else start + length


def _read_elements(
    r: _Reader, pos: int, implicit: bool, stop: frozenset[int] | None
) -> tuple[dict[int, tuple[str, bytes]], int]:
    """Elements from ``pos`` to a tag in ``stop`` (or the end of group 0002 when None)."""
    found: dict[int, tuple[str, bytes]] = {}
    last = -1
    while True:
        if stop is None:
            r.need(pos + 2)
            if struct.unpack_from("<H", r.buf, pos)[0] != 0x0002:
                return found, pos
        elif len(r.buf) <= pos:
            try:
                r.need(pos + 1)
            except _Decline:
                if pos == len(r.buf):
                    return found, pos  # the file ends here: the loader says "no pixels"
                raise  # the last element ran past the end
        tag, vr_bytes, length, start = _element_head(r, pos, implicit)
        if stop is not None and tag in stop:
            return found, pos
        if tag >> 16 == 0xFFFE:
            raise _Decline  # an item or delimiter at the top level
        if tag <= last:
            raise _Decline  # elements out of order: not a file to read by walking it
        last = tag
        if length == _UNDEFINED:
            pos = _skip_undefined(r, start, implicit or vr_bytes == b"UN")
            if tag in _VR_BY_TAG:
                found[tag] = ("SQ", b"")
            continue
        end = start + length
        if tag in _VR_BY_TAG:
            r.need(end)
            vr = vr_bytes.decode("ascii") if vr_bytes not in (b"", b"UN") else _VR_BY_TAG[tag]
            found[tag] = (vr, r.buf[start:end])
        pos = end


def read_header(fp: IO[bytes]) -> tuple[LeanDataset, int] | None:
    """Read a Part 10 little-endian file's header up to its Pixel Data.

    Parameters
    ----------
    fp : binary file
        Positioned at the start of the file.

    Returns
    -------
    (LeanDataset, int) or None
        The header and the file offset of the Pixel Data element (the end of the
        file when it has none); ``None`` when the file is not the common case and
        must be read with pydicom (see the module docstring). ``fp`` is then back at
        the start.
    """
    start = fp.tell()
    r = _Reader(fp)
    try:
        r.need(132)
        if r.buf[128:132] != b"DICM":
            raise _Decline
        meta_raw, pos = _read_elements(r, 132, False, None)
        meta = LeanDataset(meta_raw, META_ELEMENTS)
        ts = str(meta.get("TransferSyntaxUID", "") or "")
        if not ts or ts in (_DEFLATED, _BIG_ENDIAN):
            raise _Decline
        implicit = ts == IMPLICIT_LE
        if implicit and _looks_explicit(r, pos):
            raise _Decline  # says implicit, is explicit: pydicom sorts that out
        raw, pixel_pos = _read_elements(r, pos, implicit, _PIXEL_TAGS)
        encoding = _encoding(raw.get(ELEMENTS["SpecificCharacterSet"][0]))
    except (_Decline, struct.error, UnicodeDecodeError, RecursionError):
        fp.seek(start)
        return None
    ds = LeanDataset(raw, ELEMENTS, encoding=encoding, implicit=implicit, file_meta=meta)
    return ds, r.base + pixel_pos


def _looks_explicit(r: _Reader, pos: int) -> bool:
    """Whether the element at ``pos`` carries a VR (explicit) though implicit was declared."""
    try:
        r.need(pos + 8)
    except _Decline:
        return False
    vr = r.buf[pos + 4 : pos + 6]
    return vr.isalpha() and vr.isupper()


def _encoding(charset: tuple[str, bytes] | None) -> str:
    """The codec of a Specific Character Set value; declines ISO 2022 code extensions."""
    if charset is None:
        return "ascii"
    terms = [t.strip(" \x00") for t in charset[1].decode("ascii").split("\\")]
    terms = [t for t in terms if t] or [""]
    if len(terms) != 1 or terms[0] not in _CHARSETS:
        raise _Decline
    codec = _CHARSETS[terms[0]]
    codecs.lookup(codec)
    return codec
