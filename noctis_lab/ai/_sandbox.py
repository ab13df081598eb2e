"""Run an untrusted model file in a sandboxed worker process (bubblewrap).

TorchScript and ``torch.export`` (``.pt2``) files can carry code: pickled weights or
constants run their payload while loading, and TorchScript can call operators such as
``torch.from_file(..., shared=True)`` that write files. Such files are never loaded in our
process. :func:`run_in_sandbox` starts :mod:`noctis_lab.ai._sandbox_worker` under
``bwrap`` with:

- no network and no other shared namespace (``--unshare-all``), an unprivileged user
  (uid 65534 in its own user namespace) without any capability, a fresh session, no
  inherited environment (``--clearenv``), killed with its parent;
- read-only: the Python runtime and its packages, the model file and the inputs; nothing
  else of the host is visible (no home folder, no project tree, no data);
- writable: one scratch folder (deleted afterwards) and a private ``/tmp``;
- limits (``setrlimit``): address space, CPU seconds, size of any file written; and a
  wall-clock timeout after which the whole process group is killed.

Only plain data comes back: a JSON result and ``.npy`` arrays read with
``allow_pickle=False``. Without a working bubblewrap the caller gets a
:class:`~noctis_lab._errors.ModelCheckError` saying so (the file is refused, not run).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noctis_lab._errors import ModelCheckError

__all__ = ["SANDBOXED_FORMATS", "SandboxLimits", "SandboxRun", "run_in_sandbox", "sandbox_problem"]

#: Formats whose files may hold code and therefore run only in the sandbox.
SANDBOXED_FORMATS = frozenset({"torchscript", "export"})

_WORKER = Path(__file__).with_name("_sandbox_worker.py")
#: New namespaces for everything (network included), an unprivileged user inside, and no
#: capabilities (so even a worker started by root cannot remount a read-only bind).
_ISOLATION = (
    "--unshare-all",
    "--unshare-user",
    "--uid",
    "65534",
    "--gid",
    "65534",
    "--cap-drop",
    "ALL",
)
_MAX_RESULT_BYTES = 1 << 20


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed run.

    Attributes
    ----------
    memory_bytes : int
        Address-space limit (``RLIMIT_AS``) of the worker.
    cpu_seconds : int
        CPU-time limit (``RLIMIT_CPU``).
    wall_seconds : float
        Wall-clock limit; the worker's process group is killed after it.
    file_bytes : int
        Largest file the worker may write (``RLIMIT_FSIZE``), outputs included.
    """

    memory_bytes: int = 6 << 30
    cpu_seconds: int = 600
    wall_seconds: float = 600.0
    file_bytes: int = 2 << 30


@dataclass(frozen=True)
class SandboxRun:
    """What a sandboxed run returned.

    ``outputs`` (one array per repeat), ``per_case`` (the model took only a batch of one,
    so cases ran one at a time), ``dtype``.
    """

    outputs: tuple[np.ndarray, ...]
    per_case: bool
    dtype: str


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _runtime_binds() -> list[str]:
    """Read-only binds of the Python runtime.

    /usr (with the /lib, /bin links), the base interpreter and the virtual environment.
    """
    args: list[str] = []
    for top in ("/usr",):
        args += ["--ro-bind", top, top]
    for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        args += ["--ro-bind-try", f, f]
    seen: set[str] = {"/usr"}
    for prefix in (sys.base_prefix, sys.prefix):
        for folder in (prefix, os.path.realpath(prefix)):
            if folder not in seen and not folder.startswith("/usr/"):
                seen.add(folder)
                args += ["--ro-bind", folder, folder]
    return args


def _command(model: Path, in_dir: Path, out_dir: Path) -> list[str]:
    bwrap = _bwrap()
    assert bwrap is not None
    return [
        bwrap,
        *_ISOLATION,
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        *_runtime_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--ro-bind",
        str(_WORKER),
        "/sandbox/worker.py",
        "--ro-bind",
        str(model),
        f"/sandbox/model/{model.name}",
        "--ro-bind",
        str(in_dir),
        "/sandbox/in",
        "--bind",
        str(out_dir),
        "/sandbox/out",
        "--chdir",
        "/sandbox/out",
        "--setenv",
        "HOME",
        "/sandbox/out",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "OMP_NUM_THREADS",
        "1",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        sys.executable,
        "-I",
        "/sandbox/worker.py",
    ]


def _limit(limits: SandboxLimits) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def sandbox_problem() -> str | None:
    """Why the sandbox cannot run here, or ``None`` when it can (probed with a real run)."""
    bwrap = _bwrap()
    if bwrap is None:
        return (
            "the sandbox needs bubblewrap (bwrap), which is not installed "
            "(Debian: apt-get install bubblewrap)"
        )
    probe = [bwrap, *_ISOLATION, "--die-with-parent", *_runtime_binds(), "--", "/bin/true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap cannot start: {exc}"
    if proc.returncode != 0:
        why = " ".join(proc.stderr.split())[:300] or f"exit status {proc.returncode}"
        return f"bubblewrap cannot create the sandbox here: {why}"
    return None


def run_in_sandbox(
    model: str | Path,
    fmt: str,
    inputs: np.ndarray,
    *,
    repeat: int = 1,
    batch_size: int = 64,
    limits: SandboxLimits | None = None,
) -> SandboxRun:
    """Load ``model`` (``fmt``: ``torchscript`` or ``export``) in the sandbox and run it.

    Parameters
    ----------
    model : str or Path
        The untrusted model file (bound read-only).
    fmt : {"torchscript", "export"}
    inputs : ndarray
        A batch (n, ...) given to the model in chunks of ``batch_size``; when the model
        refuses a batch (static batch of one), the cases run one at a time.
    repeat : int
        Forward passes over the whole batch (2 for the determinism check).
    batch_size : int
    limits : SandboxLimits, optional

    Raises
    ------
    ModelCheckError
        The sandbox is unavailable, the worker failed, timed out or hit a limit; the message
        says which.
    """
    if fmt not in SANDBOXED_FORMATS:
        raise ModelCheckError(f"the sandbox runs {sorted(SANDBOXED_FORMATS)} files, not {fmt!r}")
    problem = sandbox_problem()
    if problem is not None:
        raise ModelCheckError(f"refused to load the {fmt} file {model}: {problem}")
    lim = limits or SandboxLimits()
    src = Path(model).resolve()
    with tempfile.TemporaryDirectory(prefix="noctis-sandbox-") as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        in_dir.mkdir()
        out_dir.mkdir()
        np.save(in_dir / "inputs.npy", np.ascontiguousarray(inputs), allow_pickle=False)
        job = {
            "format": fmt,
            "model": f"/sandbox/model/{src.name}",
            "inputs": "inputs.npy",
            "repeat": int(repeat),
            "batch_size": int(batch_size),
        }
        (in_dir / "job.json").write_text(json.dumps(job))
        cmd = _command(src, in_dir, out_dir)
        with subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_limit(lim),
            start_new_session=True,
        ) as proc:
            try:
                _, err = proc.communicate(timeout=lim.wall_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.communicate()
                raise ModelCheckError(
                    f"{src.name}: the sandboxed worker exceeded {lim.wall_seconds:g} s and was "
                    "killed"
                ) from None
        return _read_result(src.name, out_dir, proc.returncode, err)


def _read_result(name: str, out_dir: Path, code: int, err: bytes) -> SandboxRun:
    res_file = out_dir / "result.json"
    if not res_file.is_file() or res_file.stat().st_size > _MAX_RESULT_BYTES:
        tail = " ".join(err.decode("utf-8", "replace").split())[-300:]
        raise ModelCheckError(
            f"{name}: the sandboxed worker died (exit status {code}) without a result"
            + (f": {tail}" if tail else " (killed by a limit?)")
        )
    try:
        res = json.loads(res_file.read_text())
    except ValueError:
        raise ModelCheckError(f"{name}: the sandboxed worker wrote an unreadable result") from None
    if not isinstance(res, dict) or not res.get("ok"):
        why = str(res.get("error", "")) if isinstance(res, dict) else ""
        raise ModelCheckError(f"{name}: failed in the sandbox: {why[:500] or 'no reason given'}")
    outputs = []
    for fname in res.get("outputs", []):
        f = out_dir / Path(str(fname)).name
        try:
            outputs.append(np.load(f, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise ModelCheckError(f"{name}: unreadable sandbox output {f.name}: {exc}") from None
    return SandboxRun(tuple(outputs), bool(res.get("per_case")), str(res.get("dtype", "")))
