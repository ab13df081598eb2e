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


# --------------------------------------------------------------------- import cycles
#: Cycles known when the check came in, each to be broken by its owners (issue 16, point 5):
#: hu/_demo_set.py imports hu/synthetic.py, which re-exports demo_series/write_demo_set.
KNOWN_CYCLES = {frozenset({"noctis_lab.hu._demo_set", "noctis_lab.hu.synthetic"})}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (but under TYPE_CHECKING)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in modules)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                for a in child.names:
                    full = f"{base}.{a.name}"
                    found.add(full if full in modules else base)
            visit(child)

    visit(ast.parse(path.read_text()))
    return (found & modules) - {name}


def import_cycles(root: Path, package: str) -> set[frozenset[str]]:
    """Groups of modules of ``package`` that import each other (strongly connected)."""
    paths = {_module_name(root, p): p for p in (root / package).rglob("*.py")}
    graph = {m: _imports(m, p, set(paths)) for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: set[frozenset[str]] = set()

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = {stack.pop()}
            while v not in comp:
                comp.add(stack.pop())
            if len(comp) > 1:
                cycles.add(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return cycles


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from pkg.sub.b import g\n")
    (pkg / "sub" / "b.py").write_text("from . import a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n"
    )
    (pkg / "d.py").write_text("import pkg.c\n")
    assert import_cycles(tmp_path, "pkg") == {frozenset({"pkg.sub.a", "pkg.sub.b"})}


def test_the_package_has_no_import_cycles() -> None:
    """Function-level imports count too: a lazy import still ties two modules together."""
    new = import_cycles(ROOT, "noctis_lab") - KNOWN_CYCLES
    assert not new, f"import cycles: {[sorted(c) for c in new]}"


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
