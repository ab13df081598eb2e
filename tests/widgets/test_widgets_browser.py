"""The ROI editor and the volume view in a real JupyterLab, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from _widget_browser import (
    CHROMIUM_ARGS,
    check_drag_changes_verdict,
    check_volume_view,
    wait_for_roi_editor,
)

# Optional chaining throughout: until JupyterLab has started, window.jupyterapp is
# undefined, and a predicate that throws ends Playwright's wait at once.
_KERNEL = "window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel"


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_roi_editor_and_volume_view_in_jupyterlab(
    lab_server: tuple[str, str], chromium_path: Path, test_output: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token = lab_server
    shots = test_output / "widgets"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/lab/tree/notebooks/hu_calibration.ipynb?token={token}")
            page.wait_for_function(
                f"() => {_KERNEL}?.status === 'idle'"
                " && window.jupyterapp?.shell?.currentWidget?.context?.isReady"
                " && window.jupyterapp?.shell?.currentWidget?.content?.widgets?.length > 5",
                timeout=60_000,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            # the ROI editor: its canvas with ROIs drawn, and its table
            wait_for_roi_editor(page)
            # the kernel answers widget messages between cells: let the run finish first
            # (the last cell draws the trend), so the drag is not queued behind it
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Cell .jp-InputArea-prompt')]"
                ".every(p => !p.innerText.includes('*'))"
                f" && {_KERNEL}?.status === 'idle'",
                timeout=90_000,
            )
            check_drag_changes_verdict(page, shots, "roi_editor")
            check_volume_view(page, shots, "volume_view.png")

            page.screenshot(path=str(shots / "hu_calibration_notebook.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
