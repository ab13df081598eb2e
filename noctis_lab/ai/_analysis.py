"""Recording model runs on studies (analyses) and clinician feedback, and their summaries."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import select

from noctis_lab._errors import ModelCheckError
from noctis_lab.ai._checks import check_model_file, load_model
from noctis_lab.ai._registry import RegisteredModelVersion, resolve_model
from noctis_lab.ai._spec import ModelSpec
from noctis_lab.ai._store import ai_analyses, ai_feedback, append_row, dumps, get_engine, utcnow

__all__ = [
    "AnalysisRecord",
    "AnalysisSummary",
    "Analyzer",
    "FeedbackSummary",
    "analyses_frame",
    "analysis_summary",
    "describe_output",
    "feedback_summary",
    "record_analysis",
    "record_feedback",
]

Verdict = Literal["agree", "false_positive", "false_negative"]
VERDICTS: tuple[str, ...] = ("agree", "false_positive", "false_negative")


@dataclass(frozen=True)
class AnalysisRecord:
    """One recorded model run on a study."""

    id: int
    model_name: str
    model_version: str
    study_uid: str
    status: str
    processing_time_s: float
    confidence: float | None
    findings: dict[str, Any]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def record_analysis(
    model_name: str,
    model_version: str,
    *,
    status: Literal["success", "failed"],
    processing_time_s: float,
    confidence: float | None = None,
    findings: dict[str, Any] | None = None,
    study_uid: str = "",
    error: str | None = None,
    created_at: datetime | None = None,
    db_url: str | None = None,
) -> int:
    """Append one analysis (a model run on a study); return its id.

    Parameters
    ----------
    model_name, model_version : str
        The registered model version that ran.
    status : {"success", "failed"}
        Whether the run gave a result.
    processing_time_s : float
        Wall time of the run.
    confidence : float, optional
        The model's confidence in its result.
    findings : dict, optional
        The result (JSON-ready).
    study_uid : str
        The study analysed.
    error : str, optional
        Why a failed run failed.
    created_at : datetime, optional
        When (default: now, UTC).
    db_url : str, optional
        The analyses database (default: :func:`noctis_lab.ai.db_url`).
    """
    if status not in ("success", "failed"):
        raise ValueError(f"analysis status must be 'success' or 'failed', not {status!r}")
    if not (processing_time_s >= 0 and math.isfinite(processing_time_s)):
        raise ValueError(f"processing_time_s must be a finite number >= 0, not {processing_time_s}")
    return append_row(
        ai_analyses,
        {
            "model_name": model_name,
            "model_version": str(model_version),
            "study_uid": study_uid,
            "status": status,
            "processing_time_s": float(processing_time_s),
            "confidence": None if confidence is None else float(confidence),
            "findings": dumps(findings or {}),
            "error": error,
            "created_at": created_at or utcnow(),
        },
        url=db_url,
    )


def describe_output(
    spec: ModelSpec, output: np.ndarray, spacing: tuple[float, ...] = (1.0, 1.0)
) -> tuple[dict[str, Any], float]:
    """Findings and a confidence in [0, 1] from one model output (batch of one)."""
    out = np.asarray(output, dtype=np.float64)
    if spec.task == "classification":
        p = float(out.ravel()[-1])
        positive = p >= spec.threshold
        names = spec.classes or ("negative", "positive")
        return (
            {"label": names[int(positive)], "probability": round(p, 4), "positive": positive},
            max(p, 1.0 - p),
        )
    if spec.task == "detection":
        from noctis_lab.ai._evaluate import find_peaks

        pts, scs = find_peaks(out.reshape(1, 1, *out.shape[-2:]))
        keep = scs[0] >= spec.threshold
        dets = [
            {"row": float(r), "col": float(c), "score": round(float(s), 4)}
            for (r, c), s in zip(pts[0][keep], scs[0][keep], strict=True)
        ]
        conf = float(np.mean(scs[0][keep])) if dets else 1.0 - float(out.max())
        return {"detections": dets, "count": len(dets)}, conf
    prob = out.reshape(out.shape[-2:])
    mask = prob >= spec.threshold
    band = prob > 0.05
    conf = float(np.mean(np.maximum(prob[band], 1 - prob[band]))) if band.any() else 1.0
    area = float(mask.sum() * np.prod(spacing[-2:]))
    return {"area_mm2": round(area, 2), "pixels": int(mask.sum())}, conf


@dataclass(frozen=True)
class Analyzer:
    """A checked, loaded model ready to analyse studies; every run is recorded.

    Build with :meth:`open` (checks the file first; an ``error`` refuses to load).
    """

    name: str
    version: str
    spec: ModelSpec
    module: Any = field(repr=False)

    @classmethod
    def open(
        cls, model: str | RegisteredModelVersion, *, tracking_uri: str | None = None
    ) -> Analyzer:
        """Resolve, check and load a registered model (``name``, ``name@alias``, ``name/3``)."""
        mv = (
            model
            if isinstance(model, RegisteredModelVersion)
            else resolve_model(model, tracking_uri=tracking_uri)
        )
        report = check_model_file(mv.path, mv.spec)
        if report.status == "error":
            reasons = "; ".join(c.detail for c in report.checks if c.state == "fail")
            raise ModelCheckError(f"{mv.name}/{mv.version}: refused: {reasons}")
        return cls(mv.name, mv.version, mv.spec, load_model(mv.path, mv.spec))

    def analyze(
        self,
        image: np.ndarray,
        *,
        study_uid: str = "",
        spacing: tuple[float, ...] = (1.0, 1.0),
        created_at: datetime | None = None,
        db_url: str | None = None,
    ) -> AnalysisRecord:
        """Run the model on one image and record the analysis (a failure is recorded too).

        Parameters
        ----------
        image : numpy.ndarray
            One image of the model's input shape.
        study_uid : str
            The study it comes from.
        spacing : tuple of float
            Pixel spacing in mm (for findings in mm).
        created_at : datetime, optional
            When (default: now, UTC).
        db_url : str, optional
            The analyses database (default: :func:`noctis_lab.ai.db_url`).
        """
        import torch

        t0 = time.perf_counter()
        findings: dict[str, Any] = {}
        conf: float | None = None
        error = None
        try:
            arr = np.asarray(image, dtype=np.float32)
            expected = tuple(self.spec.input_shape[2:])
            if arr.shape != expected:
                raise ValueError(f"image shape {arr.shape} != model input {expected}")
            if not np.isfinite(arr).all():
                raise ValueError("image holds NaN or infinite values")
            with torch.inference_mode():
                out = self.module(torch.from_numpy(arr)[None, None]).numpy()
            if not np.isfinite(out).all():
                raise ValueError("model output holds NaN or infinite values")
            from noctis_lab.ai._evaluate import apply_activation

            findings, conf = describe_output(self.spec, apply_activation(out, self.spec), spacing)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - t0
        status: Literal["success", "failed"] = "success" if error is None else "failed"
        rid = record_analysis(
            self.name,
            self.version,
            status=status,
            processing_time_s=elapsed,
            confidence=conf,
            findings=findings,
            study_uid=study_uid,
            error=error,
            created_at=created_at,
            db_url=db_url,
        )
        return AnalysisRecord(
            rid, self.name, self.version, study_uid, status, elapsed, conf, findings, error
        )


@dataclass(frozen=True)
class AnalysisSummary:
    """Analyses of one model over a window of days (``n == 0``: none; rates are ``nan``)."""

    model_name: str
    window_days: float
    n: int
    n_success: int
    success_rate: float
    median_time_s: float
    p95_time_s: float
    mean_confidence: float
    by_version: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (NaN as None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def analyses_frame(
    model_name: str | None = None, *, since: datetime | None = None, db_url: str | None = None
) -> Any:
    """Recorded analyses as a pandas DataFrame (empty, with columns, when none)."""
    import pandas as pd

    q = select(ai_analyses).order_by(ai_analyses.c.id)
    if model_name is not None:
        q = q.where(ai_analyses.c.model_name == model_name)
    if since is not None:
        q = q.where(ai_analyses.c.created_at >= since)
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(q).mappings().all()
    df = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in ai_analyses.columns])
    if len(df):
        df["findings"] = df["findings"].map(json.loads)
    return df


def analysis_summary(
    model_name: str,
    window_days: float = 7,
    *,
    now: datetime | None = None,
    db_url: str | None = None,
) -> AnalysisSummary:
    """Success rate, processing time and confidence of a model's analyses in the last days.

    Parameters
    ----------
    model_name : str
        The registered model.
    window_days : float
        How many days back from ``now``.
    now : datetime, optional
        The end of the window (default: now, UTC).
    db_url : str, optional
        The analyses database (default: :func:`noctis_lab.ai.db_url`).
    """
    since = (now or utcnow()) - timedelta(days=window_days)
    q = select(
        ai_analyses.c.status,
        ai_analyses.c.processing_time_s,
        ai_analyses.c.confidence,
        ai_analyses.c.model_version,
    ).where(ai_analyses.c.model_name == model_name, ai_analyses.c.created_at >= since)
    if now is not None:
        q = q.where(ai_analyses.c.created_at <= now)
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(q).all()
    n = len(rows)
    if n == 0:
        nan = math.nan
        return AnalysisSummary(model_name, window_days, 0, 0, nan, nan, nan, nan, {})
    ok = sum(1 for r in rows if r[0] == "success")
    times = np.array([r[1] for r in rows], dtype=float)
    confs = np.array([r[2] for r in rows if r[2] is not None], dtype=float)
    versions: dict[str, int] = {}
    for r in rows:
        versions[r[3]] = versions.get(r[3], 0) + 1
    return AnalysisSummary(
        model_name,
        window_days,
        n,
        ok,
        ok / n,
        float(np.median(times)),
        float(np.percentile(times, 95)),
        float(confs.mean()) if confs.size else math.nan,
        versions,
    )


def record_feedback(
    model_name: str,
    model_version: str,
    verdict: Verdict,
    *,
    rating: int | None = None,
    comment: str = "",
    analysis_id: int | None = None,
    user: str = "",
    db_url: str | None = None,
) -> int:
    """Append a clinician's feedback on a result; return its id.

    Parameters
    ----------
    model_name, model_version : str
        The model version whose result is judged.
    verdict : {"agree", "false_positive", "false_negative"}
        The clinician's verdict.
    rating : int, optional
        1 to 5.
    comment : str
        Free text.
    analysis_id : int, optional
        The recorded analysis judged.
    user : str
        The identity of the person giving it (the logged-in user on a dashboard):
        required.
    db_url : str, optional
        The analyses database (default: :func:`noctis_lab.ai.db_url`).

    Notes
    -----
    A double submit (the same user, model version, result, verdict, rating and
    comment: on the same ``analysis_id``, or within ``DUPLICATE_WINDOW`` without one) is
    not stored twice: the first record's id is returned.

    Raises
    ------
    IdentityError
        ``user`` is empty: anonymous feedback is refused.
    ValueError
        Unknown verdict or a rating outside 1..5.
    """
    from noctis_lab._errors import IdentityError

    who = (user or "").strip()
    if not who:
        raise IdentityError(
            f"feedback on {model_name} v{model_version} refused: no user identity given "
            "(anonymous feedback is not recorded)"
        )
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    if rating is not None and (isinstance(rating, bool) or rating not in range(1, 6)):
        raise ValueError(f"rating must be an integer 1..5, not {rating!r}")
    row = {
        "model_name": model_name,
        "model_version": str(model_version),
        "verdict": verdict,
        "rating": rating,
        "comment": comment,
        "analysis_id": analysis_id,
        "user": who,
    }
    earlier = _same_feedback(row, db_url)
    if earlier is not None:
        return earlier
    return append_row(ai_feedback, row, url=db_url)


#: Identical feedback without a result id within this time counts as a double submit.
DUPLICATE_WINDOW = timedelta(minutes=10)


def _same_feedback(row: dict[str, Any], db_url: str | None) -> int | None:
    c = ai_feedback.c
    q = select(c.id).where(
        c.model_name == row["model_name"],
        c.model_version == row["model_version"],
        c.verdict == row["verdict"],
        c.comment == row["comment"],
        c.user == row["user"],
        c.rating.is_(None) if row["rating"] is None else c.rating == row["rating"],
    )
    if row["analysis_id"] is None:
        q = q.where(c.analysis_id.is_(None), c.created_at >= utcnow() - DUPLICATE_WINDOW)
    else:
        q = q.where(c.analysis_id == row["analysis_id"])
    with get_engine(db_url).connect() as conn:
        found = conn.execute(q.order_by(c.id).limit(1)).scalar()
    return None if found is None else int(found)


@dataclass(frozen=True)
class FeedbackSummary:
    """Feedback on one model: counts per verdict, agreement rate, mean rating, per version."""

    model_name: str
    n: int
    counts: dict[str, int]
    agreement_rate: float
    mean_rating: float
    by_version: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (NaN as None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def feedback_summary(model_name: str, *, db_url: str | None = None) -> FeedbackSummary:
    """Summarise the feedback stored for a model (zeros and ``nan`` rates when none)."""
    q = select(ai_feedback.c.verdict, ai_feedback.c.rating, ai_feedback.c.model_version).where(
        ai_feedback.c.model_name == model_name
    )
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(q).all()
    counts = dict.fromkeys(VERDICTS, 0)
    by_version: dict[str, dict[str, int]] = {}
    ratings = []
    for verdict, rating, version in rows:
        counts[verdict] = counts.get(verdict, 0) + 1
        by_version.setdefault(version, dict.fromkeys(VERDICTS, 0))[verdict] += 1
        if rating is not None:
            ratings.append(rating)
    n = len(rows)
    return FeedbackSummary(
        model_name,
        n,
        counts,
        counts["agree"] / n if n else math.nan,
        float(np.mean(ratings)) if ratings else math.nan,
        by_version,
    )
