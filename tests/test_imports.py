"""The package's import graph has no cycles (issue 16, point 5).

The graph is built from the source with :mod:`ast`: an edge for every import of a
``noctis_lab`` module, module-level or inside a function (a lazy import still ties two
modules together), except imports under ``if TYPE_CHECKING:`` (annotations only, never
run). ``from pkg import name`` points at ``pkg.name`` when that is a module, else at
``pkg`` itself (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    cycles = import_cycles(ROOT, "noctis_lab")
    assert not cycles, f"import cycles: {sorted(sorted(c) for c in cycles)}"


# --------------------------------------------------------------------- the package's layout
#: The loose modules the package root may hold: the core every subpackage shares.
CORE = {"__init__", "_browser", "_errors", "_paths", "_version"}
#: The most names a subpackage's ``__all__`` may list.
MAX_ALL = 30


def _all_names(init: Path) -> list[str] | None:
    """The literal ``__all__`` of a module, or None when it has none."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return None


def test_the_package_root_holds_only_the_core() -> None:
    """Everything else lives in a subpackage (cli, services, alerts, batch, hu, ...)."""
    loose = {p.stem for p in (ROOT / "noctis_lab").glob("*.py")}
    assert loose == CORE, f"top-level modules outside the core: {sorted(loose - CORE)}"


def test_each_subpackage_documents_a_short_all() -> None:
    packages = sorted(p.parent for p in (ROOT / "noctis_lab").glob("*/__init__.py"))
    assert len(packages) >= 9
    for init in packages:
        module = init / "__init__.py"
        assert ast.get_docstring(ast.parse(module.read_text())), f"{init.name}: no docstring"
        names = _all_names(module)
        assert names is not None, f"{init.name}: no literal __all__"
        assert 0 < len(names) <= MAX_ALL, (
            f"{init.name}: {len(names)} names in __all__ (at most {MAX_ALL}): leave what a "
            "notebook does not need in its private module"
        )


def test_every_command_registers_with_one_signature() -> None:
    """Each command module of ``noctis_lab.cli`` has ``register(subparsers) -> None``."""
    import importlib
    import inspect

    from noctis_lab.cli import _hu, _main

    registered = {f.__module__ for f in (*_main._COMMANDS, *_hu._REGISTRARS)}
    found = set()
    for path in sorted((ROOT / "noctis_lab" / "cli").glob("_[!_]*.py")):
        module = importlib.import_module(f"noctis_lab.cli.{path.stem}")
        register = getattr(module, "register", None)
        if register is None:
            continue
        found.add(module.__name__)
        sig = inspect.signature(register)
        shown = [(p.name, p.annotation) for p in sig.parameters.values()]
        assert shown == [("subparsers", "Subparsers")], (module.__name__, shown)
        assert sig.return_annotation == "None", module.__name__
    assert found <= registered, f"never registered: {sorted(found - registered)}"
    assert len(found) == 14, sorted(found)
