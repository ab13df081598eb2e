"""Small CT series written with pydicom, with known ground truth.

Every series is written independently of ``noctis_lab.dicom.write_series`` so
that the loader is tested against plain pydicom output. File names and
InstanceNumber are shuffled so that only ImagePositionPatient can sort them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from _ci import missing_real_part
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SIZE = 32
PIXEL_SPACING = (0.7, 0.8)  # (dy, dx): different, to catch swapped axes
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def testdata(name: str) -> Path:
    """A file from pydicom's test data or pydicom-data, without any download."""
    path = get_testdata_file(name, download=False)
    if path is None:  # pydicom-data is pinned in requirements.txt: in CI this fails
        missing_real_part(f"pydicom test file {name} is not installed (pydicom-data)")
    return Path(str(path))


@dataclass(frozen=True)
class Series:
    """A written series and what loading it must give."""

    folder: Path
    paths: list[Path]  # in slice order (increasing position along the normal)
    hu: np.ndarray  # expected HU, (z, y, x), float64
    positions: np.ndarray  # along the normal, increasing
    ipp: np.ndarray  # ImagePositionPatient per slice, slice order
    series_uid: str
    datasets: list[Dataset]  # slice order


def stored_pixels(k: int, size: int = SIZE) -> np.ndarray:
    """Distinct int16 stored values per slice: a ramp plus the slice index."""
    yy, xx = np.mgrid[:size, :size]
    return (yy * 37 + xx * 3 + k * 101).astype(np.int16)


def ct_dataset(
    k: int,
    position: tuple[float, float, float],
    *,
    orientation: tuple[float, ...] = AXIAL,
    series_uid: str,
    study_uid: str,
    instance: int,
    slope: float = 1.0,
    intercept: float = -1024.0,
    pixels: np.ndarray | None = None,
    description: str = "test series",
    modality: str = "CT",
) -> Dataset:
    """A minimal valid single-frame CT Image Storage dataset."""
    pix = stored_pixels(k) if pixels is None else pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = "TEST^SERIES"
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [round(v, 6) for v in position]
    ds.ImageOrientationPatient = [round(v, 8) for v in orientation]
    ds.PixelSpacing = list(PIXEL_SPACING)
    ds.SliceThickness = 2.5
    ds.Rows, ds.Columns = pix.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.PixelData = pix.astype("<i2").tobytes()
    return ds


def write(ds: Dataset, path: Path) -> Path:
    """Save with a preamble and file meta (explicit VR little endian unless set)."""
    ds.save_as(path, enforce_file_format=True)
    return path


def build_series(
    folder: Path,
    *,
    n: int = 6,
    step: float = 2.5,
    z0: float = -10.0,
    orientation: tuple[float, ...] = AXIAL,
    slopes: list[float] | None = None,
    series_uid: str | None = None,
    description: str = "test series",
    modality: str = "CT",
    skip: tuple[int, ...] = (),
    tweak: Callable[[int, Dataset], Any] | None = None,
    seed: int = 0,
) -> Series:
    """Write ``n`` slices ``step`` mm apart along the normal, shuffled on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    origin = np.array([-11.2, -11.2, 0.0]) + z0 * normal
    kept = [k for k in range(n) if k not in skip]
    names = rng.permutation(len(kept))
    instances = rng.permutation(len(kept)) + 1
    paths, hus, positions, ipps, datasets = [], [], [], [], []
    for j, k in enumerate(kept):
        ipp = origin + k * step * normal
        slope = 1.0 if slopes is None else slopes[k]
        ds = ct_dataset(
            k,
            (float(ipp[0]), float(ipp[1]), float(ipp[2])),
            orientation=orientation,
            series_uid=series_uid,
            study_uid=study_uid,
            instance=int(instances[j]),
            slope=slope,
            description=description,
            modality=modality,
        )
        if tweak is not None:
            tweak(k, ds)
        paths.append(write(ds, folder / f"slice_{names[j]:03d}"))
        hus.append(stored_pixels(k) * slope - 1024.0)
        positions.append(float(ipp @ normal))
        ipps.append(ipp)
        datasets.append(ds)
    return Series(
        folder=folder,
        paths=paths,
        hu=np.stack(hus),
        positions=np.array(positions),
        ipp=np.array(ipps),
        series_uid=series_uid,
        datasets=datasets,
    )


@pytest.fixture
def make_series(tmp_path: Path) -> Callable[..., Series]:
    """Factory: ``make_series(name="s", **options)`` writes a series under tmp_path."""

    def make(name: str = "series", **options: Any) -> Series:
        return build_series(tmp_path / name, **options)

    return make


@pytest.fixture(scope="session")
def axial_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """A clean 6-slice axial series shared by read-only tests."""
    return build_series(tmp_path_factory.mktemp("axial") / "series")


@pytest.fixture
def dicomdir_file() -> Path:
    """pydicom's real DICOMDIR test file."""
    return testdata("DICOMDIR")


def copy_in(src: Path, folder: Path, name: str | None = None) -> Path:
    """Copy a file into ``folder`` (created), keeping or replacing its name."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, folder / (name or src.name)))


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for tests (conftest modules are not imported directly)."""
    return SimpleNamespace(
        ct_dataset=ct_dataset,
        write=write,
        testdata=testdata,
        copy_in=copy_in,
        stored_pixels=stored_pixels,
        build_series=build_series,
        AXIAL=AXIAL,
        PIXEL_SPACING=PIXEL_SPACING,
        SIZE=SIZE,
    )
