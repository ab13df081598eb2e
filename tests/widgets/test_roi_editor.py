"""The ROI editor, driven through its synced traits as the browser would drive it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import traitlets

from noctis_lab import HistoryError
from noctis_lab.widgets import RoiEditor, window_uint8


@pytest.fixture
def editor(catphan_result: Any, catphan_series: Any) -> RoiEditor:
    return RoiEditor(catphan_result, volume=catphan_series.volume)


def _row(ed: RoiEditor, key: str) -> dict[str, Any]:
    return next(r for r in ed.rows if r["key"] == key)


def test_initial_state_mirrors_the_analysis(editor: RoiEditor, catphan_result: Any) -> None:
    assert catphan_result.status == "pass"
    assert editor.status == "pass"
    assert [r["key"] for r in editor.rows] == [f"{r.module}/{r.name}" for r in catphan_result.rois]
    assert len(editor.rois) == len(catphan_result.rois)
    ny, nx = editor.image_shape
    assert len(editor.image) == ny * nx == 256 * 256
    assert editor.slice_index == catphan_result.localisation.reference_slice
    table = editor.table
    assert list(table.columns[:6]) == ["key", "module", "name", "material", "role", "mean"]
    assert table.loc[table["key"] == "CTP404/air_top", "status"].item() == "pass"


def test_remeasuring_unmoved_rois_reproduces_the_analysis(
    editor: RoiEditor, catphan_result: Any
) -> None:
    # the editor rebuilds the analysis' placement from the result; its own measurement of
    # the untouched ROIs must be the analysis' to the last bit
    meas = editor._judge._original_meas
    for mine, theirs in zip(meas.rois, catphan_result.rois, strict=True):
        assert (mine.module, mine.name) == (theirs.module, theirs.name)
        assert mine.mean == pytest.approx(theirs.mean, abs=1e-9)
        assert mine.sem == pytest.approx(theirs.sem, abs=1e-9)
        assert mine.x_mm == pytest.approx(theirs.x_mm, abs=1e-9)


def test_moving_a_roi_off_its_insert_fails_it_and_moving_back_restores(
    editor: RoiEditor, catphan_result: Any
) -> None:
    before = _row(editor, "CTP404/air_top")
    assert before["status"] == "pass" and before["mean"] < -980
    # what the browser does: send the whole geometry list with one ROI moved 15 mm right
    moved = [dict(r) for r in editor.rois]
    target = next(r for r in moved if r["key"] == "CTP404/air_top")
    target["x_mm"] += 15.0
    editor.rois = moved
    after = _row(editor, "CTP404/air_top")
    assert after["mean"] > -100, "15 mm off the 6 mm air insert is the CTP404 base material"
    assert after["status"] == "fail"
    assert editor.status == "fail" and editor.result.status == "fail"
    assert any(c["id"] == "air.CTP404.air_top" for c in editor.checks)
    assert editor.result.id != catphan_result.id
    assert editor.adjusted == ("CTP404/air_top",)
    assert editor.result.localisation.method in ("mixed", "manual")
    # other ROIs are untouched
    assert _row(editor, "CTP404/air_bottom")["mean"] == pytest.approx(
        catphan_result.roi("air_bottom").mean
    )
    assert editor.last_update_s > 0
    # and back again: the original numbers and verdicts
    target["x_mm"] -= 15.0
    editor.rois = [dict(r) for r in moved]
    assert _row(editor, "CTP404/air_top")["mean"] == pytest.approx(before["mean"])
    assert editor.status == "pass"
    assert editor.result is editor.original


def test_resizing_changes_the_pixel_count(editor: RoiEditor, catphan_result: Any) -> None:
    n0 = catphan_result.roi("teflon").n_pixels
    m = editor.move_roi("teflon", radius_mm=2.0)
    assert m.n_pixels < n0
    assert _row(editor, "CTP404/teflon")["n_pixels"] == m.n_pixels
    assert m.radius_mm == 2.0


def test_linearity_and_recommendations_follow_a_moved_insert(editor: RoiEditor) -> None:
    slope0 = editor.result.linearity.slope
    editor.move_roi("CTP404/teflon", dx_mm=14.0)
    assert editor.result.linearity.slope < slope0 - 0.05
    assert editor.status == "fail"
    failed = {c["id"] for c in editor.checks if c["status"] == "fail"}
    assert any(i.startswith("linearity") for i in failed), failed
    # the advice is the analysis' own for the new checks, and it reaches the browser
    assert editor.recommendations == list(editor.result.recommendations)


def test_uniformity_module_edit_updates_uniformity(editor: RoiEditor) -> None:
    u0 = editor.result.uniformity
    assert u0 is not None
    # drag the top edge ROI out of the phantom into air
    editor.move_roi("CTP486/top", dy_mm=-55.0)
    u1 = editor.result.uniformity
    assert u1 is not None and u1.edges_hu["top"] < -500
    assert editor.result.uniformity.max_difference_roi == "top"


def test_bad_geometry_is_refused_with_the_reason(editor: RoiEditor) -> None:
    rois = [dict(r) for r in editor.rois]
    rois[0]["radius_mm"] = 0.0
    with pytest.raises(traitlets.TraitError, match="radius_mm must be positive"):
        editor.rois = rois
    rois = [dict(r) for r in editor.rois]
    rois[0]["x_mm"] = -40.0
    with pytest.raises(traitlets.TraitError, match="outside the image"):
        editor.rois = rois
    rois = [dict(r) for r in editor.rois]
    rois[0]["key"] = "CTP404/nowhere"
    with pytest.raises(traitlets.TraitError, match="unknown ROI"):
        editor.rois = rois
    with pytest.raises(KeyError, match="no ROI 'nowhere'"):
        editor.move_roi("nowhere", dx_mm=1)
    assert editor.status == "pass"


def test_slice_and_window_redraw_the_image(editor: RoiEditor, catphan_series: Any) -> None:
    vol = catphan_series.volume
    editor.slice_index = 2
    expected = window_uint8(vol.hu[2], editor.window, editor.level)
    assert np.frombuffer(editor.image, np.uint8).reshape(vol.shape[1:]).tolist() == (
        expected.tolist()
    )
    first = editor.image
    editor.window = 400.0
    assert editor.image != first
    with pytest.raises(traitlets.TraitError, match="outside the series"):
        editor.slice_index = vol.shape[0]
    with pytest.raises(traitlets.TraitError, match="positive width"):
        editor.window = 0.0


def test_window_uint8_maps_the_window_ends() -> None:
    img = np.array([[-2000.0, -1000.0, 0.0, 1000.0, 3000.0]])
    assert window_uint8(img, 2000.0, 0.0).tolist() == [[0, 0, 128, 255, 255]]
    with pytest.raises(ValueError, match="positive width"):
        window_uint8(img, -1.0, 0.0)


def test_record_writes_exactly_one_row_with_the_operator(
    editor: RoiEditor, noctis_home: Path
) -> None:
    from noctis_lab.hu.history import CalibrationHistory

    editor.move_roi("air_top", dx_mm=15.0)
    record_id = editor.record("Dr. Ada Lovelace", notes="weekly QA")
    with CalibrationHistory() as history:
        assert len(history) == 1
        rec = history.get(record_id)
        assert rec.operator == "Dr. Ada Lovelace"
        assert rec.result.id == editor.result.id
        assert rec.result.status == "fail"
        assert "CTP404/air_top" in rec.notes and "weekly QA" in rec.notes
        assert rec.result.roi("air_top").mean == pytest.approx(
            _row(editor, "CTP404/air_top")["mean"]
        )
    assert str(record_id) in editor.message and "Ada Lovelace" in editor.message


def test_record_button_message_records_and_reports_errors(
    editor: RoiEditor, noctis_home: Path
) -> None:
    from noctis_lab.hu.history import CalibrationHistory

    # the browser's button sends {"event": "record", "operator": ...}
    editor._on_frontend_msg(editor, {"event": "record", "operator": ""}, [])
    assert editor.message.startswith("Not recorded") and "operator" in editor.message
    editor._on_frontend_msg(editor, {"event": "record", "operator": "B. Curie"}, [])
    with CalibrationHistory() as history:
        assert len(history) == 1
    assert editor.operator == "B. Curie"
    # the same result twice is stored once (the history's idempotent record), and said so
    editor._on_frontend_msg(editor, {"event": "record", "operator": "B. Curie"}, [])
    assert (
        editor.message.startswith("Already recorded as record")
        and "nothing stored" in editor.message
    )
    with CalibrationHistory() as history:
        assert len(history) == 1


def test_message_follows_an_edit_after_recording(editor: RoiEditor, noctis_home: Path) -> None:
    record_id = editor.record("B. Curie")
    assert editor.status == "pass" and editor.message.startswith("Recorded PASS")
    editor.move_roi("air_top", dx_mm=15.0)  # a drag into the phantom body: FAIL
    assert editor.status == "fail"
    assert "Recorded PASS" not in editor.message
    assert editor.message == f"Changed since record {record_id} (PASS): now FAIL, not recorded."
    editor._on_frontend_msg(editor, {"event": "reset"}, [])
    assert editor.message == "ROIs reset to the analysis positions."


def test_not_checked_rois_are_explained(editor: RoiEditor) -> None:
    skipped = [r for r in editor.rows if r["status"] == "not_checked"]
    assert skipped, "the seed profile leaves some inserts unjudged"
    note = editor.profile_note
    assert f"{len(skipped)} ROIs are measured but not checked" in note
    assert "profile seed" in note and "water CT number 0 ± 5 HU" in note
    assert "'manufacturer'" in note


def test_record_without_operator_raises(editor: RoiEditor, noctis_home: Path) -> None:
    with pytest.raises(HistoryError, match="operator"):
        editor.record("  ")


def test_reset_message_restores_the_analysis(editor: RoiEditor) -> None:
    editor.move_roi("air_top", dx_mm=15.0)
    assert editor.status == "fail"
    editor._on_frontend_msg(editor, {"event": "reset"}, [])
    assert editor.status == "pass" and editor.adjusted == ()
    assert editor.result is editor.original


def test_editor_from_a_volume_runs_the_analysis(catphan_series: Any) -> None:
    ed = RoiEditor(catphan_series, phantom="catphan604")
    assert ed.original.phantom == "catphan604"
    assert math.isfinite(_row(ed, "CTP404/teflon")["mean"])


def test_editor_needs_the_series(catphan_result: Any) -> None:
    with pytest.raises(ValueError, match="not on disk"):
        RoiEditor(catphan_result)
    with pytest.raises(TypeError, match="CalibrationResult"):
        RoiEditor(42)
