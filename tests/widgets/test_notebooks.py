"""The physicist notebooks: stored without outputs, thin, and run top to bottom (papermill)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = ("hu_calibration.ipynb", "phantoms_and_references.ipynb")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_clean_and_thin(repo_root: Path, name: str) -> None:
    nb = json.loads((repo_root / "notebooks" / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, "stored with outputs"
        tree = ast.parse("".join(cell["source"]))
        defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        assert not defs, f"{name}: notebooks call the package, they define nothing"
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)
    # papermill lets a cell tagged "raises-exception" fail and runs on: none may be, so
    # that a papermill run that returns means every cell ran without an error
    assert not [c for c in code if "raises-exception" in c.get("metadata", {}).get("tags", [])]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(notebook_home: Path, tmp_path: Path, name: str) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from noctis_lab.hu.history import CalibrationHistory

    out = tmp_path / f"out-{name}"
    try:
        papermill.execute_notebook(
            str(notebook_home / "notebooks" / name),
            str(out),
            cwd=str(notebook_home / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=300,
        )
    except PapermillExecutionError as exc:  # name the cell and the error, not a wall of JSON
        pytest.fail(f"{name} cell {exc.exec_count} raised {exc.ename}: {exc.evalue}")
    nb = json.loads(out.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    # every cell ran, once, in order (the injected parameters cell included)
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    # a cell that ends in an expression shows its value: nothing came back as None
    for cell in code:
        body = ast.parse("".join(cell["source"])).body
        if body and isinstance(body[-1], ast.Expr):
            shown = [o for o in cell["outputs"] if o["output_type"] != "stream"]
            assert shown, f"{name}: shows nothing: {''.join(cell['source'])!r}"
    # every figure is drawn, none is left as its text repr ("<Figure size 520x520 ...>")
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if "<Figure size" in "".join(data.get("text/plain", [])):
                assert "image/png" in data, f"{name}: a figure shown as text: {cell['source']}"
    if name == "hu_calibration.ipynb":
        text = json.dumps(nb)
        assert "application/vnd.jupyter.widget-view+json" in text  # the widgets were shown
        with CalibrationHistory() as history:  # NOCTIS_HOME: the private copy, not the repo
            assert str(notebook_home) in history.url
            recs = history.records()
            assert len(recs) == 1 and recs["operator"].tolist() == ["demo physicist"]
