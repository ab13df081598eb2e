"""load_series / list_series on good input: sorting, HU, geometry, sources, real files."""

from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from noctis_lab.dicom import ScannerInfo, SeriesInfo, Volume, list_series, load_series


def pydicom_hu(path: Path) -> np.ndarray:
    """The reference: pydicom's own pixel_array * slope + intercept."""
    ds = pydicom.dcmread(path)
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_sorts_by_position_not_file_name_or_instance_number(axial_series):
    vol = load_series(axial_series.folder)
    assert isinstance(vol, Volume)
    assert vol.hu.dtype == np.float32
    assert vol.shape == (6, 32, 32)
    np.testing.assert_array_equal(vol.hu, axial_series.hu)
    # the files on disk were shuffled; InstanceNumber too
    assert [Path(s) for s in vol.sources] == axial_series.paths
    instances = [int(ds.InstanceNumber) for ds in axial_series.datasets]
    assert instances != sorted(instances)
    np.testing.assert_allclose(vol.slice_positions, axial_series.positions, atol=1e-6)
    assert vol.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert vol.origin == pytest.approx(tuple(axial_series.ipp[0]))
    assert vol.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert vol.series_uid == axial_series.series_uid
    assert vol.study_uid == str(axial_series.datasets[0].StudyInstanceUID)


def test_threads_and_sequential_give_identical_volumes(axial_series):
    a = load_series(axial_series.folder, workers=1)
    b = load_series(axial_series.folder, workers=4, progress=True)
    np.testing.assert_array_equal(a.hu, b.hu)
    assert a.sources == b.sources


def test_tilted_axial_series_sorts_along_the_slice_normal(make_series):
    tilt = math.radians(20)  # gantry tilt about the x axis
    orientation = (1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt))
    series = make_series(orientation=orientation, step=3.0, z0=50.0)
    vol = load_series(series.folder)
    np.testing.assert_array_equal(vol.hu, series.hu)
    assert vol.spacing[0] == pytest.approx(3.0, abs=1e-4)
    np.testing.assert_allclose(vol.slice_positions, series.positions, atol=1e-4)
    assert vol.orientation == pytest.approx(orientation, abs=1e-7)


def test_feet_first_normal_pointing_down_still_increases_along_normal(make_series):
    # row x column = -z: positions along the normal increase as z decreases
    series = make_series(orientation=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0))
    vol = load_series(series.folder)
    np.testing.assert_array_equal(vol.hu, series.hu)
    assert np.all(np.diff(vol.slice_positions) > 0)
    assert vol.origin == pytest.approx(tuple(series.ipp[0]))
    assert vol.origin[2] == pytest.approx(series.ipp[:, 2].max())  # first slice is the highest z


def test_rescale_is_applied_per_slice(make_series):
    slopes = [1.0, 0.5, 2.0, 1.0, 0.25, 1.5]
    series = make_series(slopes=slopes)
    vol = load_series(series.folder)
    np.testing.assert_allclose(vol.hu, series.hu, atol=1e-3)


def test_implicit_vr_little_endian_files_load(make_series):
    def implicit(_: int, ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian

    series = make_series(tweak=implicit)
    assert pydicom.dcmread(series.paths[0]).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    np.testing.assert_array_equal(load_series(series.folder).hu, series.hu)


def test_unused_high_bits_are_ignored_like_pydicom(make_series):
    def twelve_bits(k: int, ds: pydicom.Dataset) -> None:
        ds.BitsStored, ds.HighBit = 12, 11
        raw = np.frombuffer(ds.PixelData, "<i2") & 0x0FFF
        ds.PixelData = (raw | 0x7000).astype("<u2").astype("<i2").tobytes()  # garbage above bit 11

    series = make_series(n=2, tweak=twelve_bits)
    vol = load_series(series.folder)
    for k, path in enumerate(series.paths):
        np.testing.assert_array_equal(vol.hu[k], pydicom_hu(path))


def test_zip_archive_list_of_paths_and_datasets(axial_series, tmp_path):
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in axial_series.paths:
            zf.write(path, f"nested/{path.name}")
    from_zip = load_series(archive)
    np.testing.assert_array_equal(from_zip.hu, axial_series.hu)
    assert from_zip.sources[0] == f"{archive}!/nested/{axial_series.paths[0].name}"

    reversed_paths = list(reversed(axial_series.paths))
    np.testing.assert_array_equal(load_series(reversed_paths).hu, axial_series.hu)

    datasets = [pydicom.dcmread(p) for p in reversed_paths]
    in_memory = load_series(datasets)
    np.testing.assert_array_equal(in_memory.hu, axial_series.hu)
    assert in_memory.sources[0] == f"<memory:{len(datasets) - 1}>"


def test_single_slice_uses_slice_thickness(axial_series):
    vol = load_series(axial_series.paths[2])
    assert vol.shape == (1, 32, 32)
    assert vol.spacing[0] == pytest.approx(2.5)
    np.testing.assert_array_equal(vol.hu[0], axial_series.hu[2])


def test_readme_and_dicomdir_are_skipped_silently(axial_series, tmp_path, kit):
    folder = tmp_path / "mixed"
    for path in axial_series.paths:
        kit.copy_in(path, folder / "images")
    (folder / "README.txt").write_text("CT phantom scan, 2026-01-05\n")
    kit.copy_in(kit.testdata("DICOMDIR"), folder, "DICOMDIR")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vol = load_series(folder)
    np.testing.assert_array_equal(vol.hu, axial_series.hu)


def test_list_series_and_choosing_one(make_series, tmp_path):
    a = make_series("a/one", description="Head 5mm")
    make_series("a/two", description="Head 1mm", n=3)
    infos = list_series(tmp_path / "a")
    assert all(isinstance(i, SeriesInfo) for i in infos)
    assert sorted((i.description, i.n_slices, i.modality) for i in infos) == [
        ("Head 1mm", 3, "CT"),
        ("Head 5mm", 6, "CT"),
    ]
    assert infos[0].to_dict()["uid"] == infos[0].uid
    study = {i.uid: i.study_uid for i in infos}[a.series_uid]
    assert study == a.datasets[0].StudyInstanceUID
    vol = load_series(tmp_path / "a", series_uid=a.series_uid)
    np.testing.assert_array_equal(vol.hu, a.hu)


def test_non_ct_series_beside_a_ct_series_is_ignored(axial_series, tmp_path, kit):
    folder = tmp_path / "ct_and_mr"
    for path in axial_series.paths:
        kit.copy_in(path, folder)
    kit.copy_in(kit.testdata("MR_small.dcm"), folder)
    vol = load_series(folder)
    np.testing.assert_array_equal(vol.hu, axial_series.hu)
    assert sorted(i.modality for i in list_series(folder)) == ["CT", "MR"]


def test_scanner_metadata_fills_every_field(make_series):
    def tags(_: int, ds: pydicom.Dataset) -> None:
        ds.Manufacturer = "ACME Medical"
        ds.ManufacturerModelName = "Photon 64"
        ds.StationName = "CT-EAST"
        ds.DeviceSerialNumber = "SN-0042"
        ds.SoftwareVersions = ["VA10", "syngo 2.1"]
        ds.InstitutionName = "Noctis General"
        ds.KVP = 120
        ds.XRayTubeCurrent = 250
        ds.ConvolutionKernel = ["Br40", "3"]
        ds.SliceThickness = 2.5
        ds.AcquisitionDate = "20260105"
        ds.AcquisitionTime = "142233.250"
        ds.SeriesDescription = "QA abdomen"

    vol = load_series(make_series(tweak=tags).folder)
    assert vol.scanner == ScannerInfo(
        manufacturer="ACME Medical",
        model="Photon 64",
        station="CT-EAST",
        serial="SN-0042",
        software_versions="VA10; syngo 2.1",
        institution="Noctis General",
        kvp=120.0,
        tube_current_ma=250.0,
        convolution_kernel="Br40; 3",
        slice_thickness_mm=2.5,
        acquisition_datetime="2026-01-05T14:22:33.250",
        series_description="QA abdomen",
    )
    assert vol.scanner.key == "ACME Medical/Photon 64/SN-0042"


def test_acquisition_datetime_falls_back_to_series_date(make_series):
    def series_date(_: int, ds: pydicom.Dataset) -> None:
        ds.SeriesDate, ds.SeriesTime = "20251231", "2359"

    vol = load_series(make_series(tweak=series_date).folder)
    assert vol.scanner.acquisition_datetime == "2025-12-31T23:59:00"


# ----------------------------------------------------------------- pydicom's real CT files


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")  # bad_sequence.dcm
@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # explicit VR little endian, GE
        "693_UNCR.dcm",  # uncompressed, BitsStored 14
        "693_J2KR.dcm",  # JPEG 2000 lossless
        "bad_sequence.dcm",  # JPEG lossless process 14 (SV1), Siemens
    ],
)
def test_pydicom_ct_files_match_pydicom_hu(kit, name):
    path = kit.testdata(name)
    vol = load_series(path)
    ref = pydicom_hu(path)
    assert vol.shape == (1, *ref.shape)
    np.testing.assert_array_equal(vol.hu[0], ref.astype(np.float32))
    # plausible CT: air (or padding) below -800 HU, tissue/bone above +100 HU
    assert -3100 <= vol.hu.min() < -800
    assert vol.hu.max() > 100


def test_693_jpeg2000_and_uncompressed_are_identical(kit):
    j2k = load_series(kit.testdata("693_J2KR.dcm"))
    raw = load_series(kit.testdata("693_UNCR.dcm"))
    np.testing.assert_array_equal(j2k.hu, raw.hu)
    assert j2k.scanner == raw.scanner
    assert j2k.scanner.kvp == 140.0 and j2k.scanner.convolution_kernel == "STANDARD"


def test_ct_small_metadata(kit):
    vol = load_series(kit.testdata("CT_small.dcm"))
    ds = pydicom.dcmread(kit.testdata("CT_small.dcm"), stop_before_pixels=True)
    assert vol.scanner.manufacturer == ds.Manufacturer
    assert vol.scanner.model == ds.ManufacturerModelName
    assert vol.scanner.kvp == float(ds.KVP)
    assert vol.spacing[1:] == pytest.approx(tuple(float(v) for v in ds.PixelSpacing))
    assert vol.spacing[0] == pytest.approx(float(ds.SliceThickness))
    assert vol.origin == pytest.approx(tuple(float(v) for v in ds.ImagePositionPatient))
