"""Report text from findings (sandboxed Jinja2) and the append-only review workflow.

Templates are rendered in ``jinja2.sandbox.SandboxedEnvironment``: a template cannot reach
Python internals; HTML output autoescapes every value (user text included).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import select

from noctis_lab._errors import ReportError
from noctis_lab.ai._store import ai_report_versions, append_row, get_engine

__all__ = [
    "DEFAULT_TEMPLATES",
    "ReportText",
    "ReportVersion",
    "render_report",
    "report_history",
    "review_report",
    "submit_report",
]

ReviewState = Literal["pending", "approved", "modified", "rejected"]

#: Default templates (findings / impression / recommendations) by task. ``f`` = findings,
#: ``conf`` = confidence, ``review`` = needs review, ``model`` = "name vN".
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "classification": {
        "findings": "{{ model }} classified the image as {{ f.label }} "
        "(probability {{ '%.2f' % f.probability }}).",
        "impression": "{% if f.positive %}Artifact suspected.{% else %}No artifact detected."
        "{% endif %}{% if review %} Low confidence ({{ '%.0f' % (conf * 100) }}%): "
        "needs human review.{% endif %}",
        "recommendations": "{% if review %}A physicist should review the image before use."
        "{% elif f.positive %}Check the scanner (rings: detector calibration; streaks: "
        "dense objects or tube arcing).{% else %}No action needed.{% endif %}",
    },
    "detection": {
        "findings": "{{ model }} found {{ f.count }} insert{{ '' if f.count == 1 else 's' }}"
        "{% for d in f.detections %}{{ ':' if loop.first }} ({{ '%.0f' % d.row }}, "
        "{{ '%.0f' % d.col }}) score {{ '%.2f' % d.score }}{{ ';' if not loop.last }}"
        "{% endfor %}.",
        "impression": "{{ f.count }} target{{ '' if f.count == 1 else 's' }} detected."
        "{% if review %} Low confidence ({{ '%.0f' % (conf * 100) }}%): needs human review."
        "{% endif %}",
        "recommendations": "{% if review %}Confirm each detection on the image."
        "{% else %}No action needed.{% endif %}",
    },
    "segmentation": {
        "findings": "{{ model }} segmented {{ '%.1f' % f.area_mm2 }} mm2 ({{ f.pixels }} pixels).",
        "impression": "Segmentation {{ 'complete' if f.pixels else 'empty' }}."
        "{% if review %} Low confidence ({{ '%.0f' % (conf * 100) }}%): needs human review."
        "{% endif %}",
        "recommendations": "{% if review %}Check the contour before using measurements."
        "{% else %}No action needed.{% endif %}",
    },
}


@dataclass(frozen=True)
class ReportText:
    """Rendered report sections; ``needs_review`` when confidence is below the threshold."""

    findings: str
    impression: str
    recommendations: str
    needs_review: bool
    confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def _env(html: bool) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(autoescape=html, undefined=StrictUndefined)


def render_report(
    task: str,
    findings: dict[str, Any],
    *,
    confidence: float | None,
    model: str = "the model",
    review_below: float = 0.7,
    templates: dict[str, str] | None = None,
    html: bool = False,
) -> ReportText:
    """Render findings / impression / recommendations text in a sandbox.

    Parameters
    ----------
    task : str
        Selects the default templates.
    findings : dict
        From :func:`noctis_lab.ai.describe_output` or an :class:`AnalysisRecord`.
    confidence : float or None
        ``None`` or below ``review_below``: the result is marked as needing human review.
    templates : dict, optional
        Replacement templates (keys ``findings``, ``impression``, ``recommendations``).
    html : bool
        Autoescape values for HTML output.

    Raises
    ------
    ReportError
        A template is malformed, refers to a missing value, or tries something the sandbox
        forbids.
    """
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    tpl = dict(DEFAULT_TEMPLATES.get(task, {}))
    tpl.update(templates or {})
    missing = {"findings", "impression", "recommendations"} - set(tpl)
    if missing:
        raise ReportError(f"no template for {sorted(missing)} (task {task!r})")
    review = confidence is None or confidence < review_below
    env = _env(html)
    ctx = {
        "f": findings,
        "conf": confidence if confidence is not None else 0.0,
        "review": review,
        "model": model,
    }
    out = {}
    for key in ("findings", "impression", "recommendations"):
        try:
            out[key] = str(env.from_string(tpl[key]).render(**ctx)).strip()
        except SecurityError as exc:
            raise ReportError(f"{key} template refused by the sandbox: {exc}") from exc
        except TemplateError as exc:
            raise ReportError(f"{key} template failed: {exc}") from exc
    return ReportText(
        out["findings"], out["impression"], out["recommendations"], review, confidence
    )


@dataclass(frozen=True)
class ReportVersion:
    """One stored version of a report (versions are never changed, only added)."""

    report_id: str
    version: int
    state: ReviewState
    findings: str
    impression: str
    recommendations: str
    needs_review: bool
    confidence: float | None
    model_name: str
    model_version: str
    author: str
    note: str
    analysis_id: int | None
    created_at: Any

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (``created_at`` as ISO text)."""
        d = asdict(self)
        d["created_at"] = str(self.created_at)
        return d


def _append_version(values: dict[str, Any], db_url: str | None) -> ReportVersion:
    from sqlalchemy.exc import IntegrityError

    for _ in range(20):
        history = (
            report_history(values["report_id"], db_url=db_url) if values.get("_existing") else ()
        )
        version = (history[-1].version + 1) if history else 1
        row = {k: v for k, v in values.items() if not k.startswith("_")}
        row["version"] = version
        try:
            append_row(ai_report_versions, row, url=db_url)
        except IntegrityError:  # a concurrent reviewer took this version number: retry
            continue
        return report_history(values["report_id"], db_url=db_url)[-1]
    raise ReportError(f"report {values['report_id']}: could not append a version")


def submit_report(
    text: ReportText,
    *,
    model_name: str,
    model_version: str,
    analysis_id: int | None = None,
    author: str = "noctis-ai",
    db_url: str | None = None,
) -> ReportVersion:
    """Store a new report as version 1 in state ``pending``; return it.

    Parameters
    ----------
    text : ReportText
        The drafted findings, impression and recommendations.
    model_name, model_version : str
        The model version that drafted it.
    analysis_id : int, optional
        The recorded analysis it reports.
    author : str
        Who wrote this version.
    db_url : str, optional
        The analyses database (default: :func:`noctis_lab.ai.db_url`).
    """
    rid = uuid.uuid4().hex
    return _append_version(
        {
            "report_id": rid,
            "state": "pending",
            "findings": text.findings,
            "impression": text.impression,
            "recommendations": text.recommendations,
            "needs_review": text.needs_review,
            "confidence": text.confidence,
            "model_name": model_name,
            "model_version": str(model_version),
            "author": author,
            "note": "",
            "analysis_id": analysis_id,
        },
        db_url,
    )


def review_report(
    report_id: str,
    action: Literal["approved", "modified", "rejected"],
    *,
    reviewer: str,
    note: str = "",
    findings: str | None = None,
    impression: str | None = None,
    recommendations: str | None = None,
    db_url: str | None = None,
) -> ReportVersion:
    """Add a review version: ``approved`` / ``rejected`` keep the text, ``modified`` changes it.

    Every earlier version is kept.

    Parameters
    ----------
    report_id : str
        The report reviewed.
    action : {"approved", "modified", "rejected"}
        The review.
    reviewer : str
        Who reviewed it.
    note : str
        The reviewer's note.
    findings, impression, recommendations : str, optional
        The changed text of a ``modified`` review (unchanged parts left out).
    db_url : str, optional
        The analyses database (default: :func:`noctis_lab.ai.db_url`).

    Raises
    ------
    ReportError
        An unknown report, an unknown action, or a ``modified`` review that changes
        nothing.
    """
    if action not in ("approved", "modified", "rejected"):
        raise ReportError(f"review action must be approved, modified or rejected, not {action!r}")
    history = report_history(report_id, db_url=db_url)
    if not history:
        raise ReportError(f"no report {report_id!r}")
    last = history[-1]
    new = {
        "findings": last.findings if findings is None else findings,
        "impression": last.impression if impression is None else impression,
        "recommendations": last.recommendations if recommendations is None else recommendations,
    }
    changed = any(new[k] != getattr(last, k) for k in new)
    if action == "modified" and not changed:
        raise ReportError(f"report {report_id}: 'modified' review without any change")
    if action != "modified" and changed:
        raise ReportError(f"report {report_id}: text changes need action 'modified'")
    return _append_version(
        {
            "report_id": report_id,
            "state": action,
            **new,
            "needs_review": False if action != "rejected" else last.needs_review,
            "confidence": last.confidence,
            "model_name": last.model_name,
            "model_version": last.model_version,
            "author": reviewer,
            "note": note,
            "analysis_id": last.analysis_id,
            "_existing": True,
        },
        db_url,
    )


def report_history(report_id: str, *, db_url: str | None = None) -> tuple[ReportVersion, ...]:
    """All versions of a report, oldest first (empty when unknown)."""
    t = ai_report_versions
    q = select(t).where(t.c.report_id == report_id).order_by(t.c.version)
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(q).mappings().all()
    return tuple(
        ReportVersion(
            r["report_id"],
            r["version"],
            r["state"],
            r["findings"],
            r["impression"],
            r["recommendations"],
            bool(r["needs_review"]),
            r["confidence"],
            r["model_name"],
            r["model_version"],
            r["author"],
            r["note"],
            r["analysis_id"],
            r["created_at"],
        )
        for r in rows
    )
