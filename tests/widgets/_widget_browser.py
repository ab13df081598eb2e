"""Chromium helpers shared by the widget browser tests (JupyterLab and Voila)."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from noctis_lab._browser import CHROMIUM_ARGS as _ARGS

#: Headless Chromium flags of every browser test (one place: noctis_lab._browser).
CHROMIUM_ARGS = list(_ARGS)


def roi_cell(page: Any, key: str, cell: str) -> str:
    """Text of one cell (``mean``, ``verdict``...) of ROI ``key``'s row in the editor table."""
    return str(
        page.locator(f'.noctis-roi-table tr[data-key="{key}"] .noctis-roi-{cell}').inner_text()
    )


def wait_for_roi_editor(page: Any, minimum: int = 5, timeout_ms: int = 60_000) -> None:
    """Wait until the ROI editor's canvas has drawn more than ``minimum`` ROIs."""
    page.wait_for_selector(".noctis-roi-canvas", timeout=timeout_ms)
    page.wait_for_function(
        "(n) => { const c = document.querySelector('.noctis-roi-canvas');"
        " return c && c.dataset.rois && Object.keys(JSON.parse(c.dataset.rois)).length > n }",
        arg=minimum,
        timeout=timeout_ms,
    )


def drag_roi(page: Any, key: str, dx_mm: float, radius_mm: float) -> None:
    """Drag ROI ``key`` ``dx_mm`` to the right with the mouse, in ten steps.

    The canvas publishes each ROI's ``[cx, cy, r]`` in canvas pixels (``data-rois``);
    ``radius_mm`` (the ROI's radius) gives the scale.
    """
    canvas = page.locator(".noctis-roi-canvas")
    box = canvas.bounding_box()
    assert box is not None
    geo = json.loads(canvas.get_attribute("data-rois") or "{}")
    width = page.evaluate("() => document.querySelector('.noctis-roi-canvas').width")
    css = box["width"] / width
    cx, cy, rad = geo[key]
    x0, y0 = box["x"] + cx * css, box["y"] + cy * css
    per_mm = rad / radius_mm * css
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x0 + dx_mm / 10 * per_mm * step, y0)
        page.wait_for_timeout(30)
    page.mouse.up()


def wait_for_row_change(page: Any, key: str, mean_before: str, verdict: str) -> None:
    """Wait until ROI ``key``'s mean differs from ``mean_before`` and its verdict is ``verdict``."""
    page.wait_for_function(
        "([k, m]) => document.querySelector("
        '`.noctis-roi-table tr[data-key="${k}"] .noctis-roi-mean`)?.innerText !== m',
        arg=[key, mean_before],
        timeout=30_000,
    )
    page.wait_for_function(
        "([k, v]) => document.querySelector("
        '`.noctis-roi-table tr[data-key="${k}"] .noctis-roi-verdict`)?.innerText'
        ".toLowerCase() === v",
        arg=[key, verdict],
        timeout=30_000,
    )


def lit_and_coloured(png: bytes) -> tuple[float, int]:
    """Share of non-dark pixels and number of strongly coloured pixels of a screenshot."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int32)
    lit = float((pixels.sum(axis=2) > 60).mean())
    coloured = int((np.ptp(pixels.reshape(-1, 3), axis=1) > 60).sum())
    return lit, coloured


def check_drag_changes_verdict(page: Any, shots: Any, prefix: str) -> None:
    """Drag air_top 15 mm off its insert with the mouse; its row and the status turn fail.

    The same scenario in JupyterLab and in Voila (screenshots ``<prefix>_before/after``).
    """
    key = "CTP404/air_top"
    page.set_viewport_size({"width": 1400, "height": 1100})
    editor = page.locator(".noctis-roi-editor")
    editor.scroll_into_view_if_needed()
    assert page.locator(".noctis-roi-table tbody tr").count() >= 10
    assert not clipped_cells(page), clipped_cells(page)
    mean0, verdict0 = roi_cell(page, key, "mean"), roi_cell(page, key, "verdict")
    assert float(mean0) < -900 and verdict0.lower() == "pass"
    editor.screenshot(path=str(shots / f"{prefix}_before.png"))

    # the air ROI radius is 3.5 mm: grab it at its centre
    drag_roi(page, key, 15.0, 3.5)
    wait_for_row_change(page, key, mean0, "fail")
    assert float(roi_cell(page, key, "mean")) > -200
    assert page.locator(".noctis-roi-status").inner_text().lower() == "fail"
    editor.screenshot(path=str(shots / f"{prefix}_after_drag.png"))


def clipped_cells(page: Any) -> list[str]:
    """Cells of the ROI table that stick out of the editor's right column or the window."""
    return list(
        page.evaluate(
            """() => {
          const box = document.querySelector('.noctis-roi-right').getBoundingClientRect();
          const right = Math.min(box.right, window.innerWidth) + 1;
          return [...document.querySelectorAll('.noctis-roi-table th, .noctis-roi-table td')]
            .filter((c) => c.getBoundingClientRect().right > right)
            .map((c) => c.innerText);
        }"""
        )
    )


def check_volume_view(page: Any, shots: Any, name: str) -> None:
    """NiiVue's WebGL canvas shows non-blank pixels and the coloured ROI overlay."""
    nv = page.locator("canvas:not(.noctis-roi-canvas)").first
    nv.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    lit, coloured = lit_and_coloured(nv.screenshot(path=str(shots / name)))
    assert lit > 0.05, f"{lit:.1%} lit pixels"
    # the ROI overlay adds colour (verdict colours), not only grey CT
    assert coloured > 20, "no coloured ROI pixels"
