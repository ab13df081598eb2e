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
