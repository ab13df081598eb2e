"""AI model verification and reporting: registry, file checks, evaluation, status, feedback.

Models are registered in MLflow as pyfunc models (aliases ``@champion`` / ``@candidate``
and ``noctis.*`` tags) with their spec and SHA-256; no model file runs code in our process
(safetensors / weights-only state dicts into trusted architectures, ONNX in onnxruntime,
TorchScript and ``torch.export`` only in a bubblewrap sandbox). Evaluations compute
Metrics-Reloaded-style metrics with MONAI and scikit-learn, bootstrap 95% CIs over cases,
and are logged as MLflow runs with the model and the test set as inputs. Status is per
model version and test set: file checks, the latest evaluation, recent analyses and a
degradation test that includes the baseline's uncertainty; an error is never hidden.

Heavy libraries (torch, mlflow, monai, sklearn, matplotlib) load lazily, on first use.
"""

from __future__ import annotations

from typing import Any

from noctis_lab.ai._analysis import (
    AnalysisRecord,
    AnalysisSummary,
    Analyzer,
    FeedbackSummary,
    analyses_frame,
    analysis_summary,
    describe_output,
    feedback_summary,
    record_analysis,
    record_feedback,
)
from noctis_lab.ai._checks import CheckItem, CheckReport, check_model_file, load_model
from noctis_lab.ai._config import db_url, noctis_home, tracking_uri
from noctis_lab.ai._demo import DemoResult, build_demo
from noctis_lab.ai._evaluate import EvaluationResult, evaluate, predict
from noctis_lab.ai._manifest import Case, TestSet, load_test_set
from noctis_lab.ai._metrics import (
    MetricValue,
    TaskMetrics,
    box_detection_metrics,
    classification_metrics,
    detection_metrics,
    multilabel_segmentation_metrics,
    segmentation_metrics,
)
from noctis_lab.ai._nets import FACTORIES
from noctis_lab.ai._registry import (
    ModelInfo,
    RegisteredModelVersion,
    check_model,
    list_models,
    register_model,
    resolve_model,
    save_model,
)
from noctis_lab.ai._report import (
    ReportText,
    ReportVersion,
    render_report,
    report_history,
    review_report,
    submit_report,
)
from noctis_lab.ai._spec import ModelSpec, sha256_file
from noctis_lab.ai._status import (
    DriftResult,
    ModelStatus,
    StatusThresholds,
    compare_runs,
    cusum_drift,
    metric_history,
    model_status,
)
from noctis_lab.ai._types import Issue, worst_status

__all__ = [
    "FACTORIES",
    "AnalysisRecord",
    "AnalysisSummary",
    "Analyzer",
    "Case",
    "CheckItem",
    "CheckReport",
    "DemoResult",
    "DriftResult",
    "EvaluationResult",
    "FeedbackSummary",
    "Issue",
    "MetricValue",
    "ModelInfo",
    "ModelSpec",
    "ModelStatus",
    "RegisteredModelVersion",
    "ReportText",
    "ReportVersion",
    "StatusThresholds",
    "TaskMetrics",
    "TestSet",
    "all_model_statuses",
    "analyses_frame",
    "analysis_summary",
    "box_detection_metrics",
    "build_demo",
    "check_model",
    "check_model_file",
    "classification_metrics",
    "compare_runs",
    "cusum_drift",
    "db_url",
    "describe_output",
    "detection_metrics",
    "evaluate",
    "feedback_summary",
    "list_models",
    "load_model",
    "load_test_set",
    "metric_history",
    "model_status",
    "multilabel_segmentation_metrics",
    "noctis_home",
    "predict",
    "record_analysis",
    "record_feedback",
    "register_model",
    "render_report",
    "report_history",
    "resolve_model",
    "review_report",
    "save_model",
    "segmentation_metrics",
    "sha256_file",
    "submit_report",
    "tracking_uri",
    "worst_status",
]


def all_model_statuses(
    *,
    thresholds: StatusThresholds | None = None,
    tracking_uri: str | None = None,
    db_url: str | None = None,
) -> Any:
    """One row per registered model (name, version, task, status, headline, issues) as a
    pandas DataFrame; empty, with these columns, for an empty store."""
    import pandas as pd

    rows = []
    for info in list_models(tracking_uri=tracking_uri):
        st = model_status(
            info.name, thresholds=thresholds, tracking_uri=tracking_uri, db_url=db_url
        )
        head = st.headline or {}
        rows.append(
            {
                "name": st.name,
                "version": st.version,
                "task": st.task,
                "status": st.status,
                "headline": head.get("name"),
                "value": head.get("value"),
                "ci_low": head.get("ci_low"),
                "ci_high": head.get("ci_high"),
                "n_issues": len(st.issues),
                "issues": "; ".join(i.message for i in st.issues),
            }
        )
    cols = [
        "name",
        "version",
        "task",
        "status",
        "headline",
        "value",
        "ci_low",
        "ci_high",
        "n_issues",
        "issues",
    ]
    return pd.DataFrame(rows, columns=cols)
