"""Registry (real MLflow SQLite store), manifests and evaluation runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from noctis_lab import ManifestError, ModelCheckError
from noctis_lab.ai import (
    check_model,
    evaluate,
    list_models,
    load_test_set,
    metric_history,
    model_status,
    register_model,
    resolve_model,
)


def test_empty_store_gives_helpful_empty_results(tmp_path: Path, db: str) -> None:
    from noctis_lab.ai import all_model_statuses, analysis_summary, feedback_summary

    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    assert list_models(tracking_uri=uri) == ()
    st = model_status("ghost", tracking_uri=uri, db_url=db)
    assert st.status == "error"
    assert st.issues[0].code == "not_registered"
    assert "ghost" in st.issues[0].message
    hist = metric_history("ghost", tracking_uri=uri)
    assert len(hist) == 0 and "value" in hist.columns
    assert analysis_summary("ghost", db_url=db).n == 0
    fb = feedback_summary("ghost", db_url=db)
    assert fb.n == 0 and math.isnan(fb.agreement_rate)
    assert len(all_model_statuses(tracking_uri=uri, db_url=db)) == 0
    assert json.loads(st.to_json())["status"] == "error"


def test_register_aliases_tags_and_resolve(tracking: str, model_files: dict[str, Path]) -> None:
    v1 = register_model(model_files["classification"], "reg-cls", tracking_uri=tracking)
    assert v1.version == "1" and v1.aliases == ("champion",)
    assert v1.spec.sha256 is not None and len(v1.spec.sha256) == 64
    v2 = register_model(
        model_files["state_dict"], "reg-cls", alias="candidate", tracking_uri=tracking
    )
    assert v2.version == "2" and v2.spec.format == "state_dict"
    assert resolve_model("reg-cls", tracking_uri=tracking).version == "1"  # champion
    assert resolve_model("reg-cls@candidate", tracking_uri=tracking).version == "2"
    assert resolve_model("models:/reg-cls/2", tracking_uri=tracking).version == "2"
    info = {m.name: m for m in list_models(tracking_uri=tracking)}["reg-cls"]
    assert info.task == "classification" and info.aliases == {"champion": "1", "candidate": "2"}
    from noctis_lab.ai._config import mlflow_client

    mv = mlflow_client(tracking).get_model_version("reg-cls", "1")
    assert mv.tags["noctis.task"] == "classification"
    assert mv.tags["noctis.sha256"] == v1.spec.sha256
    assert json.loads(mv.tags["noctis.input_shape"]) == [1, 1, 64, 64]
    assert mv.current_stage in (None, "None")  # no deprecated stages
    with pytest.raises(ModelCheckError, match=r"no alias|has no"):
        resolve_model("reg-cls@nope", tracking_uri=tracking)
    with pytest.raises(ModelCheckError, match="no registered model named 'nope'"):
        resolve_model("nope", tracking_uri=tracking)
    assert check_model("reg-cls@candidate", tracking_uri=tracking).status == "excellent"


def test_register_refuses_a_bad_file(tmp_path: Path, tracking: str) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    from noctis_lab.ai import ModelSpec

    with pytest.raises(ModelCheckError, match="refused for registration"):
        register_model(bad, "bad", ModelSpec(task="classification"), tracking_uri=tracking)


def test_manifest_errors_name_the_row(tmp_path: Path, test_sets: dict[str, Path]) -> None:
    ts = load_test_set(test_sets["classification"])
    assert ts.task == "classification" and len(ts) == 40
    assert ts.sha256 == load_test_set(test_sets["classification"]).sha256
    folder = test_sets["classification"].parent
    rows = (folder / "manifest.csv").read_text().splitlines()
    bad = folder / "bad_missing.csv"
    bad.write_text("\n".join([rows[0], rows[1], rows[2].replace("case0001.npy", "gone.npy")]))
    with pytest.raises(ManifestError, match=r"row 2 \(case case0001\).*gone.npy not found"):
        load_test_set(bad)
    bad.write_text("\n".join([rows[0], rows[1].replace(",0,", ",7,").replace(",1,", ",7,")]))
    with pytest.raises(ManifestError, match=r"row 1 .*unknown class 7"):
        load_test_set(bad)
    det = json.loads(test_sets["detection"].read_text())
    det["cases"][3]["centres"] = "[[1, 2, 3]]"
    bad_json = test_sets["detection"].parent / "bad.json"
    bad_json.write_text(json.dumps(det))
    with pytest.raises(ManifestError, match=r"row 4 \(case case0003\): centres must be"):
        load_test_set(bad_json)
    seg_dir = test_sets["segmentation"].parent
    np.save(seg_dir / "masks" / "small.npy", np.zeros((8, 8)))
    seg_rows = (seg_dir / "manifest.csv").read_text().splitlines()
    (seg_dir / "bad.csv").write_text(
        "\n".join([seg_rows[0], seg_rows[1].replace("masks/case0000.npy", "masks/small.npy")])
    )
    with pytest.raises(ManifestError, match="mask shape"):
        load_test_set(seg_dir / "bad.csv")
    with pytest.raises(ManifestError, match="does not exist"):
        load_test_set(tmp_path / "none.csv")


def test_manifest_reads_dicom(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    src = Path(str(get_testdata_file("CT_small.dcm")))
    (tmp_path / "m.csv").write_text(f"case_id,image,label\nct,{src},1\n")
    ts = load_test_set(tmp_path / "m.csv")
    assert ts.cases[0].image.shape == (128, 128)
    assert ts.cases[0].spacing == pytest.approx((0.661468, 0.661468))
    # read by dicom.load_series: the header gives the subgroup attributes
    assert ts.cases[0].attributes == {
        "scanner": "GE MEDICAL SYSTEMS RHAPSODE",
        "site": "JFK IMAGING CENTER",
        "kvp": "120",
    }


@pytest.mark.parametrize("task", ["classification", "detection", "segmentation"])
def test_evaluate_logs_an_mlflow_run(
    task: str, tracking: str, model_files: dict[str, Path], test_sets: dict[str, Path]
) -> None:
    from noctis_lab.ai._config import mlflow_client

    name = f"eval-{task}"
    register_model(model_files[task], name, tracking_uri=tracking)
    res = evaluate(name, test_sets[task], tracking_uri=tracking, n_boot=200, seed=1)
    assert res.run_id is not None
    client = mlflow_client(tracking)
    run = client.get_run(res.run_id)
    head = res.metrics.headline
    assert run.data.params["model_version"] == "1"
    assert run.data.params["test_set_sha256"] == load_test_set(test_sets[task]).sha256
    assert run.data.params["n_boot"] == "200"
    assert run.data.tags["noctis.kind"] == "evaluation"
    if math.isfinite(res.metrics.values[head].ci_low):
        assert f"{head}_ci_low" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(res.run_id, "evaluation")}
    expected = {
        "classification": "roc.png",
        "detection": "froc.png",
        "segmentation": "dice_distribution.png",
    }[task]
    assert f"evaluation/{expected}" in arts and "evaluation/per_case.csv" in arts
    if task == "classification":
        assert "evaluation/confusion_matrix.png" in arts
        assert {"accuracy", "precision", "recall", "f1", "auc", "mcc", "brier"} <= set(
            run.data.metrics
        )
        assert res.metrics["auroc"].value > 0.5  # briefly trained, still better than chance
    if task == "detection":
        assert "within 4 mm" in run.data.params["matching"]
    if task == "segmentation":
        assert "MONAI" in run.data.params["distance_implementation"]
    df = res.to_dataframe()
    assert len(df) == res.test_set["n_cases"] and df.columns[0] == "case_id"
    hist = metric_history(name, tracking_uri=tracking)
    assert set(hist["run_id"]) == {res.run_id}


def test_evaluate_refuses_wrong_task_and_bad_model(
    tracking: str, test_sets: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ModelCheckError, match="is a classification model"):
        from noctis_lab.ai import TestSet  # noqa: F401

        evaluate(
            "eval-classification",
            load_test_set(test_sets["detection"]),
            tracking_uri=tracking,
            log_to_mlflow=False,
        )
    evil = tmp_path / "x.pt"
    evil.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ModelCheckError, match="failed its checks"):
        evaluate(evil, test_sets["classification"], log_to_mlflow=False)
