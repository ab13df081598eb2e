"""write_series: a Volume written as a CT series loads back with the same HU and metadata."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from _dicom_seg import build_seg
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from noctis_lab._errors import DicomError
from noctis_lab.dicom import ScannerInfo, Volume, load_series, write_series

SCANNER = ScannerInfo(
    manufacturer="Noctis",
    model="Synthetic CT",
    station="PHANTOM-1",
    serial="SYN-0001",
    software_versions="noctis 1.0; phantom 2",
    institution="Noctis Lab",
    kvp=120.0,
    tube_current_ma=212.5,
    convolution_kernel="STANDARD; FC13",
    slice_thickness_mm=2.0,
    acquisition_datetime="2026-01-05T08:30:15",
    series_description="Phantom QA",
)


def make_volume(hu: np.ndarray, series_uid: str = "1.2.826.0.1.3680043.8.498.4242") -> Volume:
    return Volume(
        hu=hu.astype(np.float32),
        spacing=(2.5, 0.6, 0.7),
        origin=(-9.6, -11.2, 40.0),
        scanner=SCANNER,
        series_uid=series_uid,
    )


@pytest.fixture(scope="module")
def volume() -> Volume:
    rng = np.random.default_rng(7)
    hu = rng.uniform(-1000.0, 1500.0, size=(5, 24, 28))
    hu[0, 0, 0], hu[1, 0, 0] = -1024.0, 3071.0
    return make_volume(hu)


def test_round_trip_hu_geometry_and_metadata(volume, tmp_path):
    paths = write_series(volume, tmp_path / "out")
    assert [p.name for p in paths] == [f"CT{k:05d}.dcm" for k in range(5)]
    back = load_series(tmp_path / "out")
    assert np.max(np.abs(back.hu - volume.hu)) <= 0.5
    np.testing.assert_array_equal(back.hu, np.rint(volume.hu))
    assert back.spacing == pytest.approx(volume.spacing)
    assert back.origin == pytest.approx(volume.origin)
    assert back.slice_positions == pytest.approx(volume.slice_positions)
    assert back.orientation == pytest.approx(volume.orientation)
    assert back.scanner == volume.scanner
    assert back.series_uid == volume.series_uid


def test_written_files_are_valid_ct(volume, tmp_path):
    path = write_series(volume, tmp_path, patient_name="DOE^JANE")[2]
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert ds.Modality == "CT" and ds.PatientName == "DOE^JANE"
    assert ds.pixel_array.dtype == np.int16
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([-9.6, -11.2, 45.0])
    assert list(ds.SoftwareVersions) == ["noctis 1.0", "phantom 2"]
    assert ds.KVP == 120 and ds.XRayTubeCurrent == 212 and ds.XRayTubeCurrentInmA == 212.5
    assert ds.AcquisitionDate == "20260105" and ds.AcquisitionTime == "083015"


def test_written_series_is_a_source_for_a_dicom_seg(volume, tmp_path):
    """highdicom copies the type 2 patient/study attributes from the source images."""
    sources = [pydicom.dcmread(p) for p in write_series(volume, tmp_path / "ct")]
    mask = np.zeros(volume.hu.shape, dtype=bool)
    mask[:, 5:10, 5:10] = True
    seg = build_seg(sources, {"insert": mask})
    assert seg.PatientSex == "" and seg.StudyID == "1"


def test_uids_are_deterministic_from_series_uid(volume, tmp_path):
    a = write_series(volume, tmp_path / "a")
    b = write_series(volume, tmp_path / "b")
    uids_a = [pydicom.dcmread(p).SOPInstanceUID for p in a]
    uids_b = [pydicom.dcmread(p).SOPInstanceUID for p in b]
    assert uids_a == uids_b and len(set(uids_a)) == 5
    other = write_series(make_volume(volume.hu, "1.2.3.4.5"), tmp_path / "c")
    assert pydicom.dcmread(other[0]).SOPInstanceUID not in uids_a


def test_range_beyond_int16_with_default_intercept(tmp_path):
    hu = np.linspace(-1000.0, 40000.0, 5 * 8 * 8).reshape(5, 8, 8)
    back = load_series(write_series(make_volume(hu), tmp_path))
    assert np.max(np.abs(back.hu - hu)) <= 0.5
    assert float(pydicom.dcmread(tmp_path / "CT00000.dcm").RescaleIntercept) != -1024.0


def test_compressed_round_trip(tmp_path):
    hu = np.random.default_rng(3).uniform(-1000.0, 2000.0, size=(3, 40, 36))
    volume = make_volume(hu)
    paths = write_series(volume, tmp_path, compress=True)
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == JPEG2000Lossless
    np.testing.assert_array_equal(load_series(tmp_path).hu, np.rint(volume.hu))


def test_compression_keeps_the_derived_uids(volume, tmp_path):
    # lossless compression changes no pixel: the SOP instance stays the same, and its UID
    # derives from the series UID like the uncompressed one's (pydicom's compress makes
    # a random one unless told not to)
    def sop_uids(folder, compress):
        paths = write_series(volume, tmp_path / folder, compress=compress)
        return [
            (ds.SOPInstanceUID, ds.file_meta.MediaStorageSOPInstanceUID)
            for ds in map(pydicom.dcmread, paths)
        ]

    plain = sop_uids("plain", False)
    assert sop_uids("a", True) == sop_uids("b", True) == plain
    assert all(a == b for a, b in plain)


def test_compressed_small_images_use_rle(volume, tmp_path):
    paths = write_series(volume, tmp_path, compress=True)
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(load_series(tmp_path).hu, np.rint(volume.hu))


def test_many_compressed_slices_decode_in_worker_processes(tmp_path):
    from noctis_lab.dicom import _load

    n = _load.MIN_SLICES_FOR_PROCESSES
    hu = np.random.default_rng(5).uniform(-1000.0, 1000.0, size=(n, 16, 16))
    volume = make_volume(hu)
    paths = write_series(volume, tmp_path, compress=True)
    parallel = load_series(tmp_path, workers=2)
    np.testing.assert_array_equal(parallel.hu, load_series(tmp_path, workers=1).hu)
    np.testing.assert_array_equal(parallel.hu, np.rint(volume.hu))
    # a damaged compressed slice is reported from the worker, naming the file
    data = paths[5].read_bytes()
    paths[5].write_bytes(data[: len(data) - 200] + b"\xff" * 200)
    with pytest.raises(DicomError, match=r"CT00005\.dcm': cannot decode its pixel data \(RLE"):
        load_series(tmp_path, workers=2)
