"""The models people bring: their own architecture as safetensors (re-imported in another
process through MLflow pyfunc), multi-class logits, class-order mismatches, NaN outputs,
wrong shapes, static-batch ``torch.export`` files; referees vs scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from noctis_lab import ModelCheckError
from noctis_lab.ai import ModelSpec, evaluate, load_test_set, register_model, save_model
from noctis_lab.ai._evaluate import check_outputs
from noctis_lab.ai._metrics import (
    classification_metrics,
    expected_calibration_error,
    multiclass_metrics,
    operating_points,
)

CLASSES = ("low", "mid", "high")

ARCH = textwrap.dedent(
    """
    import torch
    import torch.nn as nn


    def build():
        # logits for three classes from the image mean: low / mid / high
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 3))
    """
)


@pytest.fixture()
def user_arch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A user's own architecture in an importable module (not one of ours)."""
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    mod = f"user_arch_{os.getpid()}"
    (pkg / f"{mod}.py").write_text(ARCH)
    monkeypatch.syspath_prepend(str(pkg))
    return f"{mod}:build", pkg


def _three_class_set(folder: Path, n: int = 90, seed: int = 4, classes=CLASSES) -> Path:
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        label = i % 3
        img = rng.normal(label - 1.0, 0.8, (64, 64)).astype(np.float32)
        np.save(folder / "img" / f"c{i:03d}.npy", img)
        rows.append({"case_id": f"c{i:03d}", "image": f"img/c{i:03d}.npy", "label": label})
    meta = {"task": "classification", "classes": list(classes), "name": "three-class"}
    (folder / "manifest.json").write_text(json.dumps({"meta": meta, "cases": rows}))
    return folder / "manifest.json"


def _user_model(arch: str, out: Path, classes=CLASSES) -> Path:
    import torch

    from noctis_lab.ai._nets import build_network

    net = build_network(arch)
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[-40.0], [0.0], [40.0]]))
        net[2].bias.copy_(torch.tensor([0.0, 15.0, 0.0]))
    save_model(
        net,
        out,
        ModelSpec(
            task="classification",
            format="safetensors",
            factory=arch,
            output_shape=(1, 3),
            output_range=None,
            activation="softmax",
            classes=classes,
        ),
    )
    return out


def test_own_architecture_multiclass_logits_and_pyfunc_in_another_process(
    tmp_path: Path, user_arch: tuple[str, Path], tracking: str
) -> None:
    arch, pkg = user_arch
    model = _user_model(arch, tmp_path / "mine.safetensors")
    mv = register_model(model, "user-3class", tracking_uri=tracking)
    # the logits spec survives registration (output_range None, activation softmax)
    assert mv.spec.output_range is None and mv.spec.activation == "softmax"
    assert mv.spec.factory == arch and mv.spec.classes == CLASSES
    manifest = _three_class_set(tmp_path / "ts")
    res = evaluate("user-3class", manifest, n_boot=200, tracking_uri=tracking)
    m = res.metrics
    assert m["auroc"].value > 0.9 and m["auroc_micro"].value > 0.9
    assert {f"auroc_{c}" for c in CLASSES} <= set(m.values)
    assert m.confusion is not None and m.confusion.shape == (3, 3)
    assert m.confusion.sum() == 90
    # the run carries the model and the test set as MLflow inputs, linked to the version
    from noctis_lab.ai._config import mlflow_client

    run = mlflow_client(tracking).get_run(str(res.run_id))
    assert run.data.tags["noctis.model_version"] == mv.version
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["three-class"]
    assert run.inputs.dataset_inputs[0].dataset.digest
    assert [x.model_id for x in run.inputs.model_inputs] == [run.data.tags["noctis.model_id"]]
    # another process re-imports the architecture by name and predicts through MLflow
    code = (
        "import mlflow, numpy as np, json\n"
        "m = mlflow.pyfunc.load_model('models:/user-3class@champion')\n"
        "x = np.stack([np.full((64, 64), v, np.float32) for v in (-1.0, 0.0, 1.0)])\n"
        "print(json.dumps(m.predict(x).argmax(axis=1).tolist()))\n"
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "PYTHONPATH": str(pkg),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [0, 1, 2]


def test_class_order_mismatch_is_an_error(tmp_path: Path, user_arch: tuple[str, Path]) -> None:
    arch, _ = user_arch
    model = _user_model(arch, tmp_path / "rev.safetensors", classes=CLASSES[::-1])
    manifest = _three_class_set(tmp_path / "ts")
    with pytest.raises(ModelCheckError, match="in another order"):
        evaluate(model, manifest, n_boot=0, log_to_mlflow=False)


def test_nan_outputs_and_wrong_shapes_name_the_case(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    from noctis_lab.ai._demo_data import write_test_set

    manifest = write_test_set(tmp_path / "ts", "classification", 12, seed=2)
    ts = load_test_set(manifest)
    img = ts.cases[5].image
    img[3, 3] = np.nan  # one broken study: the network propagates the NaN
    with pytest.raises(ModelCheckError, match=r"case case0005: model output holds NaN"):
        evaluate(model_files["classification"], ts, n_boot=0, log_to_mlflow=False)
    spec = ModelSpec(task="classification", output_shape=(1, 1))
    with pytest.raises(ModelCheckError, match=r"case a: output shape \(2,\)"):
        check_outputs(np.zeros((2, 2)), spec, ["a", "b"])
    with pytest.raises(ModelCheckError, match=r"case b: output values .* outside"):
        check_outputs(np.array([[0.5], [3.0]]), spec, ["a", "b"])


def test_static_batch_export_runs_one_case_at_a_time(tmp_path: Path) -> None:
    """The default torch.export (no dynamic batch): checked and evaluated, in the sandbox."""
    import torch

    from noctis_lab.ai import check_model_file
    from noctis_lab.ai._demo_data import write_test_set
    from noctis_lab.ai._nets import build_network
    from noctis_lab.ai._spec import sha256_file, spec_sidecar

    net = build_network("noctis.tiny_classifier").eval()
    program = torch.export.export(net, (torch.zeros(1, 1, 64, 64),))  # batch fixed at 1
    path = tmp_path / "static.pt2"
    torch.export.save(program, str(path))
    spec = ModelSpec(task="classification", format="export", sha256=sha256_file(path))
    spec_sidecar(path).write_text(spec.model_dump_json())
    assert check_model_file(path).ok
    ts = load_test_set(write_test_set(tmp_path / "ts", "classification", 6, seed=1))
    res = evaluate(path, ts, n_boot=0, log_to_mlflow=False)
    assert res.params["batching"].startswith("one case at a time")
    assert res.params["model_runs_in"] == "sandbox"
    with torch.inference_mode():
        want = torch.cat([net(torch.from_numpy(c.image)[None, None]) for c in ts.cases])
    got = res.to_dataframe()["probability"].to_numpy()
    np.testing.assert_allclose(got, want.numpy().ravel(), atol=1e-6)


# ------------------------------------------------------------------ referees (sklearn)
def test_multiclass_matches_sklearn() -> None:
    from sklearn import metrics as skm
    from sklearn.preprocessing import label_binarize

    rng = np.random.default_rng(11)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(0, 1, (300, 4)) + 1.2 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = multiclass_metrics(y, p, classes=("a", "b", "c", "d"), n_boot=200, seed=0)
    assert m["auroc"].value == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12
    )
    onehot = label_binarize(y, classes=[0, 1, 2, 3])
    assert m["auroc_micro"].value == pytest.approx(
        skm.roc_auc_score(onehot, p, average="micro"), abs=1e-12
    )
    for c, name in enumerate("abcd"):
        assert m[f"auroc_{name}"].value == pytest.approx(
            skm.roc_auc_score(y == c, p[:, c]), abs=1e-12
        )
    pred = p.argmax(1)
    assert m["balanced_accuracy"].value == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1_macro"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    np.testing.assert_array_equal(m.confusion, skm.confusion_matrix(y, pred))
    for k in ("auroc", "auroc_micro", "accuracy", "balanced_accuracy", "f1_macro"):
        assert m[k].ci_low <= m[k].value <= m[k].ci_high


def test_ece_matches_sklearn_calibration_curve() -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(5)
    p = rng.random(500)
    y = (rng.random(500) < p**1.5).astype(int)  # miscalibrated on purpose
    ece = float(expected_calibration_error(y, p, np.ones((1, 500)))[0])
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
    want = float(np.sum(counts[counts > 0] / 500 * np.abs(prob_true - prob_pred)))
    assert ece == pytest.approx(want, abs=1e-12) and ece > 0.05
    m = classification_metrics(y, p, n_boot=200)
    assert m["ece"].value == pytest.approx(want, abs=1e-12)
    assert m["ece"].ci_low <= m["ece"].value <= m["ece"].ci_high
    assert np.nansum(m.curves["reliability_count"]) == 500


def test_operating_points_match_a_brute_force_search() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.35 * y + rng.random(200) * 0.65, 0, 1)
    op = operating_points(y, p, 0.9)
    best, best_t = -1.0, None
    for t in np.unique(p):
        sens = np.mean(p[y == 1] >= t)
        spec = np.mean(p[y == 0] < t)
        if sens + spec - 1 > best:
            best, best_t = sens + spec - 1, t
    assert op["youden_threshold"] == pytest.approx(best_t)
    assert op["youden_sensitivity"] + op["youden_specificity"] - 1 == pytest.approx(best)
    ok = [t for t in np.unique(p) if np.mean(p[y == 1] >= t) >= 0.9]
    t90 = max(ok)
    assert op["threshold_at_sens_0.9"] == pytest.approx(t90)
    assert op["specificity_at_sens_0.9"] == pytest.approx(np.mean(p[y == 0] < t90))


def test_detection_one_to_one_and_per_case_spacing() -> None:
    from monai.metrics import compute_fp_tp_probs_nd

    from noctis_lab.ai._metrics import detection_metrics, match_one_to_one

    # two targets 3 px apart, one detection on each: both are found (a region-based match
    # gives the overlap to the first target and misses the second)
    targets = np.array([[20.0, 20.0], [20.0, 23.0]])
    dets = np.array([[20.0, 21.0], [20.0, 23.0]])
    fp, tp = match_one_to_one(dets, np.array([0.9, 0.8]), targets, np.ones(2), 4.0)
    assert tp.tolist() == [0.9, 0.8] and fp.size == 0
    # a second hit on one target is a duplicate, not a false positive; far ones are
    fp, tp = match_one_to_one(
        np.array([[20.0, 20.0], [21.0, 20.0], [50.0, 50.0]]),
        np.array([0.9, 0.7, 0.6]),
        targets[:1],
        np.ones(2),
        4.0,
    )
    assert tp.tolist() == [0.9] and fp.tolist() == [0.6]
    # referee: well-separated targets, random detections: equal to MONAI's region matching
    rng = np.random.default_rng(3)
    for _ in range(20):
        gt = rng.uniform(5, 59, (3, 2))
        gt[:, 0] = [8.0, 30.0, 52.0]
        pts = np.clip(
            np.rint(np.r_[gt + rng.normal(0, 2, gt.shape), rng.uniform(0, 63, (4, 2))]), 0, 63
        )
        sc = rng.random(len(pts))
        yy, xx = np.mgrid[0:64, 0:64]
        lab = np.zeros((64, 64), int)
        for i, c in enumerate(gt, start=1):
            lab[((yy - c[0]) ** 2 + (xx - c[1]) ** 2) <= 16.0] = i
        fp_m, tp_m, _ = compute_fp_tp_probs_nd(sc, pts.astype(int), lab)
        fp, tp = match_one_to_one(pts, sc, gt, np.ones(2), 4.0)
        # MONAI returns float32 scores
        np.testing.assert_allclose(np.sort(np.asarray(fp_m)), np.sort(fp), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(tp_m), tp, rtol=1e-6)
    # per-case spacing: the same 6 px offset is a hit at 0.5 mm/px, a miss at 1 mm/px
    g = [np.array([[30.0, 30.0]])] * 2
    p = [np.array([[30.0, 36.0]])] * 2
    s = [np.array([0.9])] * 2
    m = detection_metrics(p, s, g, image_shape=(64, 64), spacing=[(0.5, 0.5), (1.0, 1.0)], n_boot=0)
    assert m.per_case["targets_hit"].tolist() == [1.0, 0.0]


def test_subgroup_metrics_by_scanner_match_sklearn(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    import csv

    from sklearn.metrics import roc_auc_score

    from noctis_lab.ai._demo_data import write_test_set

    manifest = write_test_set(tmp_path / "ts", "classification", 40, seed=9)
    rows = list(csv.DictReader(manifest.read_text().splitlines()))
    for i, row in enumerate(rows):
        row["scanner"] = "A" if i % 2 else "B"
        row["kvp"] = "120" if i < 4 else "100"  # the 120 group is too small to report
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = evaluate(model_files["classification"], manifest, n_boot=100, log_to_mlflow=False)
    got = {(r["attribute"], r["group"]): r for r in res.subgroups}
    assert set(got) == {("scanner", "A"), ("scanner", "B"), ("kvp", "100")}
    df = res.to_dataframe()
    for group, parity in (("A", 1), ("B", 0)):
        sub = df[df.index % 2 == parity]
        want = roc_auc_score(sub["label"], sub["probability"])
        r = got[("scanner", group)]
        assert r["n"] == 20 and r["value"] == pytest.approx(want, abs=1e-12)
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
