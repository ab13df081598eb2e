"""Build CalibrationResult objects with known values for the history tests.

Uses the real result classes and the real CatPhan 604 phantom definition; each
ROI's mean is its nominal HU plus a chosen offset (and optional noise), and each
insert gets the CT-number check a profile would give it (nominal ± tolerance).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from noctis_lab.dicom import ScannerInfo
from noctis_lab.hu import CalibrationResult, Check, Localisation, RoiMeasurement, load_phantom
from noctis_lab.hu._result import worst_status

PHANTOM = load_phantom("catphan604")


def scanner(serial: str = "123", model: str = "Revolution") -> ScannerInfo:
    """A scanner identity (key ``GE/<model>/<serial>``)."""
    return ScannerInfo(
        manufacturer="GE",
        model=model,
        station="CT1",
        serial=serial,
        kvp=120.0,
        convolution_kernel="STANDARD",
    )


def _status(value: float, low: float, high: float, warning_fraction: float = 0.8) -> str:
    if value < low or value > high:
        return "fail"
    centre, half = 0.5 * (low + high), 0.5 * (high - low)
    return "warning" if abs(value - centre) > warning_fraction * half else "pass"


def make_result(
    when: datetime,
    *,
    serial: str = "123",
    model: str = "Revolution",
    offsets: Mapping[str, float] | None = None,
    noise_sd: float = 0.0,
    rng: np.random.Generator | None = None,
    tolerance_hu: float = 10.0,
    series_uid: str = "",
) -> CalibrationResult:
    """A CatPhan 604 result acquired at ``when`` (naive = UTC).

    ``offsets`` maps a material to the HU added to its nominal value.
    """
    offsets = dict(offsets or {})
    rng = rng if rng is not None else np.random.default_rng(0)
    rois: list[RoiMeasurement] = []
    checks: list[Check] = []
    for module in PHANTOM.modules:
        for roi in module.rois:
            if roi.nominal_hu is None:
                continue
            noise = float(rng.normal(0.0, noise_sd)) if noise_sd > 0 else 0.0
            mean = float(roi.nominal_hu) + offsets.get(roi.material, 0.0) + noise
            status = "not_checked"
            if roi.role == "insert":
                low, high = roi.nominal_hu - tolerance_hu, roi.nominal_hu + tolerance_hu
                status = _status(mean, low, high)
                checks.append(
                    Check(
                        id=f"hu.{module.name}.{roi.name}",
                        kind="hu",
                        target=f"{module.name}/{roi.name} ({roi.material})",
                        measured=mean,
                        expected=float(roi.nominal_hu),
                        low=low,
                        high=high,
                        deviation=mean - roi.nominal_hu,
                        unit="HU",
                        status=status,  # type: ignore[arg-type]
                        tolerance=f"{roi.nominal_hu:g} ± {tolerance_hu:g} HU",
                        source="test: nominal ± tolerance",
                    )
                )
            rois.append(
                RoiMeasurement(
                    module=module.name,
                    name=roi.name,
                    material=roi.material,
                    role=roi.role,
                    nominal_hu=float(roi.nominal_hu),
                    mean=mean,
                    median=mean,
                    sd=12.0,
                    sem=0.3,
                    n_pixels=800,
                    n_slices=3,
                    x_mm=0.0,
                    y_mm=0.0,
                    radius_mm=4.0,
                    deviation=mean - roi.nominal_hu,
                    status=status,  # type: ignore[arg-type]
                )
            )
    return CalibrationResult(
        phantom=PHANTOM.name,
        phantom_title=PHANTOM.title,
        profile="test-profile",
        profile_version="1.0",
        scanner=scanner(serial, model),
        acquisition_datetime=when.strftime("%Y%m%d%H%M%S"),
        series_uid=series_uid or f"1.2.826.0.1.3680043.8.498.{when:%Y%m%d%H%M%S}{serial}",
        status=worst_status(c.status for c in checks),
        rois=tuple(rois),
        checks=tuple(checks),
        linearity=None,
        uniformity=None,
        noise_hu=12.0,
        electron_density=None,
        localisation=Localisation(
            method="auto",
            reference_slice=10,
            reference_z_mm=0.0,
            centre_px=(256.0, 256.0),
            centre_spread_px=0.1,
            roll_deg=0.0,
            module_slices={"CTP404": (9, 10, 11)},
            score=0.98,
        ),
        recommendations=(),
        source="tests/hu_history/_factory.py",
    )
