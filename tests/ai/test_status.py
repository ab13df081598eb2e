"""Status rules, issue detection and degradation; an error is never hidden."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from noctis_lab.ai import (
    StatusThresholds,
    cusum_drift,
    model_status,
    record_analysis,
    register_model,
    resolve_model,
    worst_status,
)
from noctis_lab.ai._status import status_from_level


def _log_run(
    tracking: str,
    name: str,
    metrics: dict[str, tuple[float, float, float]],
    *,
    baseline: bool = False,
) -> str:
    from noctis_lab.ai._config import EXPERIMENT_PREFIX, mlflow_client
    from noctis_lab.ai._registry import ensure_experiment

    client = mlflow_client(tracking)
    exp = ensure_experiment(EXPERIMENT_PREFIX + name, tracking)
    run = client.create_run(
        exp, tags={"noctis.kind": "evaluation", "noctis.baseline": "true" if baseline else "false"}
    )
    for key, (v, lo, hi) in metrics.items():
        client.log_metric(run.info.run_id, key, v)
        client.log_metric(run.info.run_id, f"{key}_ci_low", lo)
        client.log_metric(run.info.run_id, f"{key}_ci_high", hi)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def _cls_metrics(auroc: float, acc: float = 0.9) -> dict[str, tuple[float, float, float]]:
    return {
        "auroc": (auroc, auroc - 0.02, auroc + 0.02),
        "accuracy": (acc, acc - 0.03, acc + 0.03),
        "balanced_accuracy": (acc, acc - 0.03, acc + 0.03),
    }


def test_worst_status_and_levels() -> None:
    assert worst_status("excellent", "error", "good") == "error"
    assert worst_status("good", None, "warning") == "warning"
    assert worst_status() == "excellent"
    with pytest.raises(ValueError, match="unknown status"):
        worst_status("great")  # type: ignore[arg-type]
    th = StatusThresholds()
    levels = [
        status_from_level(v, th.success_excellent, th.success_good, th.success_warning)
        for v in (0.95, 0.9, 0.75, 0.69, float("nan"))
    ]
    assert levels == ["excellent", "good", "warning", "error", "error"]


def test_thresholds_are_frozen_and_validated() -> None:
    th = StatusThresholds(success_good=0.9)
    with pytest.raises(ValidationError):
        th.success_good = 0.5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="excellent >= good >= warning"):
        StatusThresholds(metric_good=0.95)
    with pytest.raises(ValidationError):
        StatusThresholds(unknown=1)  # type: ignore[call-arg]


def test_cusum_fires_on_planted_drift_and_stays_quiet_on_noise() -> None:
    rng = np.random.default_rng(0)
    sigma = 0.01
    alarms = 0
    for _ in range(300):
        vals = list(0.9 + rng.normal(0, sigma, 12))
        alarms += cusum_drift("auroc", vals, baseline=0.9, sigma=sigma).alarm
    assert alarms / 300 < 0.05
    drift = np.r_[0.9 + rng.normal(0, sigma, 4), 0.9 - 0.03 + rng.normal(0, sigma, 6)]
    res = cusum_drift("auroc", list(drift), baseline=0.9, sigma=sigma)
    assert res.alarm and res.alarm_index is not None and res.alarm_index >= 4
    assert "fallen" in res.explanation()
    # lower-is-better metrics drift upwards
    up = cusum_drift(
        "hd95_mm", [2.0, 2.5, 3.0, 3.5], baseline=2.0, sigma=0.1, higher_is_better=False
    )
    assert up.alarm and "risen" in up.explanation()
    improving = cusum_drift("auroc", [0.95, 0.97, 0.99], baseline=0.9, sigma=sigma)
    assert not improving.alarm


def test_status_never_hides_an_error(tracking: str, db: str, model_files: dict[str, Path]) -> None:
    name = "status-hidden-error"
    register_model(model_files["classification"], name, tracking_uri=tracking)
    _log_run(tracking, name, _cls_metrics(0.97, 0.95), baseline=True)
    for i in range(20):
        record_analysis(
            name,
            "1",
            status="success",
            processing_time_s=0.1,
            confidence=0.9,
            study_uid=f"s{i}",
            db_url=db,
        )
    good = model_status(name, tracking_uri=tracking, db_url=db)
    assert good.status == "excellent", good.to_json()
    assert good.sources == {
        "file": "excellent",
        "metrics": "excellent",
        "analyses": "excellent",
        "history": "excellent",
    }
    assert good.headline is not None and good.headline["ci_low"] == pytest.approx(0.95)
    # the file disappears: the seed system let the 100% success rate overwrite this
    path = resolve_model(name, tracking_uri=tracking).path
    backup = path.with_suffix(".bak")
    shutil.move(path, backup)
    try:
        bad = model_status(name, tracking_uri=tracking, db_url=db)
    finally:
        shutil.move(backup, path)
    assert bad.status == "error"
    assert bad.sources["file"] == "error" and bad.sources["analyses"] == "excellent"
    assert any(i.code == "missing_file" for i in bad.issues)
    # a tampered file is an error too
    data = path.read_bytes()
    path.write_bytes(data[:-10] + b"0123456789")
    try:
        tampered = model_status(name, tracking_uri=tracking, db_url=db)
    finally:
        path.write_bytes(data)
    assert tampered.status == "error"
    assert any(i.code == "hash_mismatch" for i in tampered.issues)


def test_success_rate_speed_and_accuracy_issues(
    tracking: str, db: str, model_files: dict[str, Path]
) -> None:
    name = "status-analyses"
    register_model(model_files["classification"], name, tracking_uri=tracking)
    _log_run(tracking, name, _cls_metrics(0.93, acc=0.75), baseline=True)
    for i in range(10):
        record_analysis(
            name, "1", status="success" if i < 8 else "failed", processing_time_s=9.0, db_url=db
        )
    st = model_status(name, tracking_uri=tracking, db_url=db)
    codes = {i.code: i for i in st.issues}
    assert st.sources["analyses"] == "warning"  # 80%: below 85, above 70
    assert "8 of 10" in codes["low_success_rate"].message
    assert "slow_processing" in codes and "9.0 s" in codes["slow_processing"].message
    assert "low_accuracy" in codes  # accuracy 0.75 < 0.8 (the seed's rule)
    assert st.status == "warning"
    record_analysis(name, "1", status="failed", processing_time_s=0.1, db_url=db)
    record_analysis(name, "1", status="failed", processing_time_s=0.1, db_url=db)
    worse = model_status(name, tracking_uri=tracking, db_url=db)
    assert worse.sources["analyses"] == "error" and worse.status == "error"  # 8/12 < 70%
    relaxed = model_status(
        name,
        tracking_uri=tracking,
        db_url=db,
        thresholds=StatusThresholds(success_warning=0.6, success_good=0.6, slow_processing_s=60),
    )
    assert relaxed.sources["analyses"] == "good"
    assert "slow_processing" not in {i.code for i in relaxed.issues}


def test_degradation_from_run_history(tracking: str, db: str, model_files: dict[str, Path]) -> None:
    drifting, steady = "status-drifting", "status-steady"
    for name in (drifting, steady):
        register_model(model_files["classification"], name, tracking_uri=tracking)
        _log_run(tracking, name, _cls_metrics(0.95), baseline=True)
    for v in (0.95, 0.94, 0.91, 0.89, 0.87):
        _log_run(tracking, drifting, _cls_metrics(v))
    rng = np.random.default_rng(1)
    for v in 0.95 + rng.normal(0, 0.005, 5):
        _log_run(tracking, steady, _cls_metrics(float(v)))
    st = model_status(drifting, tracking_uri=tracking, db_url=db)
    deg = [i for i in st.issues if i.code == "degradation"]
    assert deg and "auroc has fallen from its baseline 0.950" in deg[0].message
    assert st.sources["history"] == "warning"
    quiet = model_status(steady, tracking_uri=tracking, db_url=db)
    assert not [i for i in quiet.issues if i.code == "degradation"]
    assert quiet.sources["history"] == "excellent"
    assert len(next(d for d in quiet.drift if d.metric == "auroc").values) == 5


def test_never_evaluated_is_a_warning(tracking: str, db: str, model_files: dict[str, Path]) -> None:
    register_model(model_files["segmentation"], "status-new", tracking_uri=tracking)
    st = model_status("status-new", tracking_uri=tracking, db_url=db)
    assert st.status == "warning"
    assert [i.code for i in st.issues] == ["not_evaluated"]
