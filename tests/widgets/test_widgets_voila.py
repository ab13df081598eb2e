"""The HU calibration notebook served by real Voila, driven in headless Chromium (issue #5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _widget_browser import (
    CHROMIUM_ARGS,
    drag_roi,
    lit_and_coloured,
    roi_cell,
    wait_for_roi_editor,
    wait_for_row_change,
)


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_roi_editor_and_volume_view_in_voila(
    voila_server: Any, chromium_path: Path, test_output: Path
) -> None:
    from playwright.sync_api import sync_playwright

    shots = test_output / "widgets"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(voila_server.url("hu_calibration.ipynb"))
            # Voila runs the whole notebook before the widgets are rendered, so once the
            # ROI editor shows its ROIs the kernel is free to answer the drag
            wait_for_roi_editor(page, timeout_ms=90_000)
            key = "CTP404/air_top"
            editor = page.locator(".noctis-roi-editor")
            editor.scroll_into_view_if_needed()
            assert page.locator(".noctis-roi-table tbody tr").count() >= 10
            mean0, verdict0 = roi_cell(page, key, "mean"), roi_cell(page, key, "verdict")
            assert float(mean0) < -900 and verdict0.lower() == "pass"
            editor.screenshot(path=str(shots / "voila_roi_editor_before.png"))

            # drag air_top 15 mm to the right with the mouse: its row follows (mean, verdict)
            drag_roi(page, key, 15.0, 3.5)
            wait_for_row_change(page, key, mean0, "fail")
            assert float(roi_cell(page, key, "mean")) > -200
            assert page.locator(".noctis-roi-status").inner_text().lower() == "fail"
            editor.screenshot(path=str(shots / "voila_roi_editor_after_drag.png"))

            # the volume view: NiiVue's WebGL canvas with non-blank pixels and ROI colours
            nv = page.locator("canvas:not(.noctis-roi-canvas)").first
            nv.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            lit, coloured = lit_and_coloured(nv.screenshot(path=str(shots / "voila_volume.png")))
            assert lit > 0.05, f"{lit:.1%} lit pixels"
            assert coloured > 20, "no coloured ROI pixels"

            page.screenshot(path=str(shots / "voila_hu_calibration.png"), full_page=True)
            text = page.inner_text("body")
            assert "Traceback" not in text
            assert "error when executing" not in text.lower()
            assert not errors, errors
        finally:
            browser.close()
