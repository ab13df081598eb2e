"""The HU calibration notebook served by real Voila, driven in headless Chromium (issue #5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _widget_browser import (
    CHROMIUM_ARGS,
    check_drag_changes_verdict,
    check_volume_view,
    wait_for_roi_editor,
)


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(420)
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
            # Voila streams the page while it runs the whole notebook (slow on a busy
            # machine); once the ROI editor shows its ROIs the kernel is free to answer
            page.goto(
                voila_server.url("hu_calibration.ipynb"), wait_until="commit", timeout=300_000
            )
            wait_for_roi_editor(page, timeout_ms=300_000)
            check_drag_changes_verdict(page, shots, "voila_roi_editor")
            check_volume_view(page, shots, "voila_volume.png")

            page.screenshot(path=str(shots / "voila_hu_calibration.png"), full_page=True)
            text = page.inner_text("body")
            assert "Traceback" not in text
            assert "error when executing" not in text.lower()
            assert not errors, errors
        finally:
            browser.close()
