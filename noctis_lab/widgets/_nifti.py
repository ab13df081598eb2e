"""A minimal NIfTI-1 writer: a :class:`~noctis_lab.dicom.Volume` as ``.nii`` bytes.

NiiVue (the 3-D and orthogonal view) reads NIfTI. nibabel is not a dependency, and
a single-file NIfTI-1 image with an ``sform`` affine needs only the 348-byte header,
four bytes of (absent) extension flag and the voxels, so it is written here with
numpy and :mod:`struct`.

Geometry: ``Volume.hu`` is ``(z, y, x)`` in C order, which is exactly NIfTI's
column-fastest ``(i, j, k)`` voxel order. DICOM positions are LPS; NIfTI's world
is RAS, so the affine's first two rows are negated.
"""

from __future__ import annotations

import gzip
import struct
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover
    from noctis_lab.dicom._volume import Volume

__all__ = ["affine_ras", "nifti_bytes"]

_HEADER = 348
_VOX_OFFSET = 352
#: numpy dtype -> (NIfTI datatype code, bits per voxel)
_DTYPES: dict[str, tuple[int, int]] = {
    "uint8": (2, 8),
    "int16": (4, 16),
    "int32": (8, 32),
    "float32": (16, 32),
}


def affine_ras(volume: Volume, step: int = 1) -> npt.NDArray[np.float64]:
    """The 4x4 voxel-to-RAS (mm) affine of ``volume``, optionally for a coarser grid.

    Parameters
    ----------
    volume : Volume
        The series; its ``origin``, ``orientation`` and ``spacing`` give the geometry.
    step : int
        In-plane block size of a grid that pools ``step x step`` pixels into one voxel
        (the new voxel centre is the centre of its block).

    Returns
    -------
    numpy.ndarray
        ``(4, 4)`` matrix mapping ``(i, j, k, 1)`` (column, row, slice) to RAS mm.
    """
    row = np.asarray(volume.orientation[:3], dtype=np.float64)
    col = np.asarray(volume.orientation[3:6], dtype=np.float64)
    normal = np.cross(row, col)
    dz, dy, dx = (float(s) for s in volume.spacing)
    origin = np.asarray(volume.origin, dtype=np.float64)
    # block centre of the first coarse voxel, in LPS
    shift = (step - 1) / 2.0
    origin = origin + shift * dx * row + shift * dy * col
    lps = np.eye(4)
    lps[:3, 0] = row * dx * step
    lps[:3, 1] = col * dy * step
    lps[:3, 2] = normal * dz
    lps[:3, 3] = origin
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps


def nifti_bytes(
    data: npt.NDArray[np.generic],
    affine: npt.NDArray[np.float64],
    *,
    description: str = "",
    compress: bool = True,
) -> bytes:
    """Encode a ``(z, y, x)`` array as a single-file NIfTI-1 image.

    Parameters
    ----------
    data : numpy.ndarray
        3-D array ``(z, y, x)``; dtype uint8, int16, int32 or float32.
    affine : numpy.ndarray
        ``(4, 4)`` voxel ``(i, j, k)`` to RAS mm matrix (written as the sform).
    description : str
        Up to 79 ASCII characters stored in the header's ``descrip``.
    compress : bool
        Gzip the file (``.nii.gz``); CT compresses several-fold.

    Returns
    -------
    bytes
        The ``.nii`` (or ``.nii.gz``) file content.

    Raises
    ------
    ValueError
        ``data`` is not 3-D, or its dtype is not one NIfTI-1 stores here.
    """
    arr = np.ascontiguousarray(data)
    if arr.ndim != 3:
        raise ValueError(f"NIfTI writer: data must be 3-D (z, y, x), got shape {arr.shape}")
    key = arr.dtype.name
    if key not in _DTYPES:
        raise ValueError(
            f"NIfTI writer: dtype {key} is not supported; use one of {', '.join(_DTYPES)}"
        )
    code, bitpix = _DTYPES[key]
    nz, ny, nx = arr.shape
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4):
        raise ValueError(f"NIfTI writer: affine must be 4x4, got shape {aff.shape}")
    voxel = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))

    hdr = bytearray(_VOX_OFFSET)
    struct.pack_into("<i", hdr, 0, _HEADER)
    struct.pack_into("<c", hdr, 38, b"r")  # regular
    struct.pack_into("<8h", hdr, 40, 3, nx, ny, nz, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, code, bitpix)
    struct.pack_into("<8f", hdr, 76, 1.0, *voxel.tolist(), 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<f", hdr, 108, float(_VOX_OFFSET))
    struct.pack_into("<ff", hdr, 112, 1.0, 0.0)  # scl_slope, scl_inter
    struct.pack_into("<B", hdr, 123, 2)  # xyzt_units: mm
    text = description.encode("ascii", "replace")[:79]
    hdr[148 : 148 + len(text)] = text
    struct.pack_into("<hh", hdr, 252, 0, 1)  # qform_code unknown, sform_code scanner
    struct.pack_into("<4f", hdr, 280, *aff[0].tolist())
    struct.pack_into("<4f", hdr, 296, *aff[1].tolist())
    struct.pack_into("<4f", hdr, 312, *aff[2].tolist())
    hdr[344:348] = b"n+1\x00"
    raw = bytes(hdr) + arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw
