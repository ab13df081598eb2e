"""Apply a tolerance profile to measurements: one :class:`Check` per criterion and target.

Status of a check with accepted interval ``[low, high]`` around ``expected``:

* ``fail`` when the measured value is outside the interval;
* ``warning`` when inside but farther from ``expected`` than ``warning_fraction``
  (profile, default 0.8) of the distance from ``expected`` to the limit on that side;
* ``pass`` otherwise.

Limits are tested with ``is None``, never by truthiness, so a tolerance of 0 is
honoured (a measured value must then equal the expected value exactly).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from noctis_lab._errors import ProfileError
from noctis_lab.hu._kinds import CheckKind
from noctis_lab.hu._measure import Measurements
from noctis_lab.hu._phantoms import Phantom
from noctis_lab.hu._profiles import Criterion, Profile
from noctis_lab.hu._result import CalibrationResult, Check, RoiMeasurement, Status

__all__ = ["check_baseline", "judge", "run_checks"]


def _fmt(v: float) -> str:
    return f"{v:+g}" if v != 0 else "0"


def judge(
    measured: float,
    expected: float | None,
    low: float | None,
    high: float | None,
    warning_fraction: float,
) -> Status:
    """``pass`` / ``warning`` / ``fail`` of ``measured`` against ``[low, high]``.

    Parameters
    ----------
    measured : float
        The value judged.
    expected : float or None
        The value aimed at (the centre of the warning band).
    low, high : float or None
        The accepted interval (either side may be open).
    warning_fraction : float
        ``warning`` when ``measured`` lies farther from the expected value than this
        fraction of the way to the limit on its side.
    """
    if not math.isfinite(measured):
        return Status.FAIL
    if low is not None and measured < low:
        return Status.FAIL
    if high is not None and measured > high:
        return Status.FAIL
    ref = expected
    if ref is None:
        if low is not None and high is not None:
            ref = 0.5 * (low + high)
        elif high is not None:
            ref = 0.0 if high > 0 else None
        elif low is not None:
            ref = None
    if ref is None:
        return Status.PASS
    limit = high if measured >= ref else low
    if limit is None:
        return Status.PASS
    room = abs(limit - ref)
    if room == 0.0:
        return Status.PASS  # exactly on a zero tolerance
    return Status.WARNING if abs(measured - ref) > warning_fraction * room else Status.PASS


def _interval_text(expected: float | None, low: float | None, high: float | None, unit: str) -> str:
    if expected is not None and low is not None and high is not None:
        if math.isclose(expected - low, high - expected, abs_tol=1e-9):
            return f"{expected:g} ± {high - expected:g} {unit}"
        return f"{low:g}..{high:g} {unit} (expected {expected:g})"
    if low is not None and high is not None:
        return f"{low:g}..{high:g} {unit}"
    if high is not None:
        return f"≤ {high:g} {unit}"
    if low is not None:
        return f"≥ {low:g} {unit}"
    return "no limit"


def _check(
    profile: Profile,
    crit: Criterion,
    cid: str,
    target: str,
    measured: float,
    expected: float | None,
    low: float | None,
    high: float | None,
    unit: str,
    *,
    ref_for_warning: float | None = None,
    roi: tuple[str, str, str | None] | None = None,
) -> Check:
    status = judge(
        measured,
        expected if ref_for_warning is None else ref_for_warning,
        low,
        high,
        profile.warning_fraction,
    )
    text = _interval_text(expected, low, high, unit)
    return Check(
        id=cid,
        kind=CheckKind(crit.kind),
        target=target,
        measured=float(measured),
        expected=expected,
        low=low,
        high=high,
        deviation=None if expected is None else float(measured - expected),
        unit=unit,
        status=status,
        tolerance=text,
        source=profile.source_text(crit.source),
        module=None if roi is None else roi[0],
        roi=None if roi is None else roi[1],
        material=None if roi is None else roi[2],
    )


def check_baseline(profile: Profile, phantom: Phantom, baseline: CalibrationResult | None) -> None:
    """Raise :class:`ProfileError` when ``profile`` needs a baseline it was not given.

    A constancy profile needs a baseline result of the same phantom.
    """
    if not profile.requires_baseline:
        return
    if baseline is None:
        raise ProfileError(
            f"profile {profile.name!r} judges constancy and needs a baseline result "
            "(the commissioning result: --baseline RESULT_JSON on the command line, "
            "baseline= in Python)"
        )
    if baseline.phantom != phantom.name:
        raise ProfileError(
            f"the baseline was measured on phantom {baseline.phantom!r}, "
            f"not {phantom.name!r}: constancy needs the same phantom"
        )


@dataclass(frozen=True)
class _Judging:
    """What every per-kind check function needs."""

    meas: Measurements
    profile: Profile
    baseline: CalibrationResult | None


def _hu_bounds(
    crit: Criterion, r: RoiMeasurement
) -> tuple[float, float | None, float | None] | None:
    """Expected value and accepted interval of a ``hu`` criterion for one ROI (None: n/a)."""
    if crit.use_phantom_range:
        if r.range_hu is None:
            return None
        lo, hi = r.range_hu
        return (r.nominal_hu if r.nominal_hu is not None else 0.5 * (lo + hi)), lo, hi
    exp = crit.expected if crit.expected is not None else r.nominal_hu
    if exp is None:
        return None
    if crit.tolerance is not None:
        return exp, exp - crit.tolerance, exp + crit.tolerance
    return exp, crit.low, crit.high


def _roi_check(
    j: _Judging,
    crit: Criterion,
    r: RoiMeasurement,
    what: str,
    expected: float | None,
    low: float | None,
    high: float | None,
) -> Check:
    """A CT-number check of one ROI's mean (``what`` qualifies the target, e.g. vs baseline)."""
    return _check(
        j.profile,
        crit,
        f"{crit.id}.{r.module}.{r.name}",
        f"{r.module}/{r.name} ({r.material}){what}",
        r.mean,
        expected,
        low,
        high,
        "HU",
        roi=(r.module, r.name, r.material),
    )


def _hu_checks(j: _Judging, crit: Criterion) -> list[Check]:
    out = []
    for r in j.meas.rois:
        if crit.materials is None and r.nominal_hu is None:
            continue
        if not crit.selects(r.material, r.role, r.nominal_hu):
            continue
        bounds = _hu_bounds(crit, r)
        if bounds is None:
            continue
        exp, lo, hi = bounds
        out.append(_roi_check(j, crit, r, "", exp, lo, hi))
    return out


def _uniformity_checks(j: _Judging, crit: Criterion) -> list[Check]:
    u = j.meas.uniformity
    if u is None or crit.tolerance is None:
        return []
    t = crit.tolerance
    return [
        _check(
            j.profile,
            crit,
            f"{crit.id}.{u.module}.{name}",
            f"{u.module}/{name} minus centre",
            edge - u.centre_hu,
            0.0,
            -t,
            t,
            "HU",
            roi=(u.module, name, None),
        )
        for name, edge in u.edges_hu.items()
    ]


def _noise_checks(j: _Judging, crit: Criterion) -> list[Check]:
    m = j.meas
    if m.noise_hu is None:
        return []
    target = f"noise SD in {m.noise_roi}"
    return [
        _check(
            j.profile,
            crit,
            crit.id,
            target,
            m.noise_hu,
            None,
            crit.low,
            crit.high,
            "HU",
            ref_for_warning=0.0,
        )
    ]


def _linearity_checks(j: _Judging, crit: Criterion) -> list[Check]:
    lin = j.meas.linearity
    if lin is None:
        return []
    p = j.profile
    if crit.metric == "slope":
        exp = crit.expected if crit.expected is not None else 1.0
        lo, hi = (
            (exp - crit.tolerance, exp + crit.tolerance)
            if crit.tolerance is not None
            else (crit.low, crit.high)
        )
        target = f"slope of measured vs nominal HU ({len(lin.materials)} inserts)"
        return [_check(p, crit, crit.id, target, lin.slope, exp, lo, hi, "ratio")]
    if crit.metric == "max_deviation_pct":
        target = f"largest deviation from the fit ({lin.max_deviation_material})"
        return [
            _check(
                p,
                crit,
                crit.id,
                target,
                lin.max_deviation_pct,
                None,
                crit.low,
                crit.high,
                "%",
                ref_for_warning=0.0,
            )
        ]
    target = "R² of measured vs nominal HU"
    return [_check(p, crit, crit.id, target, lin.r_squared, 1.0, crit.low, crit.high, "ratio")]


def _constancy_hu_checks(j: _Judging, crit: Criterion) -> list[Check]:
    assert j.baseline is not None and crit.tolerance is not None
    base = {(r.module, r.name): r for r in j.baseline.rois}
    t = crit.tolerance
    out = []
    for r in j.meas.rois:
        b = base.get((r.module, r.name))
        if b is None or not crit.selects(r.material, r.role, r.nominal_hu):
            continue
        out.append(_roi_check(j, crit, r, " vs baseline", b.mean, b.mean - t, b.mean + t))
    return out


def _constancy_noise_checks(j: _Judging, crit: Criterion) -> list[Check]:
    assert j.baseline is not None and crit.tolerance is not None
    m, bn = j.meas, j.baseline.noise_hu
    if m.noise_hu is None or bn is None:
        return []
    t = crit.tolerance * bn
    target = f"noise SD in {m.noise_roi} vs baseline"
    return [_check(j.profile, crit, crit.id, target, m.noise_hu, bn, bn - t, bn + t, "HU")]


#: Criterion kind -> the function that applies it (one place per kind).
_BY_KIND: Mapping[str, Callable[[_Judging, Criterion], list[Check]]] = MappingProxyType(
    {
        "hu": _hu_checks,
        "uniformity": _uniformity_checks,
        "noise": _noise_checks,
        "linearity": _linearity_checks,
        "constancy_hu": _constancy_hu_checks,
        "constancy_noise": _constancy_noise_checks,
    }
)


def run_checks(
    meas: Measurements,
    phantom: Phantom,
    profile: Profile,
    baseline: CalibrationResult | None = None,
) -> tuple[tuple[Check, ...], list[str]]:
    """All checks of ``profile`` that apply, and notes on criteria that did not apply.

    Parameters
    ----------
    meas : Measurements
        What was measured.
    phantom : Phantom
        The phantom measured.
    profile : Profile
        The tolerance profile; each criterion is applied by the function of its kind.
    baseline : CalibrationResult, optional
        The commissioning result, for constancy criteria.

    Returns
    -------
    checks : tuple of Check
        One per criterion and measurement it applies to.
    notes : list of str
        Criteria that applied to nothing on this phantom or series.

    Raises
    ------
    ProfileError
        The profile needs a baseline and none (or one of another phantom) was given,
        or no criterion of the profile applies to this phantom.
    """
    check_baseline(profile, phantom, baseline)
    judging = _Judging(meas, profile, baseline)
    checks: list[Check] = []
    skipped: list[str] = []
    for crit in profile.criteria:
        got = _BY_KIND[crit.kind](judging, crit)
        if not got:
            skipped.append(f"{profile.name}/{crit.id} ({crit.description or crit.id})")
        checks.extend(got)
    if not checks:
        raise ProfileError(
            f"no criterion of profile {profile.name!r} applies to phantom {phantom.name!r} "
            f"(criteria: {', '.join(c.id for c in profile.criteria)})"
        )
    notes = []
    if skipped:
        notes.append(
            "Not judged (nothing on this phantom or series to apply them to): "
            + "; ".join(skipped)
            + "."
        )
    return tuple(checks), notes
