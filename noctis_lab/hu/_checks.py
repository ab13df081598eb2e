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

from noctis_lab._errors import ProfileError
from noctis_lab.hu._measure import Measurements
from noctis_lab.hu._phantoms import Phantom
from noctis_lab.hu._profiles import Criterion, Profile
from noctis_lab.hu._result import CalibrationResult, Check, Status

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
    """``pass`` / ``warning`` / ``fail`` of ``measured`` against ``[low, high]``."""
    if not math.isfinite(measured):
        return "fail"
    if low is not None and measured < low:
        return "fail"
    if high is not None and measured > high:
        return "fail"
    ref = expected
    if ref is None:
        if low is not None and high is not None:
            ref = 0.5 * (low + high)
        elif high is not None:
            ref = 0.0 if high > 0 else None
        elif low is not None:
            ref = None
    if ref is None:
        return "pass"
    limit = high if measured >= ref else low
    if limit is None:
        return "pass"
    room = abs(limit - ref)
    if room == 0.0:
        return "pass"  # exactly on a zero tolerance
    return "warning" if abs(measured - ref) > warning_fraction * room else "pass"


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
        kind=crit.kind,
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
    )


def check_baseline(profile: Profile, phantom: Phantom, baseline: CalibrationResult | None) -> None:
    """Raise :class:`ProfileError` when ``profile`` needs a baseline it was not given.

    A constancy profile needs a baseline result of the same phantom.
    """
    if not profile.requires_baseline:
        return
    if baseline is None:
        raise ProfileError(
            f"profile {profile.name!r} judges constancy and needs a baseline result: "
            "analyze(..., baseline=<the commissioning CalibrationResult>)"
        )
    if baseline.phantom != phantom.name:
        raise ProfileError(
            f"the baseline was measured on phantom {baseline.phantom!r}, "
            f"not {phantom.name!r}: constancy needs the same phantom"
        )


def run_checks(
    meas: Measurements,
    phantom: Phantom,
    profile: Profile,
    baseline: CalibrationResult | None = None,
) -> tuple[tuple[Check, ...], list[str]]:
    """All checks of ``profile`` that apply, and notes on criteria that did not apply.

    Raises
    ------
    ProfileError
        The profile needs a baseline and none (or one of another phantom) was given,
        or no criterion of the profile applies to this phantom.
    """
    check_baseline(profile, phantom, baseline)
    checks: list[Check] = []
    skipped: list[str] = []
    for crit in profile.criteria:
        before = len(checks)
        if crit.kind == "hu":
            for r in meas.rois:
                if crit.materials is None and r.nominal_hu is None:
                    continue
                if not crit.selects(r.material, r.role, r.nominal_hu):
                    continue
                target = f"{r.module}/{r.name} ({r.material})"
                exp: float | None
                lo: float | None
                hi: float | None
                if crit.use_phantom_range:
                    if r.range_hu is None:
                        continue
                    lo, hi = r.range_hu
                    exp = r.nominal_hu if r.nominal_hu is not None else 0.5 * (lo + hi)
                elif crit.tolerance is not None:
                    exp = crit.expected if crit.expected is not None else r.nominal_hu
                    if exp is None:
                        continue
                    lo, hi = exp - crit.tolerance, exp + crit.tolerance
                else:
                    lo_c, hi_c = crit.low, crit.high
                    exp = crit.expected if crit.expected is not None else r.nominal_hu
                    checks.append(
                        _check(
                            profile,
                            crit,
                            f"{crit.id}.{r.module}.{r.name}",
                            target,
                            r.mean,
                            exp,
                            lo_c,
                            hi_c,
                            "HU",
                        )
                    )
                    continue
                checks.append(
                    _check(
                        profile,
                        crit,
                        f"{crit.id}.{r.module}.{r.name}",
                        target,
                        r.mean,
                        exp,
                        lo,
                        hi,
                        "HU",
                    )
                )
        elif crit.kind == "uniformity":
            u = meas.uniformity
            if u is not None and crit.tolerance is not None:
                t = crit.tolerance
                for name, edge in u.edges_hu.items():
                    checks.append(
                        _check(
                            profile,
                            crit,
                            f"{crit.id}.{u.module}.{name}",
                            f"{u.module}/{name} minus centre",
                            edge - u.centre_hu,
                            0.0,
                            -t,
                            t,
                            "HU",
                        )
                    )
        elif crit.kind == "noise":
            if meas.noise_hu is not None:
                checks.append(
                    _check(
                        profile,
                        crit,
                        crit.id,
                        f"noise SD in {meas.noise_roi}",
                        meas.noise_hu,
                        None,
                        crit.low,
                        crit.high,
                        "HU",
                        ref_for_warning=0.0,
                    )
                )
        elif crit.kind == "linearity":
            lin = meas.linearity
            if lin is not None:
                if crit.metric == "slope":
                    exp = crit.expected if crit.expected is not None else 1.0
                    if crit.tolerance is not None:
                        lo, hi = exp - crit.tolerance, exp + crit.tolerance
                    else:
                        lo, hi = crit.low, crit.high
                    checks.append(
                        _check(
                            profile,
                            crit,
                            crit.id,
                            f"slope of measured vs nominal HU ({len(lin.materials)} inserts)",
                            lin.slope,
                            exp,
                            lo,
                            hi,
                            "ratio",
                        )
                    )
                elif crit.metric == "max_deviation_pct":
                    checks.append(
                        _check(
                            profile,
                            crit,
                            crit.id,
                            f"largest deviation from the fit ({lin.max_deviation_material})",
                            lin.max_deviation_pct,
                            None,
                            crit.low,
                            crit.high,
                            "%",
                            ref_for_warning=0.0,
                        )
                    )
                else:
                    checks.append(
                        _check(
                            profile,
                            crit,
                            crit.id,
                            "R² of measured vs nominal HU",
                            lin.r_squared,
                            1.0,
                            crit.low,
                            crit.high,
                            "ratio",
                        )
                    )
        elif crit.kind == "constancy_hu":
            assert baseline is not None and crit.tolerance is not None
            base = {(r.module, r.name): r for r in baseline.rois}
            for r in meas.rois:
                b = base.get((r.module, r.name))
                if b is None or not crit.selects(r.material, r.role, r.nominal_hu):
                    continue
                t = crit.tolerance
                checks.append(
                    _check(
                        profile,
                        crit,
                        f"{crit.id}.{r.module}.{r.name}",
                        f"{r.module}/{r.name} ({r.material}) vs baseline",
                        r.mean,
                        b.mean,
                        b.mean - t,
                        b.mean + t,
                        "HU",
                    )
                )
        elif crit.kind == "constancy_noise":
            assert baseline is not None and crit.tolerance is not None
            if meas.noise_hu is not None and baseline.noise_hu is not None:
                bn = baseline.noise_hu
                t = crit.tolerance * bn
                checks.append(
                    _check(
                        profile,
                        crit,
                        crit.id,
                        f"noise SD in {meas.noise_roi} vs baseline",
                        meas.noise_hu,
                        bn,
                        bn - t,
                        bn + t,
                        "HU",
                    )
                )
        if len(checks) == before:
            what = crit.description or crit.id
            skipped.append(f"{profile.name}/{crit.id} ({what})")
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
