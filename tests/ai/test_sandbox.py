"""Hostile model files: no payload runs in our process, no file outside scratch changes.

Each file carries a payload that, if it ran anywhere with access to the test's folder,
would create a marker file there (and for TorchScript overwrite a victim file through
``torch.from_file(..., shared=True)``). TorchScript and ``torch.export`` files are only
opened in the bubblewrap worker (no network, read-only runtime, scratch-only writes), bare
and zipped pickles are refused by the safe loader. Each test also shows the payload *does*
fire when the file is opened naively in a throwaway child process, so the files are truly
hostile (the test could fail).
"""

from __future__ import annotations

import builtins
import io
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _ci import IN_CI

from noctis_lab import ModelCheckError
from noctis_lab.ai import ModelSpec, check_model_file, save_model
from noctis_lab.ai._checks import load_model
from noctis_lab.ai._sandbox import SandboxLimits, run_in_sandbox, sandbox_problem

pytestmark = pytest.mark.skipif(  # in CI an unavailable sandbox fails the tests instead
    sandbox_problem() is not None and not IN_CI,
    reason=f"sandbox unavailable: {sandbox_problem()}",
)


class _Payload:
    """Unpickling this runs Python code that writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        code = f"open({str(self.marker)!r}, 'w').write('payload ran')"
        return (builtins.exec, (code,))


def _rewrite(src: Path, dst: Path, edit: dict[str, bytes]) -> None:
    """Copy a zip archive, replacing (or adding) members by name suffix."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        names = zin.namelist()
        for item in zin.infolist():
            data = next((v for k, v in edit.items() if item.filename.endswith(k)), None)
            zout.writestr(item, zin.read(item.filename) if data is None else data)
        prefix = names[0].split("/", 1)[0]
        for k, v in edit.items():
            if not any(n.endswith(k) for n in names):
                zout.writestr(f"{prefix}/{k}", v)


def _base_export(tmp: Path) -> Path:
    from noctis_lab.ai._nets import build_network

    base = tmp / "base.pt2"
    if not base.exists():  # one export serves both hostile archives
        save_model(
            build_network("noctis.tiny_classifier"),
            base,
            ModelSpec(task="classification", factory="noctis.tiny_classifier"),
        )
    return base


def _pickled_weight_pt2(tmp: Path, marker: Path) -> Path:
    """A ``.pt2`` whose first weight is flagged ``use_pickle`` and holds a payload."""
    import torch

    base = _base_export(tmp)
    with zipfile.ZipFile(base) as z:
        cfg_name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        cfg = json.loads(z.read(cfg_name))
    first = next(iter(cfg["config"]))
    cfg["config"][first]["use_pickle"] = True
    buf = io.BytesIO()
    torch.save(_Payload(marker), buf)
    out = tmp / "evil_weight.pt2"
    _rewrite(
        base,
        out,
        {
            "model_weights_config.json": json.dumps(cfg).encode(),
            f"data/weights/{cfg['config'][first]['path_name']}": buf.getvalue(),
        },
    )
    return out


def _opaque_constant_pt2(tmp: Path, marker: Path) -> Path:
    """A ``.pt2`` with an extra opaque constant (read with ``pickle.loads``)."""
    from torch.export.pt2_archive.constants import OPAQUE_OBJ_FILENAME_PREFIX

    base = _base_export(tmp)
    name = f"{OPAQUE_OBJ_FILENAME_PREFIX}0"
    cfg = {"config": {"evil": {"path_name": name, "is_param": False, "use_pickle": True}}}
    cfg["config"]["evil"]["tensor_meta"] = None  # type: ignore[assignment]
    out = tmp / "evil_constant.pt2"
    _rewrite(
        base,
        out,
        {
            "model_constants_config.json": json.dumps(cfg).encode(),
            f"data/constants/{name}": pickle.dumps(_Payload(marker)),
        },
    )
    return out


def _from_file_torchscript(tmp: Path, victim: Path) -> Path:
    """TorchScript that maps ``victim`` shared and overwrites it while running."""
    import torch
    import torch.nn as nn

    class Overwrite(nn.Module):
        def __init__(self, path: str, n: int) -> None:
            super().__init__()
            self.path = path
            self.n = n

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = torch.from_file(self.path, shared=True, size=self.n, dtype=torch.uint8)
            t.fill_(88)  # the result is used below, so the compiler keeps the write
            return torch.sigmoid(x.mean(dim=[1, 2, 3])).unsqueeze(1) + 0.0 * t[0].float()

    out = tmp / "evil_script.pt"
    save_model(
        Overwrite(str(victim), victim.stat().st_size),
        out,
        ModelSpec(task="classification", format="torchscript"),
    )
    return out


def _fires_naively(code: str) -> None:
    """Run ``code`` in a throwaway child (not under test) to prove the payload is live."""
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, timeout=300)


def _assert_not_fine(report: object) -> None:
    text = json.dumps(report.to_dict()).lower()  # type: ignore[attr-defined]
    assert "loaded fine" not in text
    assert "loaded as" not in text


def test_pt2_pickled_weight_and_opaque_constant_payloads_never_run_here(tmp_path: Path) -> None:
    evils = {}
    for build in (_pickled_weight_pt2, _opaque_constant_pt2):
        marker = tmp_path / f"marker_{build.__name__}"
        evil = build(tmp_path, marker)
        evils[evil] = marker
        spec = ModelSpec(task="classification", format="export")
        rep = check_model_file(evil, spec)
        assert not marker.exists(), f"{build.__name__}: the payload ran"
        _assert_not_fine(rep)
        load = next(c for c in rep.checks if c.name == "load")
        if load.state == "pass":  # loaded in the sandbox: the report says so, not "fine"
            assert "sandbox" in load.detail and "confined, not trusted" in load.detail
            assert rep.status != "excellent"
        runner = load_model(evil, spec)
        assert runner.where == "sandbox"  # nothing of the file was loaded in this process
        assert not marker.exists()
    # the same files opened naively (torch.export.load) in a child do run the payloads
    loads = "".join(
        f"\ntry:\n    torch.export.load({str(e)!r})\nexcept Exception:\n    pass" for e in evils
    )
    _fires_naively("import torch" + loads)
    for evil, marker in evils.items():
        assert marker.exists(), f"{evil.name} is not hostile: the test proves nothing"


def test_torchscript_from_file_cannot_overwrite(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious calibration record\n")
    before = victim.read_bytes()
    evil = _from_file_torchscript(tmp_path, victim)
    rep = check_model_file(evil)
    assert victim.read_bytes() == before, "the TorchScript overwrote a file outside scratch"
    _assert_not_fine(rep)
    assert rep.status == "error", rep.to_json()  # the worker cannot even see the file
    load = next(c for c in rep.checks if c.name == "load")
    assert load.state == "fail" and "sandbox" in load.detail
    # run naively in a child, the same file does overwrite the victim
    _fires_naively(f"import torch; m = torch.jit.load({str(evil)!r}); m(torch.zeros(1, 1, 8, 8))")
    assert victim.read_bytes() != before, "the TorchScript is not hostile: the test proves nothing"


def test_raw_and_zip_pickles_are_refused_without_running(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "marker"
    raw = tmp_path / "evil_raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    zipped = tmp_path / "evil_zip.pt"
    torch.save({"w": _Payload(marker)}, zipped)
    for path in (raw, zipped):
        for spec in (
            None,
            ModelSpec(task="classification", format="state_dict", factory="noctis.tiny_classifier"),
            ModelSpec(task="classification", format="export"),
            ModelSpec(task="classification", format="torchscript"),
        ):
            rep = check_model_file(path, spec)
            assert rep.status == "error", rep.to_json()
            _assert_not_fine(rep)
            with pytest.raises(ModelCheckError):
                load_model(path, spec)
    assert not marker.exists()
    _fires_naively(f"import pickle; pickle.load(open({str(raw)!r}, 'rb'))")
    assert marker.exists()


def test_sandbox_sees_no_host_files_and_has_limits(tmp_path: Path) -> None:
    """The worker cannot read a host file it was not given; a memory hog is stopped."""
    import torch
    import torch.nn as nn

    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")

    class Probe(nn.Module):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = torch.from_file(self.path, shared=False, size=6, dtype=torch.uint8)
            return x.mean(dim=[1, 2, 3]).unsqueeze(1) + t.float().sum()

    save_model(
        Probe(str(secret)),
        tmp_path / "probe.pt",
        ModelSpec(task="classification", format="torchscript"),
    )
    with pytest.raises(ModelCheckError, match="sandbox"):
        run_in_sandbox(tmp_path / "probe.pt", "torchscript", np.zeros((1, 1, 4, 4), np.float32))

    class Hog(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            big = torch.ones(1 << 31, dtype=torch.float32)  # 8 GiB
            return x.mean(dim=[1, 2, 3]).unsqueeze(1) + big[0]

    save_model(Hog(), tmp_path / "hog.pt", ModelSpec(task="classification", format="torchscript"))
    with pytest.raises(ModelCheckError, match=r"sandbox|died|limit"):
        run_in_sandbox(
            tmp_path / "hog.pt",
            "torchscript",
            np.zeros((1, 1, 4, 4), np.float32),
            limits=SandboxLimits(memory_bytes=3 << 30),
        )


def test_sandbox_process_is_unprivileged_offline_and_read_only(tmp_path: Path) -> None:
    """The real bwrap arguments, with a shell in place of the worker."""
    from noctis_lab.ai._sandbox import _command

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    cmd = _command(model, tmp_path / "in", tmp_path / "out")
    assert cmd[-2:] == ["-I", "/sandbox/worker.py"]
    probe = (
        "grep CapEff /proc/self/status; id -u; "
        "touch /usr/x /sandbox/model/m.pt /sandbox/in/x 2>&1; touch /sandbox/out/ok; "
        "ls /work/main/noctis_lab 2>&1; echo NET; tail -n +3 /proc/net/dev | cut -d: -f1"
    )
    out = subprocess.run(
        [*cmd[:-3], "/bin/sh", "-c", probe], capture_output=True, text=True, timeout=60
    ).stdout
    assert "CapEff:\t0000000000000000" in out
    assert "\n65534\n" in out
    assert out.count("Read-only file system") == 3
    assert (tmp_path / "out" / "ok").exists()  # only the scratch folder is writable
    assert "No such file or directory" in out  # the project tree is not there
    assert out.split("NET\n", 1)[1].split() == ["lo"]  # loopback only: no network
    host_ifaces = Path("/proc/net/dev").read_text().splitlines()[2:]
    assert len(host_ifaces) > 1  # while this process has more (the test could fail)
