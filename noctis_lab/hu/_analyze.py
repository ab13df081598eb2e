"""``analyze``: locate the phantom, measure its ROIs, judge them, advise."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from noctis_lab.dicom._volume import Volume
from noctis_lab.hu._checks import run_checks
from noctis_lab.hu._locate import locate
from noctis_lab.hu._measure import measure
from noctis_lab.hu._phantoms import Phantom, load_phantom
from noctis_lab.hu._profiles import Profile, load_profile
from noctis_lab.hu._recommend import recommend
from noctis_lab.hu._result import CalibrationResult, Check, RoiMeasurement, worst_status

__all__ = ["analyze"]

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


def analyze(
    volume_or_path: Volume | str | Path,
    phantom: str | Path | Phantom = "catphan604",
    profile: str | Path | Profile = "seed",
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
        Built-in phantom name (see :func:`noctis_lab.hu.list_phantoms`) or file.
    profile : str, Path or Profile
        Tolerance profile: ``seed``, ``acr-2017``, ``manufacturer``, ``baseline``
        or a profile file (see :func:`noctis_lab.hu.load_profile`).
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
    ph = load_phantom(phantom)
    prof = load_profile(profile)
    if prof.requires_baseline and baseline is None:
        from noctis_lab._errors import ProfileError

        raise ProfileError(
            f"profile {prof.name!r} judges constancy and needs a baseline result: "
            "analyze(..., baseline=<the commissioning CalibrationResult>)"
        )
    vol, source = _as_volume(volume_or_path)
    placement = locate(vol, ph, slice=slice, centre=centre, roll=roll, module_slices=module_slices)
    meas = measure(vol, ph, placement)
    checks, notes = run_checks(meas, ph, prof, placement, baseline)
    loc = placement.localisation
    doubts = [n for n in loc.notes if n.startswith("doubt")]
    if doubts or (not math.isnan(loc.score) and loc.score < 0.97):
        checks = (
            *checks,
            Check(
                id="localisation",
                kind="localisation",
                target=f"{ph.title} position, roll and slices",
                measured=None if math.isnan(loc.score) else loc.score,
                expected=1.0,
                low=None,
                high=None,
                deviation=None,
                unit="ratio",
                status="warning",
                tolerance="phantom found without doubts (pattern correlation ≥ 0.97)",
                source=LOCALISATION_SOURCE,
            ),
        )
    by_target: dict[tuple[str, str], list[str]] = {}
    for c in checks:
        parts = c.id.split(".")
        if len(parts) >= 3:
            by_target.setdefault((parts[-2], parts[-1]), []).append(c.status)
    rois: list[RoiMeasurement] = []
    for r in meas.rois:
        st = by_target.get((r.module, r.name))
        rois.append(r if st is None else _with_status(r, worst_status(st)))
    # the uniformity centre takes the worst edge status too
    recs = recommend(checks, meas, loc, notes)
    scanner = vol.scanner
    return CalibrationResult(
        phantom=ph.name,
        phantom_title=ph.title,
        profile=prof.name,
        profile_version=prof.version,
        scanner=scanner,
        acquisition_datetime=scanner.acquisition_datetime,
        series_uid=vol.series_uid,
        status=worst_status(c.status for c in checks),
        rois=tuple(rois),
        checks=checks,
        linearity=meas.linearity,
        uniformity=meas.uniformity,
        noise_hu=meas.noise_hu,
        electron_density=meas.electron_density,
        localisation=loc,
        recommendations=recs,
        source=source,
    )


def _with_status(r: RoiMeasurement, status: str) -> RoiMeasurement:
    import dataclasses

    return dataclasses.replace(r, status=status)  # type: ignore[arg-type]
