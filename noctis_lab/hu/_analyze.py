"""``analyze``: locate the phantom, measure its ROIs, judge them, advise."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from noctis_lab.dicom._volume import ScannerInfo, Volume
from noctis_lab.hu._checks import check_baseline, run_checks
from noctis_lab.hu._find import BODY_HU, coarse_grid
from noctis_lab.hu._identify import identify
from noctis_lab.hu._kinds import CheckKind
from noctis_lab.hu._locate import MIN_LOCALISATION_SCORE, check_volume, is_doubtful, locate
from noctis_lab.hu._measure import Measurements, derive, measure
from noctis_lab.hu._phantoms import Phantom, load_phantom
from noctis_lab.hu._profiles import Profile, load_profile
from noctis_lab.hu._recommend import recommend
from noctis_lab.hu._result import (
    CalibrationResult,
    Check,
    Localisation,
    RoiMeasurement,
    Status,
    worst_status,
)

__all__ = ["AUTO", "analyze", "default_profile", "judge", "localisation_check"]

LOCALISATION_SOURCE = (
    "noctis-localisation: Noctis Lab localisation diagnostics (insert-pattern correlation "
    "with the nominal values; see noctis_lab.hu._locate)"
)


def _as_volume(volume_or_path: Volume | str | Path | Any) -> tuple[Volume, str]:
    if isinstance(volume_or_path, Volume):
        v = volume_or_path
        where = v.sources[0].rsplit("/", 1)[0] if v.sources and "/" in v.sources[0] else ""
        return v, where or f"<in-memory volume {v.series_uid or 'without series UID'}>"
    vol = getattr(volume_or_path, "volume", None)  # a SyntheticSeries
    if isinstance(vol, Volume):
        return vol, f"<synthetic {vol.series_uid}>"
    from noctis_lab.dicom import load_series

    loaded = load_series(volume_or_path)
    return loaded, str(volume_or_path)


#: ``phantom=`` value that asks for the phantom to be identified from the images.
AUTO = "auto"


def default_profile(scanner: ScannerInfo) -> str:
    """The profile used when none is given: ``cbct`` for cone-beam series, else ``seed``."""
    return "cbct" if scanner.cone_beam else "seed"


def analyze(
    volume_or_path: Volume | str | Path,
    phantom: str | Path | Phantom = AUTO,
    profile: str | Path | Profile | None = None,
    *,
    baseline: CalibrationResult | None = None,
    slice: int | None = None,
    centre: tuple[float, float] | None = None,
    roll: float | None = None,
    module_slices: Mapping[str, Sequence[int]] | None = None,
) -> CalibrationResult:
    """Analyse a CT series of a QA phantom against a tolerance profile.

    Parameters
    ----------
    volume_or_path : Volume or path
        A loaded :class:`~noctis_lab.dicom.Volume` (or a ``SyntheticSeries``), or
        a folder / zip / file list that :func:`noctis_lab.dicom.load_series` reads.
    phantom : str, Path or Phantom
        ``"auto"`` (the default) identifies the phantom from the images
        (:func:`noctis_lab.hu.identify`; the evidence is the first localisation
        note); else a built-in phantom name (see :func:`noctis_lab.hu.list_phantoms`)
        or file.
    profile : str, Path or Profile, optional
        Tolerance profile: ``seed``, ``cbct``, ``acr-2017``, ``manufacturer``,
        ``baseline`` or a profile file (see :func:`noctis_lab.hu.load_profile`).
        Default: ``cbct`` when the DICOM header shows a cone-beam acquisition
        (:attr:`noctis_lab.dicom.ScannerInfo.cone_beam_evidence`), else ``seed``.
    baseline : CalibrationResult, optional
        The scanner's commissioning result; required by the ``baseline`` profile.
    slice : int, optional
        Index of the central slice of the reference module (skips the z search).
    centre : (float, float), optional
        Phantom centre ``(x, y)`` in pixels (column, row).
    roll : float, optional
        Phantom roll, degrees (a ROI at angle ``a`` appears at ``a + roll``).
    module_slices : mapping, optional
        Module name -> slice indices to measure.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    PhantomNotFoundError
        The phantom (or its reference module) is not in the series; the message
        says what was looked for and what was found.
    PhantomDefinitionError, ProfileError
        A bad phantom or profile file, or a profile that needs a baseline.
    DicomError
        The series cannot be read, or holds NaN/infinite values.
    """
    auto = isinstance(phantom, str) and phantom == AUTO
    ph = None if auto else load_phantom(phantom)
    prof = None if profile is None else load_profile(profile)
    if prof is not None and ph is not None:
        check_baseline(prof, ph, baseline)  # before the expensive part
    vol, source = _as_volume(volume_or_path)
    check_volume(vol)
    coarse = coarse_grid(vol)
    found_by = ""
    if ph is None:
        ident = identify(vol, coarse)
        ph = load_phantom(ident.phantom)
        found_by = f"identified from the images as {ident.evidence}"
    if prof is None:
        prof = load_profile(default_profile(vol.scanner))
        if vol.scanner.cone_beam:
            found_by += ("; " if found_by else "") + (
                f"profile cbct chosen: cone-beam CT ({vol.scanner.cone_beam_evidence})"
            )
    check_baseline(prof, ph, baseline)
    placement = locate(
        vol, ph, slice=slice, centre=centre, roll=roll, module_slices=module_slices, coarse=coarse
    )
    if found_by:
        loc = placement.localisation
        placement = dataclasses.replace(
            placement, localisation=dataclasses.replace(loc, notes=(found_by, *loc.notes))
        )
    return judge(
        measure(vol, ph, placement),
        ph,
        prof,
        placement.localisation,
        baseline=baseline,
        scanner=vol.scanner,
        series_uid=vol.series_uid,
        study_uid=vol.study_uid,
        source=source,
    )


def reads_air(roi: RoiMeasurement) -> bool:
    """An insert of a material that reads like air: the insert is missing or its vial empty.

    Material is above -500 HU (midway between air and water) on any scanner within
    ±100 HU of calibration; an insert whose nominal CT number is material but whose
    mean is below that is not there to be measured.
    """
    return (
        roi.role == "insert"
        and roi.nominal_hu is not None
        and roi.nominal_hu > BODY_HU
        and roi.mean < BODY_HU
    )


def _absent_notes(rois: Sequence[RoiMeasurement], absent: set[tuple[str, str]]) -> list[str]:
    return [
        f"Missing insert: {r.module}/{r.name} ({r.material}) reads {r.mean:.0f} HU, i.e. air: "
        "the insert is missing or its vial is empty. It is left out of the checks and the "
        "linearity fit; fill or replace it."
        for r in rois
        if (r.module, r.name) in absent
    ]


def localisation_check(loc: Localisation, phantom: Phantom) -> Check | None:
    """A ``review`` check when the phantom was found with doubts, else None."""
    if not is_doubtful(loc):
        return None
    return Check(
        id="localisation",
        kind=CheckKind.LOCALISATION,
        target=f"{phantom.title} position, roll and slices",
        measured=None if math.isnan(loc.score) else loc.score,
        expected=1.0,
        low=None,
        high=None,
        deviation=None,
        unit="ratio",
        status=Status.REVIEW,
        tolerance=(
            f"phantom found without doubts (pattern correlation ≥ {MIN_LOCALISATION_SCORE:g})"
        ),
        source=LOCALISATION_SOURCE,
    )


def judge(
    measurements: Measurements,
    phantom: str | Path | Phantom,
    profile: str | Path | Profile,
    localisation: Localisation,
    *,
    baseline: CalibrationResult | None = None,
    scanner: ScannerInfo,
    series_uid: str = "",
    study_uid: str = "",
    source: str = "",
) -> CalibrationResult:
    """Judge measurements against a tolerance profile and build the result.

    The one place where measurements become a verdict: :func:`analyze` ends with
    it, and so does every re-judging of edited ROIs (the ROI editor). It derives
    CNR, linearity, uniformity, noise and the electron-density curve from the ROI
    statistics (:func:`noctis_lab.hu._measure.derive`, so measurements whose ROIs
    were replaced are consistent), runs the profile's checks, adds a localisation
    ``review`` check when the phantom was found with doubts (the result's status is then
    ``review``: no verdict on the scanner until the overlay is checked), gives each ROI the worst
    status of the checks that judged it, and writes the recommendations.

    Parameters
    ----------
    measurements : Measurements
        What :func:`noctis_lab.hu._measure.measure` returned (possibly with some
        ROIs measured again: :func:`noctis_lab.hu._measure.merge`).
    phantom : str, Path or Phantom
        The phantom the measurements are of.
    profile : str, Path or Profile
        Tolerance profile.
    localisation : Localisation
        Where the phantom was found (recorded in the result; its doubts warn).
    baseline : CalibrationResult, optional
        The commissioning result, for profiles that judge constancy.
    scanner : ScannerInfo
        The series' scanner (the history files results under its key).
    series_uid, study_uid, source : str
        The series' and study's UIDs and where the series came from.

    Returns
    -------
    CalibrationResult
        A new result (new ``id`` and ``analysed_at``).

    Raises
    ------
    ProfileError
        The profile needs a baseline and none (or one of another phantom) was given.
    """
    ph = load_phantom(phantom)
    prof = load_profile(profile)
    absent = {(r.module, r.name) for r in measurements.rois if reads_air(r)}
    present = [r for r in measurements.rois if (r.module, r.name) not in absent]
    meas = derive(present, ph, measurements.correlation_factors, measurements.slice_sd)
    checks, notes = run_checks(meas, ph, prof, baseline)
    notes = [*_absent_notes(measurements.rois, absent), *notes]
    loc_check = localisation_check(localisation, ph)
    if loc_check is not None:
        checks = (*checks, loc_check)
    by_target: dict[tuple[str, str], list[str]] = {}
    for c in checks:
        if c.module is not None and c.roi is not None:
            by_target.setdefault((c.module, c.roi), []).append(c.status)
    derived = {(r.module, r.name): r for r in meas.rois}
    rois = tuple(
        r
        if (st := by_target.get((r.module, r.name))) is None
        else dataclasses.replace(r, status=worst_status(st))
        for r in (derived.get((m.module, m.name), m) for m in measurements.rois)
    )
    return CalibrationResult(
        phantom=ph.name,
        phantom_title=ph.title,
        profile=prof.name,
        profile_version=prof.version,
        scanner=scanner,
        acquisition_datetime=scanner.acquisition_datetime,
        series_uid=series_uid,
        study_uid=study_uid,
        status=worst_status(c.status for c in checks),
        rois=rois,
        checks=checks,
        linearity=meas.linearity,
        uniformity=meas.uniformity,
        noise_hu=meas.noise_hu,
        electron_density=meas.electron_density,
        localisation=localisation,
        recommendations=recommend(checks, meas, localisation, notes),
        source=source,
    )
