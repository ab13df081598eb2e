"""Bad input: one test per case, each a NoctisError subclass naming the file and reason."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest

from noctis_lab import _errors
from noctis_lab._errors import (
    AmbiguousSeriesError,
    DicomError,
    NoctisError,
    NoFilesFoundError,
    SeriesGeometryError,
    SliceGapWarning,
)
from noctis_lab.dicom import load_series


def test_errors_are_noctis_errors_and_builtins():
    assert issubclass(_errors.DicomError, NoctisError) and issubclass(DicomError, ValueError)
    assert issubclass(NoFilesFoundError, FileNotFoundError)


def test_not_dicom(tmp_path):
    path = tmp_path / "README.txt"
    path.write_text("not an image\n" * 20)
    with pytest.raises(DicomError, match=r"README\.txt' is not a DICOM file"):
        load_series(path)


def test_folder_of_non_dicom_files(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.csv").write_text("x,y\n1,2\n")
    with pytest.raises(NoFilesFoundError, match=r"no DICOM images found .*2 file\(s\) skipped"):
        load_series(tmp_path)


def test_only_a_dicomdir(tmp_path, kit):
    path = kit.copy_in(kit.testdata("DICOMDIR"), tmp_path, "DICOMDIR")
    with pytest.raises(DicomError, match=r"DICOMDIR' is a DICOMDIR \(a media index"):
        load_series(path)


def test_truncated_pixel_data_is_an_error_naming_the_file(axial_series, tmp_path, kit):
    folder = tmp_path / "cut"
    for path in axial_series.paths:
        kit.copy_in(path, folder)
    victim = folder / axial_series.paths[3].name
    victim.write_bytes(victim.read_bytes()[:-700])
    with pytest.raises(DicomError, match=rf"'{victim}' is truncated: its Pixel Data should hold"):
        load_series(folder)


def test_truncated_header_is_an_error(axial_series, tmp_path):
    victim = tmp_path / "cut.dcm"
    victim.write_bytes(axial_series.paths[0].read_bytes()[:400])
    with pytest.raises(DicomError, match=r"cut\.dcm'.*(truncated|no Pixel Data)"):
        load_series(victim)


def test_not_ct_image(kit):
    path = kit.testdata("JPGLosslessP14SV1_1s_1f_8b.dcm")
    with pytest.raises(DicomError, match=r"JPGLosslessP14SV1_1s_1f_8b\.dcm' is US .*not CT"):
        load_series(path)


def test_not_ct_when_chosen_by_uid(kit):
    path = kit.testdata("MR_small.dcm")
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)
    with pytest.raises(DicomError, match=r"MR_small\.dcm' is MR \(MR Image Storage\), not CT"):
        load_series(path, series_uid=uid)


def test_not_an_image(tmp_path, kit):
    ds = kit.ct_dataset(0, (0, 0, 0), series_uid="1.2.3", study_uid="1.2.4", instance=1)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    for kw in ("Rows", "Columns", "PixelData"):
        del ds[kw]
    path = kit.write(ds, tmp_path / "report.dcm")
    with pytest.raises(DicomError, match=r"report\.dcm' is a DICOM Enhanced SR .*not an image"):
        load_series(path)


def test_no_pixel_data(make_series):
    series = make_series(n=3, tweak=lambda k, ds: ds.__delattr__("PixelData") if k == 1 else None)
    with pytest.raises(DicomError, match=rf"'{series.paths[1]}' has no Pixel Data \(7FE0,0010\)"):
        load_series(series.folder)


def test_multi_frame_is_refused(kit):
    with pytest.raises(DicomError, match=r"eCT_Supplemental\.dcm' is a multi-frame image"):
        load_series(kit.testdata("eCT_Supplemental.dcm"))


def test_missing_rescale_intercept(make_series):
    series = make_series(n=3, tweak=lambda k, ds: ds.__delattr__("RescaleIntercept"))
    with pytest.raises(DicomError, match=r"RescaleIntercept \(0028,1052\) is missing"):
        load_series(series.folder)
    # assume_rescale only covers slices where *both* tags are absent
    with pytest.raises(DicomError, match=r"RescaleIntercept \(0028,1052\) is missing"):
        load_series(series.folder, assume_rescale=(1.0, 0.0))


def test_missing_both_rescale_tags_needs_opt_in(make_series):
    def drop(_: int, ds: pydicom.Dataset) -> None:
        del ds.RescaleSlope, ds.RescaleIntercept

    series = make_series(n=3, tweak=drop)
    with pytest.raises(DicomError, match=r"RescaleSlope \(0028,1053\) is missing.*assume_rescale"):
        load_series(series.folder)
    vol = load_series(series.folder, assume_rescale=(1.0, -1024.0))
    np.testing.assert_array_equal(vol.hu, series.hu)


def test_non_numeric_rescale_slope(make_series):
    series = make_series(n=2, tweak=lambda k, ds: setattr(ds, "RescaleSlope", "9.75"))
    path = series.paths[0]
    data = path.read_bytes()
    assert data.count(b"9.75") == 1
    path.write_bytes(data.replace(b"9.75", b"abcd"))
    with pytest.raises(DicomError, match=r"RescaleSlope \(0028,1053\) is not a number: 'abcd'"):
        load_series(series.folder)


def test_mixed_image_sizes(make_series, kit):
    def bigger(k: int, ds: pydicom.Dataset) -> None:
        if k == 2:
            pix = np.zeros((48, 48), np.int16)
            ds.Rows, ds.Columns = pix.shape
            ds.PixelData = pix.tobytes()

    series = make_series(n=4, tweak=bigger)
    with pytest.raises(SeriesGeometryError, match=r"mixed image sizes: .* is 48x48 but .*32x32"):
        load_series(series.folder)


def test_duplicate_slice_positions(make_series, kit):
    series = make_series(n=4)
    dup = pydicom.dcmread(series.paths[1])
    dup.SOPInstanceUID = dup.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.1"
    kit.write(dup, series.folder / "copy_of_slice")
    with pytest.raises(
        SeriesGeometryError, match=r"duplicate slice position -7\.500 mm: .*copy_of"
    ):
        load_series(series.folder)


def test_gap_warns_and_still_loads(make_series):
    series = make_series(n=8, skip=(4,))
    with pytest.warns(
        SliceGapWarning,
        match=r"gap of 5\.000 mm \(about 1 missing.*between positions -2\.500 and 2\.500 mm",
    ):
        vol = load_series(series.folder)
    assert vol.shape == (7, 32, 32)
    assert vol.spacing[0] == pytest.approx(2.5)
    np.testing.assert_array_equal(vol.hu, series.hu)


def test_sagittal_orientation(make_series):
    series = make_series(n=3, orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    with pytest.raises(
        SeriesGeometryError, match=r"is oriented sagittal .*90\.0° from the patient"
    ):
        load_series(series.folder)


def test_oblique_orientation(make_series):
    a = math.radians(50)
    series = make_series(n=3, orientation=(1.0, 0.0, 0.0, 0.0, math.cos(a), -math.sin(a)))
    with pytest.raises(SeriesGeometryError, match=r"is oriented oblique \(nearest coronal\)"):
        load_series(series.folder)


def test_mixed_orientations(make_series):
    def flip(k: int, ds: pydicom.Dataset) -> None:
        if k == 2:
            ds.ImageOrientationPatient = [0.9998477, 0.0174524, 0, -0.0174524, 0.9998477, 0]

    with pytest.raises(SeriesGeometryError, match=r"mixed orientations"):
        load_series(make_series(n=3, tweak=flip).folder)


def test_no_files_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoFilesFoundError, match=r"no files found in .*empty"):
        load_series(tmp_path / "empty")
    with pytest.raises(NoFilesFoundError, match=r"'.*missing' does not exist"):
        load_series(tmp_path / "missing")


def test_several_series_without_a_choice(make_series, tmp_path):
    one = make_series("two/a", description="Head 5mm")
    two = make_series("two/b", description="Abdomen 1mm", n=3)
    with pytest.raises(
        AmbiguousSeriesError, match=r"2 CT series .*not one acquisition.*--series UID.*series_uid="
    ) as info:
        load_series(tmp_path / "two")
    assert info.value.series == {one.series_uid: "Head 5mm", two.series_uid: "Abdomen 1mm"}
    assert "Abdomen 1mm, 3 slices" in str(info.value)


def test_unknown_series_uid(axial_series):
    with pytest.raises(NoFilesFoundError, match=r"series 1\.2\.3 not in .*series found: "):
        load_series(axial_series.folder, series_uid="1.2.3")


def test_bad_source_type():
    with pytest.raises(DicomError, match=r"cannot load DICOM from a int"):
        load_series(42)  # type: ignore[arg-type]


def test_single_slice_without_thickness(kit, tmp_path):
    ds = kit.ct_dataset(0, (0, 0, 0), series_uid="1.2.3", study_uid="1.2.4", instance=1)
    del ds.SliceThickness
    path = kit.write(ds, tmp_path / "lone.dcm")
    with pytest.raises(SeriesGeometryError, match=r"lone\.dcm': a single slice needs SliceThick"):
        load_series(path)


def test_workers_must_be_positive(axial_series):
    with pytest.raises(ValueError, match=r"workers must be at least 1, got 0"):
        load_series(axial_series.folder, workers=0)


def test_header_claiming_a_huge_image_is_refused_before_allocating(make_series):
    def huge(_k, ds):
        ds.Rows = 65535
        ds.Columns = 65535

    series = make_series("huge", n=2, tweak=huge)
    with pytest.raises(DicomError, match=r"claims 65535x65535 pixels per slice"):
        load_series(series.folder)


def test_zip_bomb_is_refused_before_unpacking(tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("slice.dcm", "w", force_zip64=True) as member,
    ):
        block = b"\0" * (1 << 20)
        for _ in range(64):  # 64 MiB of zeros packs to about 64 KiB
            member.write(block)
    with pytest.raises(DicomError, match=r"refused as a zip bomb"):
        load_series(bomb)
