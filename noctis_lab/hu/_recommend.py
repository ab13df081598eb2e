"""Recommendations tied to the pattern of failures, in a physicist's words.

Patterns recognised (from the checks and the linearity fit of measured vs
nominal CT number):

* **offset** — the fit's slope is close to 1 but its intercept is not 0: every
  material reads high (or low) by about the same number of HU;
* **scale** — the slope departs from 1: the error grows with the distance from
  water (dense materials and air deviate in opposite directions);
* **single material** — one or two inserts fail while the others lie on the fit:
  the insert or the ROI placement is suspect, not the scanner;
* **non-uniformity** — edge ROIs differ from the centre (cupping or capping);
* **noise** — the noise criterion fails;
* **localisation doubts** — the phantom was found with reservations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from noctis_lab.hu._locate import is_doubtful
from noctis_lab.hu._measure import Measurements
from noctis_lab.hu._result import Check, Linearity, Localisation

__all__ = ["recommend"]

#: Slope departures below this are not called a scale error (0.5%).
SLOPE_NOTICE = 0.005
#: Without a linearity criterion, a slope this far from 1 is called a scale error (2 %).
SCALE_WITHOUT_CRITERION = 0.02
#: Intercepts below this are not called an offset (HU).
OFFSET_NOTICE = 3.0


def robust_line(lin: Linearity) -> tuple[float, float, list[str]]:
    """Slope and intercept after leaving out up to two outlying inserts, and those inserts.

    An insert is an outlier when its residual from the line through the others is
    larger than ``max(5 HU, 4 x the spread of the other residuals, 4 x its SEM)``; a
    single bad insert then cannot pass for an offset or a scale error.
    """
    x = np.asarray(lin.nominal_hu, dtype=np.float64)
    y = np.asarray(lin.measured_hu, dtype=np.float64)
    sem = np.asarray(lin.sem_hu, dtype=np.float64) if lin.sem_hu else np.zeros_like(x)
    keep = np.ones(x.size, dtype=bool)
    out: list[str] = []
    for _ in range(2):
        if keep.sum() < 5:
            break
        slope, icpt = np.polyfit(x[keep], y[keep], 1)
        res = y - (slope * x + icpt)
        k = int(np.argmax(np.where(keep, np.abs(res), -1.0)))
        others = keep.copy()
        others[k] = False
        s2, i2 = np.polyfit(x[others], y[others], 1)
        r_k = y[k] - (s2 * x[k] + i2)
        r_o = y[others] - (s2 * x[others] + i2)
        spread = 1.4826 * float(np.median(np.abs(r_o - np.median(r_o))))
        if abs(r_k) > max(5.0, 4.0 * spread, 4.0 * float(sem[k])):
            keep[k] = False
            out.append(lin.materials[k])
        else:
            break
    slope, icpt = np.polyfit(x[keep], y[keep], 1)
    return float(slope), float(icpt), out


def _outside_linearity(checks: Sequence[Check], slope: float) -> bool:
    """Whether ``slope`` (the line without outlying inserts) fails the linearity check too."""
    for c in checks:
        if c.kind == "linearity" and c.unit == "ratio":
            below = c.low is not None and slope < c.low
            above = c.high is not None and slope > c.high
            return below or above
    return True


def _hu_checks(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if c.kind in ("hu", "constancy_hu")]


@dataclass(frozen=True)
class _Line:
    """What the linearity fit says about the failures: a scale error, an offset, outliers."""

    scale: bool
    offset: bool
    outliers: tuple[str, ...]
    slope: float
    intercept: float


def _line_pattern(checks: Sequence[Check], lin: Linearity, hu_bad: list[Check]) -> _Line:
    slope, intercept, outliers = robust_line(lin)
    slope_err = slope - 1.0
    lin_judged = any(c.kind == "linearity" for c in checks)
    lin_bad = any(c.kind == "linearity" and c.status != "pass" for c in checks)
    scale = (
        lin_bad and _outside_linearity(checks, slope)
        if lin_judged
        else bool(hu_bad) and abs(slope_err) >= SCALE_WITHOUT_CRITERION
    ) and abs(slope_err) >= SLOPE_NOTICE
    offset = abs(intercept) >= OFFSET_NOTICE and not scale and bool(hu_bad)
    if outliers and not lin_bad:
        # failures explained by outlying inserts alone are not a scanner pattern
        bad_materials = {c.material for c in hu_bad}
        if bad_materials <= set(outliers):
            scale = offset = False
    return _Line(scale, offset, tuple(outliers), slope, intercept)


def _scale_text(lin: Linearity, line: _Line) -> str:
    dense = max(zip(lin.nominal_hu, lin.measured_hu, strict=True), key=lambda t: t[0])
    light = min(zip(lin.nominal_hu, lin.measured_hu, strict=True), key=lambda t: t[0])
    return (
        f"Scale error: the CT numbers deviate in proportion to density (fit slope "
        f"{line.slope:.3f} without outlying inserts, i.e. {100 * (line.slope - 1):+.1f}%; "
        f"the densest insert reads {dense[1] - dense[0]:+.0f} HU, the lightest "
        f"{light[1] - light[0]:+.0f} HU from nominal; intercept {line.intercept:+.1f} HU). "
        "A uniform offset would not do this: check that the protocol's kVp and "
        "reconstruction kernel are ones the scanner is calibrated for, then repeat the air "
        "calibration and ask the vendor to check the CT-number (water/beam-hardening) "
        "calibration for this kVp."
    )


def _offset_text(line: _Line) -> str:
    return (
        f"Offset: all materials read about {line.intercept:+.1f} HU "
        f"{'high' if line.intercept > 0 else 'low'} while the slope is {line.slope:.3f} "
        "(no scale error). A uniform shift points at the water/air calibration: repeat "
        "the daily air calibration, scan a water phantom to confirm 0 HU at the centre, "
        "and if the offset persists have the vendor recalibrate the CT-number offset."
    )


def _with_line(checks: Sequence[Check], lin: Linearity, hu_bad: list[Check]) -> list[str]:
    """CT-number advice when there is a linearity fit: scale, offset or single materials."""
    line = _line_pattern(checks, lin, hu_bad)
    lin_bad = any(c.kind == "linearity" and c.status != "pass" for c in checks)
    if line.scale:
        return [_scale_text(lin, line)]
    if line.offset:
        return [_offset_text(line)]
    if not (hu_bad or (lin_bad and line.outliers)):
        return []
    if line.outliers:
        odd = sorted(set(line.outliers))
        return [
            f"Single-material deviation: {', '.join(odd)} "
            f"{'is' if len(odd) == 1 else 'are'} off the line the other inserts follow. "
            "Suspect the insert (air bubble, wrong or swapped insert, damage) or the ROI "
            "placement rather than the scanner: inspect the overlay and the insert."
        ]
    return [
        f"Out of tolerance: {', '.join(sorted({c.target for c in hu_bad}))}. The deviation "
        "fits neither a uniform offset nor a scale error; repeat the scan and compare with "
        "the baseline."
    ]


def _without_line(hu_bad: list[Check]) -> list[str]:
    """CT-number advice without a linearity fit (too few inserts): offset or out of tolerance."""
    if not hu_bad:
        return []
    devs = [c.deviation for c in hu_bad if c.deviation is not None]
    if devs and (all(d > 0 for d in devs) or all(d < 0 for d in devs)):
        mean = sum(devs) / len(devs)
        return [
            f"Offset: the judged materials all read {'high' if mean > 0 else 'low'} (about "
            f"{mean:+.1f} HU): repeat the air calibration and check the water CT number."
        ]
    listed = sorted(
        {f"{c.target} ({c.deviation:+.1f} HU)" for c in hu_bad if c.deviation is not None}
    )
    return [
        "Out of tolerance: "
        + ", ".join(listed)
        + ". Repeat the scan; if it persists, repeat the air calibration and compare with "
        "the baseline."
    ]


def _uniformity_advice(checks: Sequence[Check], meas: Measurements) -> list[str]:
    uni_bad = [c for c in checks if c.kind == "uniformity" and c.status != "pass"]
    u = meas.uniformity
    if not uni_bad or u is None:
        return []
    signs = [c.measured for c in uni_bad if c.measured is not None]
    shape = (
        "cupping (edges brighter than the centre)"
        if signs and all(s > 0 for s in signs)
        else "capping (centre brighter than the edges)"
        if signs and all(s < 0 for s in signs)
        else "a non-uniform field"
    )
    return [
        f"Non-uniformity: {u.max_difference_roi} differs from the centre by "
        f"{u.max_difference_hu:+.1f} HU — {shape}. Check that the phantom is centred in "
        "the gantry (bowtie filter), then the beam-hardening correction and the air "
        "calibration; ring or band patterns suggest a detector channel problem."
    ]


def _noise_advice(checks: Sequence[Check]) -> list[str]:
    out = []
    for c in checks:
        if c.kind not in ("noise", "constancy_noise") or c.status == "pass" or c.measured is None:
            continue
        if c.kind == "noise":
            limit = c.high if c.high is not None else c.low
            out.append(
                f"Noise: SD {c.measured:.1f} HU against a limit of {limit:g} HU "
                f"({c.status}). Compare the protocol (mAs, kVp, slice thickness, kernel) with "
                "the baseline protocol; if it is unchanged, rising noise points at tube output "
                "or the detector: compare with the scanner's baseline and call service."
            )
        else:
            out.append(
                f"Noise constancy: SD {c.measured:.1f} HU vs baseline {c.expected:.1f} HU "
                f"({c.status}). Check that the protocol matches the baseline acquisition; a "
                "changed noise at the same protocol means changed dose or detector performance."
            )
    return out


def _summary(checks: Sequence[Check]) -> list[str]:
    if any(c.status == "fail" for c in checks):
        return []
    warnings = sum(c.status == "warning" for c in checks)
    if not warnings:
        return ["All criteria pass: no action needed."]
    return [
        f"No failure, {warnings} warning(s): values are within tolerance but close to "
        "a limit — watch the trend."
    ]


def _doubt_advice(loc: Localisation) -> str:
    doubts = [n for n in loc.notes if n.startswith("doubt")] or [
        f"the insert pattern correlates only {loc.score:.3f} with the nominal values"
    ]
    return (
        "Needs review: the phantom was found with doubts ("
        + "; ".join(d.removeprefix("doubt: ") for d in doubts)
        + "). No verdict is given on the scanner: check the ROI overlay, and if the ROIs "
        "are off give the reference slice, the phantom centre or its roll by hand."
    )


def recommend(
    checks: Sequence[Check],
    meas: Measurements,
    loc: Localisation,
    extra_notes: Sequence[str] = (),
) -> tuple[str, ...]:
    """Plain-language advice for the failures and warnings in ``checks``.

    Advice follows the checks: a scale error is named only when the linearity
    check fails (or, with no linearity criterion, when the judged materials deviate
    in proportion to density by 2 % or more), an offset with its size and sign. A
    doubtful localisation gives only the localisation advice: no verdict on the
    scanner, and no service advice, until the ROI overlay has been checked. The text
    names no API or command-line option: each interface adds its own how-to.

    Parameters
    ----------
    checks : sequence of Check
        The judged checks.
    meas : Measurements
        The measurements (linearity fit, uniformity) behind them.
    loc : Localisation
        Where the phantom was found and the doubts.
    extra_notes : sequence of str
        Notes appended as they are (criteria that did not apply, missing inserts).

    Returns
    -------
    tuple of str
        One piece of advice per pattern recognised.
    """
    if is_doubtful(loc):
        return (_doubt_advice(loc), *extra_notes)
    hu_bad = [c for c in _hu_checks(checks) if c.status != "pass"]
    ct_numbers = (
        _with_line(checks, meas.linearity, hu_bad)
        if meas.linearity is not None
        else _without_line(hu_bad)
    )
    return (
        *_summary(checks),
        *ct_numbers,
        *_uniformity_advice(checks, meas),
        *_noise_advice(checks),
        *extra_notes,
    )
