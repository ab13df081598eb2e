"""AI model verification and reporting: registry, file checks, evaluation, status, feedback.

Models are registered in MLflow as pyfunc models (aliases ``@champion`` / ``@candidate``
and ``noctis.*`` tags) with their spec and SHA-256; no model file runs code in our process
(safetensors / weights-only state dicts into trusted architectures, ONNX in onnxruntime,
TorchScript and ``torch.export`` only in a bubblewrap sandbox). Evaluations compute
Metrics-Reloaded-style metrics with MONAI and scikit-learn, bootstrap 95% CIs over cases,
and are logged as MLflow runs with the model and the test set as inputs. Status is per
model version and test set: file checks, the latest evaluation, recent analyses and a
degradation test that includes the baseline's uncertainty; an error is never hidden.

>>> from noctis_lab.ai import evaluate, load_test_set, model_status
>>> cases = load_test_set("data/demo/ai/testsets/classification-01/manifest.json")  # doctest: +SKIP
>>> result = evaluate("artifact-classifier", cases)  # doctest: +SKIP
>>> model_status("artifact-classifier").status  # doctest: +SKIP

Lower-level parts (the metric functions, drift statistics, the model's architecture
factories, the store) live in the private modules and are not part of this API.
Heavy libraries (torch, mlflow, monai, sklearn, matplotlib) load lazily, on first use.
"""

from __future__ import annotations

from noctis_lab.ai._analysis import (
    Analyzer,
    analyses_frame,
    analysis_summary,
    feedback_summary,
    record_analysis,
    record_feedback,
)
from noctis_lab.ai._checks import check_model_file
from noctis_lab.ai._demo import build_demo
from noctis_lab.ai._evaluate import evaluate
from noctis_lab.ai._manifest import TestSet, load_test_set
from noctis_lab.ai._overview import all_model_statuses
from noctis_lab.ai._registry import (
    check_model,
    list_models,
    register_model,
    resolve_model,
    save_model,
)
from noctis_lab.ai._report import render_report, report_history, review_report, submit_report
from noctis_lab.ai._spec import ModelSpec
from noctis_lab.ai._status import ModelStatus, StatusThresholds, metric_history, model_status

#: The public API, by step. Models: :class:`ModelSpec`, :func:`save_model`,
#: :func:`register_model`, :func:`resolve_model`, :func:`list_models`, file checks
#: (:func:`check_model_file`, :func:`check_model`). Evaluation: :class:`TestSet`,
#: :func:`load_test_set`, :func:`evaluate`. Status: :func:`model_status` (a
#: :class:`ModelStatus` under :class:`StatusThresholds`), :func:`all_model_statuses`,
#: :func:`metric_history`. Use in the clinic: :class:`Analyzer`, :func:`record_analysis`,
#: :func:`record_feedback`, :func:`analyses_frame`, :func:`analysis_summary`,
#: :func:`feedback_summary`. Reports: :func:`render_report`, :func:`submit_report`,
#: :func:`review_report`, :func:`report_history`. The demo: :func:`build_demo`.
__all__ = [
    "Analyzer",
    "ModelSpec",
    "ModelStatus",
    "StatusThresholds",
    "TestSet",
    "all_model_statuses",
    "analyses_frame",
    "analysis_summary",
    "build_demo",
    "check_model",
    "check_model_file",
    "evaluate",
    "feedback_summary",
    "list_models",
    "load_test_set",
    "metric_history",
    "model_status",
    "record_analysis",
    "record_feedback",
    "register_model",
    "render_report",
    "report_history",
    "resolve_model",
    "review_report",
    "save_model",
    "submit_report",
]
