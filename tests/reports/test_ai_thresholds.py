"""The AI dashboard judges with the thresholds shown in it: edited, loaded, refused."""

from __future__ import annotations

from pathlib import Path

from noctis_lab.ai import model_status

LEVELS = ("excellent", "good", "warning")


def test_thresholds_edited_in_the_dashboard_change_the_status(store_home: Path) -> None:
    from noctis_lab.reports import ai_dashboard

    ai = ai_dashboard()
    name = ai.model
    assert name is not None
    before = ai._statuses[name].status
    assert before == model_status(name).status  # the defaults, as `ai status` judges

    # lenient and strict sets: the page judges exactly as `ai status --thresholds` would
    lenient = {f"{k}_{lvl}": 0.0 for k in ("metric", "success") for lvl in LEVELS}
    strict = {f"metric_{lvl}": 1.0 for lvl in LEVELS}
    seen = set()
    for values in (lenient, strict):
        for field, value in values.items():
            ai.thresholds.inputs[field].value = value
        assert ai.thresholds.apply()
        expected = model_status(name, thresholds=ai.thresholds.current).status
        assert ai._statuses[name].status == expected
        assert "status judged with the values above" in ai.thresholds.result.value
        seen.add(expected)
    assert "error" in seen and len(seen) == 2  # the thresholds decide the verdict
    strict_set = ai.thresholds.current

    # an impossible set is refused with the reason; the last valid set stays in force
    ai.thresholds.inputs["metric_good"].value = 0.5
    ai.thresholds.inputs["metric_excellent"].value = 0.4
    assert not ai.thresholds.apply()
    assert "excellent &gt;= good &gt;= warning" in ai.thresholds.result.value  # escaped
    assert ai.thresholds.current == strict_set
    assert ai._statuses[name].status == "error"


def test_thresholds_loaded_from_a_file_and_bad_files_refused(
    store_home: Path, tmp_path: Path
) -> None:
    from noctis_lab.reports import ai_dashboard

    ai = ai_dashboard()
    name = ai.model
    assert name is not None
    path = tmp_path / "thresholds.toml"
    path.write_text("metric_excellent = 1.0\nmetric_good = 1.0\nmetric_warning = 1.0\n")
    assert ai.thresholds.load(str(path))
    assert ai.thresholds.inputs["metric_warning"].value == 1.0
    assert ai._statuses[name].status == "error"
    assert not ai.thresholds.load(str(tmp_path / "missing.toml"))
    assert "thresholds not loaded" in ai.thresholds.result.value
    assert ai.thresholds.current.metric_warning == 1.0  # unchanged
