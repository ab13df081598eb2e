"""The AI demo: three real models trained, registered, evaluated; one truly degrades."""

from __future__ import annotations

from pathlib import Path

import pytest

from noctis_lab.ai import (
    analysis_summary,
    build_demo,
    feedback_summary,
    list_models,
    metric_history,
    model_status,
)


@pytest.mark.slow
def test_build_demo(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    db = f"sqlite:///{tmp_path / 'noctis.db'}"
    res = build_demo(tmp_path / "demo", tracking_uri=uri, db_url=db, progress=False, n_boot=300)
    assert {m.name for m in list_models(tracking_uri=uri)} == set(res.models)
    cls = model_status("artifact-classifier", tracking_uri=uri, db_url=db)
    seg = model_status("insert-segmenter", tracking_uri=uri, db_url=db)
    det = model_status("insert-detector", tracking_uri=uri, db_url=db)
    # the classifier's later test sets are noisier: its AUROC truly falls and CUSUM sees it
    hist = metric_history("artifact-classifier", tracking_uri=uri)
    auroc = hist[hist["metric"] == "auroc"]["value"].tolist()
    assert len(auroc) == 6 and auroc[-1] < auroc[0] - 0.05
    assert any(i.code == "degradation" for i in cls.issues), cls.to_json()
    assert cls.status in ("warning", "error")
    # the others stay steady and are good
    for st in (seg, det):
        assert not any(i.code == "degradation" for i in st.issues), st.to_json()
        assert st.headline is not None and st.headline["value"] > 0.8, st.to_json()
    # analyses: broken studies were recorded as failures
    assert analysis_summary("insert-detector", db_url=db).n_success == 22
    assert feedback_summary("artifact-classifier", db_url=db).n > 0
