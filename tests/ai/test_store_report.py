"""Analyses and feedback (append-only SQLite), report text in a sandbox, review workflow."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from noctis_lab import ReportError
from noctis_lab.ai import (
    Analyzer,
    analyses_frame,
    analysis_summary,
    feedback_summary,
    record_analysis,
    record_feedback,
    register_model,
    render_report,
    report_history,
    review_report,
    submit_report,
)
from noctis_lab.ai._store import get_engine, utcnow


def test_analyses_are_append_only_and_summarised(db: str) -> None:
    now = utcnow()
    for i in range(6):
        record_analysis(
            "m",
            "1",
            status="success" if i else "failed",
            processing_time_s=0.2 * i,
            confidence=0.8,
            findings={"i": i},
            created_at=now - timedelta(days=i),
            db_url=db,
        )
    record_analysis(
        "m",
        "1",
        status="success",
        processing_time_s=1.0,
        created_at=now - timedelta(days=30),
        db_url=db,
    )
    s = analysis_summary("m", 7, db_url=db)
    assert s.n == 6 and s.n_success == 5 and s.success_rate == pytest.approx(5 / 6)
    assert s.median_time_s == pytest.approx(0.5)
    assert analysis_summary("m", 2.5, db_url=db).n == 3
    df = analyses_frame("m", db_url=db)
    assert len(df) == 7 and df["findings"].iloc[1] == {"i": 1}
    with get_engine(db).begin() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("UPDATE ai_analyses SET status='success'"))
    record_feedback("m", "1", "agree", user="dr-a", db_url=db)
    with get_engine(db).begin() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM ai_feedback"))
    with pytest.raises(ValueError, match="status must be"):
        record_analysis("m", "1", status="ok", processing_time_s=1, db_url=db)  # type: ignore[arg-type]
    journal = get_engine(db).connect().exec_driver_sql("PRAGMA journal_mode").scalar()
    assert journal == "wal"


def test_feedback_summary(db: str) -> None:
    for verdict, rating in [
        ("agree", 5),
        ("agree", 4),
        ("false_positive", 2),
        ("false_negative", None),
    ]:
        record_feedback(
            "fb",
            "2",
            verdict,  # type: ignore[arg-type]
            rating=rating,
            comment="<b>x</b>",
            user="dr-a",
            db_url=db,
        )
    record_feedback("fb", "3", "agree", user="dr-a", db_url=db)
    s = feedback_summary("fb", db_url=db)
    assert s.n == 5 and s.counts == {"agree": 3, "false_positive": 1, "false_negative": 1}
    assert s.agreement_rate == pytest.approx(0.6)
    assert s.mean_rating == pytest.approx(11 / 3)
    assert s.by_version["2"]["agree"] == 2 and s.by_version["3"]["agree"] == 1
    with pytest.raises(ValueError, match="verdict"):
        record_feedback("fb", "2", "maybe", user="dr-a", db_url=db)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rating"):
        record_feedback("fb", "2", "agree", rating=6, user="dr-a", db_url=db)


def test_feedback_needs_identity_and_ignores_double_submits(db: str) -> None:
    from noctis_lab import IdentityError

    for who in ("", "   "):
        with pytest.raises(IdentityError, match="no user identity"):
            record_feedback("fb", "1", "agree", rating=4, user=who, db_url=db)
    aid = record_analysis("fb", "1", status="success", processing_time_s=0.1, db_url=db)
    first = record_feedback("fb", "1", "agree", rating=4, analysis_id=aid, user="dr-a", db_url=db)
    again = record_feedback("fb", "1", "agree", rating=4, analysis_id=aid, user="dr-a", db_url=db)
    assert again == first  # a double click stores one record
    other = record_feedback("fb", "1", "agree", rating=4, analysis_id=aid, user="dr-b", db_url=db)
    changed = record_feedback(
        "fb", "1", "false_positive", rating=2, analysis_id=aid, user="dr-a", db_url=db
    )
    assert len({first, other, changed}) == 3  # another reader, or a changed mind, is kept
    no_result = [
        record_feedback("fb", "1", "agree", comment="ok", user="dr-c", db_url=db) for _ in range(2)
    ]
    assert no_result[0] == no_result[1]
    assert feedback_summary("fb", db_url=db).n == 4


def test_concurrent_writers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    writer = Path(__file__).with_name("_writer.py")
    procs = [subprocess.Popen([sys.executable, str(writer), url, f"w{k}", "15"]) for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert analysis_summary("concurrent", db_url=url).n == 45
    assert feedback_summary("concurrent", db_url=url).n == 45


def test_report_text_sandbox_and_review(db: str) -> None:
    findings = {"label": "artifact", "probability": 0.91, "positive": True}
    sure = render_report("classification", findings, confidence=0.91, model="cls v1")
    assert "classified the image as artifact (probability 0.91)" in sure.findings
    assert sure.impression == "Artifact suspected." and not sure.needs_review
    unsure = render_report("classification", {**findings, "probability": 0.55}, confidence=0.55)
    assert unsure.needs_review and "needs human review" in unsure.impression
    # HTML output escapes user-controlled text
    html = render_report(
        "classification", {**findings, "label": "<script>x</script>"}, confidence=0.9, html=True
    )
    assert "<script>" not in html.findings and "&lt;script&gt;" in html.findings
    # the sandbox refuses to reach Python internals
    with pytest.raises(ReportError, match=r"sandbox|unsafe|template"):
        render_report(
            "classification",
            findings,
            confidence=0.9,
            templates={"findings": "{{ f.__class__.__mro__[1].__subclasses__() }}"},
        )
    with pytest.raises(ReportError, match="failed"):
        render_report("classification", {}, confidence=0.9)  # missing values
    # review workflow keeps every version
    v1 = submit_report(unsure, model_name="cls", model_version="1", db_url=db)
    assert v1.version == 1 and v1.state == "pending" and v1.needs_review
    v2 = review_report(
        v1.report_id,
        "modified",
        reviewer="dr-a",
        db_url=db,
        impression="Ring artifact confirmed.",
        note="seen on slice",
    )
    v3 = review_report(v1.report_id, "approved", reviewer="dr-b", db_url=db)
    hist = report_history(v1.report_id, db_url=db)
    assert [h.state for h in hist] == ["pending", "modified", "approved"]
    assert hist[0].impression == unsure.impression  # the original is kept
    assert v2.impression == v3.impression == "Ring artifact confirmed."
    assert not v3.needs_review
    with pytest.raises(ReportError, match="without any change"):
        review_report(v1.report_id, "modified", reviewer="dr-a", db_url=db)
    with pytest.raises(ReportError, match="need action 'modified'"):
        review_report(v1.report_id, "approved", reviewer="dr-a", impression="x", db_url=db)
    with pytest.raises(ReportError, match="no report"):
        review_report("nope", "approved", reviewer="x", db_url=db)
    assert report_history("nope", db_url=db) == ()


def test_analyzer_records_success_and_failure(
    tracking: str, db: str, model_files: dict[str, Path]
) -> None:
    from noctis_lab.ai._demo_data import make_batch

    register_model(model_files["segmentation"], "analyzer-seg", tracking_uri=tracking)
    an = Analyzer.open("analyzer-seg", tracking_uri=tracking)
    img = make_batch(1, seed=3).images[0]
    ok = an.analyze(img, study_uid="1.2.3", spacing=(0.5, 0.5), db_url=db)
    assert ok.status == "success" and ok.confidence is not None
    assert ok.findings["area_mm2"] == pytest.approx(ok.findings["pixels"] * 0.25)
    bad = an.analyze(np.full((64, 64), np.nan, np.float32), study_uid="1.2.4", db_url=db)
    assert bad.status == "failed" and "NaN" in (bad.error or "")
    wrong = an.analyze(np.zeros((10, 10), np.float32), db_url=db)
    assert wrong.status == "failed" and "shape" in (wrong.error or "")
    s = analysis_summary("analyzer-seg", db_url=db)
    assert s.n == 3 and s.n_success == 1 and not math.isnan(s.median_time_s)
