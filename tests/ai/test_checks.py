"""Model file checks: good files pass; missing, corrupt, truncated, tampered and hostile
files give ``error`` without running anything."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from noctis_lab import ModelCheckError
from noctis_lab.ai import ModelSpec, check_model, check_model_file, save_model
from noctis_lab.ai._checks import load_model


class _Evil:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _states(report: object) -> dict[str, str]:
    return {c.name: c.state for c in report.checks}  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["classification", "state_dict", "onnx"])
def test_good_files_pass(model_files: dict[str, Path], kind: str) -> None:
    report = check_model_file(model_files[kind])
    assert report.status == "excellent", report.to_json()
    assert set(_states(report).values()) == {"pass"}
    assert report.sha256 == report.spec.sha256  # type: ignore[union-attr]
    assert "sandbox" not in report.checks[2].detail  # weights and graphs load here


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_code_carrying_formats_pass_only_in_the_sandbox(
    model_files: dict[str, Path], kind: str
) -> None:
    report = check_model_file(model_files[kind])
    assert set(_states(report).values()) == {"pass"}, report.to_json()
    assert "sandboxed worker" in report.checks[2].detail
    assert report.status == "good"  # never "excellent": the format can carry code
    assert [i.code for i in report.issues] == ["sandboxed_format"]


def test_sandbox_unavailable_refuses_with_a_reason(
    model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from noctis_lab.ai import _sandbox

    monkeypatch.setattr(_sandbox, "_bwrap", lambda: None)
    report = check_model_file(model_files["export"])
    assert report.status == "error"
    assert "bubblewrap" in report.checks[2].detail and "refused" in report.checks[2].detail
    assert check_model_file(model_files["classification"]).status == "excellent"


def test_missing_and_empty(tmp_path: Path) -> None:
    missing = check_model_file(tmp_path / "nope.pt")
    assert missing.status == "error"
    assert missing.issues[0].code == "missing_file"
    assert _states(missing)["load"] == "skipped"
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    rep = check_model_file(empty)
    assert rep.status == "error" and rep.issues[0].code == "empty_file"


def test_corrupt_and_truncated(tmp_path: Path, model_files: dict[str, Path]) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(os.urandom(4096))
    rep = check_model_file(corrupt)
    assert rep.status == "error"
    assert "unsafe_or_corrupt" in {i.code for i in rep.issues}
    data = model_files["classification"].read_bytes()
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(data[: len(data) // 2])
    rep = check_model_file(trunc)  # no sidecar: the load itself must fail
    assert rep.status == "error"
    assert _states(rep)["load"] == "fail"


def test_malicious_pickle_never_runs(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "pwned"
    raw = tmp_path / "evil.pt"
    raw.write_bytes(pickle.dumps(_Evil(marker)))
    zipped = tmp_path / "evil_zip.pt"
    torch.save({"weight": _Evil(marker)}, zipped)
    for path in (raw, zipped):
        rep = check_model_file(path)
        assert rep.status == "error", rep.to_json()
        assert _states(rep)["load"] == "fail"
        with pytest.raises(ModelCheckError, match=r"refused|not a"):
            load_model(path)
        # with a declared state-dict spec the safe loader refuses it as well
        spec = ModelSpec(
            task="classification", format="state_dict", factory="noctis.tiny_classifier"
        )
        assert check_model_file(path, spec).status == "error"
        assert check_model(path).status == "error"
    assert not marker.exists(), "the malicious pickle was executed"


def test_tampered_file_is_not_loaded(tmp_path: Path, model_files: dict[str, Path]) -> None:
    src = model_files["classification"]
    copy = tmp_path / src.name
    shutil.copy(src, copy)
    shutil.copy(src.with_name(src.name + ".spec.json"), tmp_path / f"{src.name}.spec.json")
    assert check_model_file(copy).status == "excellent"
    data = bytearray(src.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    copy.write_bytes(bytes(data))
    rep = check_model_file(copy)
    assert rep.status == "error"
    assert rep.issues[0].code == "hash_mismatch"
    assert _states(rep)["load"] == "skipped"


def test_output_spec_shape_range_and_determinism(tmp_path: Path) -> None:
    import torch
    import torch.nn as nn

    from noctis_lab.ai._nets import build_network

    net = build_network("noctis.tiny_classifier")
    wrong = save_model(
        net,
        tmp_path / "a.safetensors",
        ModelSpec(task="classification", format="safetensors", factory="noctis.tiny_classifier"),
    )
    bad = wrong.model_copy(update={"output_shape": (1, 2)})
    rep = check_model_file(tmp_path / "a.safetensors", bad)
    assert rep.status == "error" and "shape (1, 1)" in rep.checks[3].detail

    class Logits(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3)) * 100.0

    save_model(Logits(), tmp_path / "b.pt", ModelSpec(task="classification", format="torchscript"))
    rep = check_model_file(tmp_path / "b.pt")
    assert rep.status == "error" and "outside [0.0, 1.0]" in rep.checks[3].detail

    class Noisy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.rand(x.shape[0], 1)

    save_model(Noisy(), tmp_path / "c.pt", ModelSpec(task="classification", format="torchscript"))
    rep = check_model_file(tmp_path / "c.pt")
    assert rep.status == "error" and "nondeterministic" in {i.code for i in rep.issues}


def test_no_spec_is_a_warning(tmp_path: Path, model_files: dict[str, Path]) -> None:
    copy = tmp_path / "bare.onnx"
    shutil.copy(model_files["onnx"], copy)
    rep = check_model_file(copy)
    assert rep.status == "warning"
    assert {i.code for i in rep.issues} == {"unverified_hash", "no_spec"}
    assert _states(rep)["load"] == "pass"
