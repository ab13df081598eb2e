"""The messages' words: a calibration, a drift alarm, an AI model's status change."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from noctis_lab.hu._drift import DriftResult
    from noctis_lab.hu._result import CalibrationResult


__all__ = ["ai_change", "ai_text", "calibration_text", "drift_text", "qa_date"]

_MAX_CHECKS = 6


def _scanner_name(result: CalibrationResult) -> str:
    sc = result.scanner
    who = " ".join(x for x in (sc.manufacturer, sc.model) if x)
    name = sc.station or sc.serial or sc.key
    return f"{name} ({who})" if who else name


def qa_date(result: CalibrationResult) -> str:
    for text in (result.acquisition_datetime, result.scanner.acquisition_datetime):
        if text:
            return str(text)[:10]
    return str(result.analysed_at)[:10]


def _tolerance(check: Any) -> str:
    tol = str(check.tolerance or "").strip()
    return re.sub(r"\s*ratio$", "", tol)


def _check_text(check: Any) -> str:
    """One check in a physicist's words: what, the value, and the tolerance."""
    m = check.measured
    target = str(check.target)
    unit = str(check.unit or "")
    if m is None or (isinstance(m, float) and not math.isfinite(m)):
        value = "not measured"
    elif unit == "ratio":
        value = f"{m:.3f}"
    elif unit == "HU" and check.kind in ("hu", "constancy_hu"):
        exp = check.expected
        if exp is not None and exp == 0:
            value = f"{m:+.1f} HU"
        elif check.deviation is not None:
            value = f"{m:.1f} HU ({check.deviation:+.1f})"
        else:
            value = f"{m:.1f} HU"
    else:
        value = f"{m:.3g} {unit}".strip()
    if check.kind == "hu":
        found = re.search(r"\(([^)]+)\)\s*$", target)
        label = found.group(1) if found else target
    elif check.kind == "linearity" and target.startswith("slope"):
        label = "linearity slope"
    else:
        label = target
    tol = _tolerance(check)
    return f"{label} {value}" + (f" (tolerance {tol})" if tol else "")


def calibration_text(result: CalibrationResult, record_id: int | None = None) -> str:
    """The message announcing a calibration: verdict, what is out, and the advice.

    E.g. ``CT-RT-4 (Canon Aquilion Prime SP) FAILED its CatPhan 604 QA on 2026-11-20:
    Water-equivalent +12.2 HU (tolerance 0 ± 5 HU). Recommendation: ...``; a doubtful
    localisation reads ``... NEEDS REVIEW after its CatPhan 604 QA ...`` with no verdict.
    """
    verdict = {
        "fail": "FAILED",
        "review": "NEEDS REVIEW after",
        "warning": "passed with WARNINGS",
        "pass": "PASSED",
    }.get(result.status, result.status.upper())
    head = f"{_scanner_name(result)} {verdict} its {result.phantom_title} QA on {qa_date(result)}"
    order = {"review": 0, "fail": 1, "warning": 2}
    bad = sorted(
        (c for c in result.checks if c.status in order), key=lambda c: order[str(c.status)]
    )
    parts = [_check_text(c) + ("" if c.status == "fail" else f" [{c.status}]") for c in bad]
    if len(parts) > _MAX_CHECKS:
        parts = [*parts[:_MAX_CHECKS], f"and {len(parts) - _MAX_CHECKS} more"]
    text = head + (": " + "; ".join(parts) if parts else "") + "."
    if result.recommendations:
        text += " Recommendation: " + " ".join(result.recommendations)
    ref = f"record {record_id}, " if record_id is not None else ""
    return f"{text} ({ref}profile {result.profile} v{result.profile_version})"


def _outside(d: DriftResult) -> bool:
    last = d.values[-1] if d.values else None
    if last is None:
        return False
    return (d.high is not None and last > d.high) or (d.low is not None and last < d.low)


def _urgency(d: DriftResult) -> tuple[int, float, float]:
    """Sort key, most urgent first: outside tolerance, then leaving soonest, then largest."""
    exit_ts = d.projected_exit.timestamp() if d.projected_exit is not None else math.inf
    return (0 if _outside(d) else 1, exit_ts, -abs(d.drift_hu or 0.0))


def drift_text(result: CalibrationResult, alarms: Sequence[DriftResult]) -> str:
    """One message for the new drift alarms of one scanner, the most urgent in full."""
    scanner = alarms[0].scanner
    ranked = sorted(alarms, key=_urgency)
    worst = ranked[0]
    detail = worst.message.replace(f" on {scanner}", "", 1)
    if len(ranked) == 1:
        body = detail
    else:
        listed = [f"{d.material} {d.drift_hu or 0.0:+.1f} HU" for d in ranked[:_MAX_CHECKS]]
        if len(ranked) > _MAX_CHECKS:
            listed.append(f"and {len(ranked) - _MAX_CHECKS} more")
        body = f"{len(ranked)} materials drift ({', '.join(listed)}). Most urgent: {detail}"
    advice = (
        "recalibrate the CT numbers before further clinical use"
        if any(_outside(d) for d in alarms)
        else "book a CT-number calibration check before it leaves tolerance"
    )
    return (
        f"Drift alarm on {_scanner_name(result)}, {result.phantom_title}: {body}. "
        f"Recommendation: review the trend (noctis-lab hu trend '{scanner}'), repeat "
        f"the daily air calibration and {advice}."
    )


def ai_text(name: str, version: str, old: str | None, new: str, issues: str) -> str:
    label = f"AI model {name}" + (f" v{version}" if version else "")
    if old is None:
        head = f"{label} is at status {new.upper()}"
    elif new in ("excellent", "good") and old not in ("excellent", "good"):
        head = f"{label} is back to {new.upper()} (was {old.upper()})"
    else:
        head = f"{label} changed status from {old.upper()} to {new.upper()}"
    text = head + (f": {issues}" if issues else ".")
    if new == "error":
        text += (
            f" Recommendation: do not rely on this model's results until the issue is "
            f"resolved; details with `noctis-lab ai status {name}`."
        )
    elif new == "warning":
        text += f" Recommendation: review `noctis-lab ai status {name}` before the next use."
    return text


def ai_change(previous: str | None, current: str, levels: Iterable[str]) -> bool:
    """Whether a model's status change is worth a message.

    Parameters
    ----------
    previous : str or None
        The last status seen (None: the model was never seen).
    current : str
        Its status now.
    levels : iterable of str
        The statuses worth a message (:meth:`AlertConfig.ai_levels`).

    Returns
    -------
    bool
        No change: False. First sighting: True when ``current`` is at an alert level.
        A change: True when either side is at an alert level (entering, moving within,
        or leaving the alert levels).
    """
    lv = set(levels)
    if previous == current:
        return False
    if previous is None:
        return current in lv
    return previous in lv or current in lv
