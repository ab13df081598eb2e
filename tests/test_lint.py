"""The code stays ruff- and mypy-clean (what `make lint` runs)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PATHS = ["noctis_lab", "tests", "bench", "extensions"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check() -> None:
    proc = _run(str(BIN / "ruff"), "check", *PATHS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format() -> None:
    proc = _run(str(BIN / "ruff"), "format", "--check", *PATHS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_mypy() -> None:
    proc = _run(str(BIN / "mypy"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_notebooks_are_stored_without_outputs_and_thin() -> None:
    import json

    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            assert not cell.get("outputs"), f"{nb.name} is stored with outputs"
            assert cell.get("execution_count") is None, f"{nb.name} has execution counts"
            assert "def " not in src and "class " not in src, f"{nb.name} defines code: {src}"


# --------------------------------------------------------------------- CI and real parts
def test_a_missing_real_part_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import _ci

    monkeypatch.setattr(_ci, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL"):
        _ci.missing_real_part("no PostgreSQL")
    monkeypatch.setattr(_ci, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true and a real part is missing"):
        _ci.missing_real_part("no PostgreSQL")


def test_precommit_runs_ruff_mypy_and_strips_notebooks() -> None:
    text = (ROOT / ".pre-commit-config.yaml").read_text()
    for hook in ("ruff-check", "ruff-format", "mypy", "nbstripout"):
        assert f"id: {hook}" in text, hook
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")


# --------------------------------------------------------------------- the committed frontend
ROOMS = ROOT / "extensions" / "noctis_rooms"
#: What ``build.sh`` writes after a build: ``sha256sum`` lines of the build's inputs
#: (TypeScript, styles, package and compiler settings) and of its output (the bundle).
BUILT_FROM = ROOMS / "noctis_rooms" / "labextension" / "built-from.sha256"


def _build_files(root: Path) -> set[str]:
    """The sources a build reads and the bundle it writes, relative to ``root``."""
    inputs = [root / "package.json", root / "tsconfig.json"]
    for folder in ("src", "style", "noctis_rooms/labextension"):
        inputs += [p for p in (root / folder).rglob("*") if p.is_file()]
    names = {p.relative_to(root).as_posix() for p in inputs}
    return names - {BUILT_FROM.relative_to(ROOMS).as_posix()}


def _mismatches(root: Path, manifest: str) -> list[str]:
    """What differs between ``root`` and a ``sha256sum`` manifest of its build files."""
    import hashlib

    recorded = {}
    for line in manifest.splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.lstrip("*")] = digest
    current = _build_files(root)
    out = [f"{n}: not in the build record" for n in sorted(current - set(recorded))]
    out += [f"{n}: recorded, now missing" for n in sorted(set(recorded) - current)]
    for name in sorted(current & set(recorded)):
        if hashlib.sha256((root / name).read_bytes()).hexdigest() != recorded[name]:
            out.append(f"{name}: changed since the build")
    return out


def test_the_committed_labextension_was_built_from_the_committed_sources() -> None:
    """The Room panel bundle matches its TypeScript: both are in the build's record."""
    assert BUILT_FROM.is_file(), f"{BUILT_FROM} is missing: run extensions/noctis_rooms/build.sh"
    problems = _mismatches(ROOMS, BUILT_FROM.read_text(encoding="utf-8"))
    assert not problems, (
        "the committed Room panel bundle and its sources disagree (rebuild with "
        "extensions/noctis_rooms/build.sh and commit the bundle, its built-from.sha256 "
        "and the sources together):\n" + "\n".join(problems)
    )


def test_the_build_record_check_names_an_edited_source_and_bundle(tmp_path: Path) -> None:
    """build.sh's own recording line on a small tree, then edits the check must name."""
    import shutil

    record = [
        line
        for line in (ROOMS / "build.sh").read_text().splitlines()
        if "sha256sum" in line and BUILT_FROM.name in line
    ]
    assert len(record) == 1, "build.sh must record the build (one sha256sum line)"
    for name in ("package.json", "tsconfig.json"):
        shutil.copy(ROOMS / name, tmp_path / name)
    for name in ("src/panel.ts", "src/index.ts", "style/index.css"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"// {name}\n")
    bundle = tmp_path / "noctis_rooms" / "labextension" / "static" / "remoteEntry.0a1b.js"
    bundle.parent.mkdir(parents=True)
    bundle.write_text("var noctis_rooms = {};\n")
    (bundle.parents[1] / "package.json").write_text("{}\n")
    subprocess.run(["sh", "-ec", record[0]], cwd=tmp_path, check=True, timeout=60)
    manifest = (tmp_path / BUILT_FROM.relative_to(ROOMS)).read_text()
    assert _mismatches(tmp_path, manifest) == []
    with (tmp_path / "src" / "panel.ts").open("a") as fh:
        fh.write("// an edit without a rebuild\n")
    bundle.write_text("var nectis_rooms = {};\n")  # the bundle edited by hand
    (tmp_path / "src" / "extra.ts").write_text("export {};\n")
    (tmp_path / "style" / "index.css").unlink()
    assert _mismatches(tmp_path, manifest) == [
        "src/extra.ts: not in the build record",
        "style/index.css: recorded, now missing",
        "noctis_rooms/labextension/static/remoteEntry.0a1b.js: changed since the build",
        "src/panel.ts: changed since the build",
    ]


# --------------------------------------------------------------------- numpydoc Parameters
#: Public functions of four or more parameters still without a Parameters section, with
#: their owner (issue 16.4): remove a line when its docstring is mended.
UNDOCUMENTED_PARAMETERS = {
    "ai/_status.py metric_history",  # VOCAB
    "ai/_status.py model_status",  # VOCAB
}


def _exported_names(package: Path) -> set[str]:
    """Every name in the ``__all__`` of a package or subpackage of ``package``."""
    names: set[str] = set()
    for init in package.rglob("__init__.py"):
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                names |= set(ast.literal_eval(node.value))
    return names


def _public_api(package: Path) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(``module name``, function) of the public API: public functions and methods of public
    modules, and those of private modules that a package's ``__all__`` exports."""
    exported = _exported_names(package)
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        public_module = not any(p.startswith("_") and p != "__init__.py" for p in rel.parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.name.startswith("_") or not (public_module or node.name in exported):
                continue
            if isinstance(node, ast.ClassDef):
                found += [
                    (f"{rel.as_posix()} {node.name}.{f.name}", f)
                    for f in node.body
                    if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not f.name.startswith("_")
                ]
            else:
                found.append((f"{rel.as_posix()} {node.name}", node))
    return found


def _n_parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x]
    return len([n for n in names if n not in ("self", "cls")])


def test_public_functions_of_four_or_more_parameters_document_them() -> None:
    """ruff's D417 checks only the parameters a Parameters section lists; this, that it exists."""
    missing = {
        name
        for name, fn in _public_api(ROOT / "noctis_lab")
        if _n_parameters(fn) >= 4 and "Parameters\n----------" not in (ast.get_docstring(fn) or "")
    }
    assert missing <= UNDOCUMENTED_PARAMETERS, sorted(missing - UNDOCUMENTED_PARAMETERS)
    assert len(_public_api(ROOT / "noctis_lab")) > 200  # the walk sees the package
