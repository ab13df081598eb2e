"""The ROI editor and the volume view in a real JupyterLab, in headless Chromium."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_KERNEL = "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"


def _mean_of(page: Any, key: str) -> str:
    return str(
        page.locator(f'.noctis-roi-table tr[data-key="{key}"] .noctis-roi-mean').inner_text()
    )


def _verdict_of(page: Any, key: str) -> str:
    return str(
        page.locator(f'.noctis-roi-table tr[data-key="{key}"] .noctis-roi-verdict').inner_text()
    )


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_roi_editor_and_volume_view_in_jupyterlab(
    lab_server: tuple[str, str], chromium_path: Path, test_output: Path
) -> None:
    from PIL import Image
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
                " && window.jupyterapp.shell.currentWidget.context.isReady"
                " && window.jupyterapp.shell.currentWidget.content.widgets.length > 5",
                timeout=60_000,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            # the ROI editor: its canvas with ROIs drawn, and its table
            page.wait_for_selector(".noctis-roi-canvas", timeout=60_000)
            page.wait_for_function(
                "() => { const c = document.querySelector('.noctis-roi-canvas');"
                " return c && c.dataset.rois"
                " && Object.keys(JSON.parse(c.dataset.rois)).length > 5 }",
                timeout=30_000,
            )
            # the kernel answers widget messages between cells: let the run finish first
            # (the last cell draws the trend), so the drag is not queued behind it
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-Cell .jp-InputArea-prompt')]"
                ".every(p => !p.innerText.includes('*'))"
                f" && {_KERNEL}?.status === 'idle'",
                timeout=90_000,
            )
            key = "CTP404/air_top"
            editor = page.locator(".noctis-roi-editor")
            editor.scroll_into_view_if_needed()
            assert page.locator(".noctis-roi-table tbody tr").count() >= 10
            mean0, verdict0 = _mean_of(page, key), _verdict_of(page, key)
            assert float(mean0) < -900 and verdict0.lower() == "pass"
            editor.screenshot(path=str(shots / "roi_editor_before.png"))

            # drag air_top 15 mm to the right with the mouse
            canvas = page.locator(".noctis-roi-canvas")
            box = canvas.bounding_box()
            assert box is not None
            geo = json.loads(canvas.get_attribute("data-rois") or "{}")
            width = page.evaluate("() => document.querySelector('.noctis-roi-canvas').width")
            css = box["width"] / width
            cx, cy, rad = geo[key]
            x0, y0 = box["x"] + cx * css, box["y"] + cy * css
            per_mm = rad / 3.5 * css  # the air ROI radius is 3.5 mm
            page.mouse.move(x0, y0)
            page.mouse.down()
            for step in range(1, 11):
                page.mouse.move(x0 + 1.5 * per_mm * step, y0)
                page.wait_for_timeout(30)
            page.mouse.up()
            page.wait_for_function(
                "([k, m]) => document.querySelector("
                '`.noctis-roi-table tr[data-key="${k}"] .noctis-roi-mean`)?.innerText !== m',
                arg=[key, mean0],
                timeout=30_000,
            )
            page.wait_for_function(
                "(k) => document.querySelector("
                '`.noctis-roi-table tr[data-key="${k}"] .noctis-roi-verdict`)?.innerText'
                ".toLowerCase() === 'fail'",
                arg=key,
                timeout=30_000,
            )
            assert float(_mean_of(page, key)) > -200
            assert page.locator(".noctis-roi-status").inner_text().lower() == "fail"
            editor.screenshot(path=str(shots / "roi_editor_after_drag.png"))

            # the volume view: NiiVue's WebGL canvas with non-blank pixels
            nv = page.locator("canvas:not(.noctis-roi-canvas)").first
            nv.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            png = nv.screenshot(path=str(shots / "volume_view.png"))
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int32)
            lit = int((pixels.sum(axis=2) > 60).sum())
            assert lit > 0.05 * pixels.shape[0] * pixels.shape[1], f"{lit} lit pixels"
            # the ROI overlay adds colour (verdict colours), not only grey CT
            rgb = pixels.reshape(-1, 3)
            assert int((np.ptp(rgb, axis=1) > 60).sum()) > 20, "no coloured ROI pixels"

            page.screenshot(path=str(shots / "hu_calibration_notebook.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
