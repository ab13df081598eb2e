"""Time to first full render of each Voila dashboard in headless Chromium: a cold kernel per
view (`--preheat_kernel=False`) against preheated kernels (`--preheat_kernel=True
--pool_size=1`). Prints seconds and the ratio cold / preheated (goal: preheated < 3 s).

"Full render": the overview table and the first figure are in the page.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report_store import bench_home

from noctis_lab._browser import CHROMIUM, CHROMIUM_ARGS

ARGS = list(CHROMIUM_ARGS)
READY = {
    "hu_dashboard.ipynb": (".noctis-hu-overview table", ".noctis-hu-slice img"),
    "ai_dashboard.ipynb": (".noctis-ai-overview table", ".noctis-ai-trend img"),
}
VIEWS = int(os.environ.get("BENCH_VIEWS", "3"))


def _render(browser: object, url: str, selectors: tuple[str, ...]) -> float:
    page = browser.new_page()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=300_000)
    for sel in selectors:
        page.wait_for_selector(sel, timeout=300_000)
    dt = time.perf_counter() - t0
    page.close()
    return dt


def _wait_pool(log: Path, n: int, timeout: float = 300) -> None:
    """Wait until every pool kernel has finished executing its notebook."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count("is filled with") >= n:
            break
        time.sleep(0.5)
    time.sleep(float(os.environ.get("BENCH_PREHEAT_SETTLE", "20")))


def main() -> None:
    from playwright.sync_api import sync_playwright

    from noctis_lab.reports import start_voila

    home = bench_home()
    env = dict(os.environ, NOCTIS_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    results: dict[tuple[str, str], list[float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for mode, preheat in (("cold", False), ("preheated", True)):
            log = home / f"voila-bench-{mode}.log"
            log.unlink(missing_ok=True)
            server = start_voila(preheat=preheat, pool_size=1, env=env, log=log)
            try:
                for nb, sels in READY.items():
                    times = []
                    for _ in range(VIEWS):
                        if preheat:
                            _wait_pool(log, len(READY))
                        times.append(_render(browser, server.url(nb), sels))
                    results[(nb, mode)] = times
            finally:
                server.stop()
        browser.close()
    print(f"\nfirst full render in Chromium, seconds (median of {VIEWS} views; store {home})")
    print(f"{'dashboard':<22}{'cold':>8}{'preheated':>11}{'ratio':>8}")
    for nb in READY:
        cold = statistics.median(results[(nb, "cold")])
        warm = statistics.median(results[(nb, "preheated")])
        goal = "met" if warm < 3 else "NOT met"
        print(f"{nb:<22}{cold:8.2f}{warm:11.2f}{cold / warm:8.2f}   (< 3 s preheated: {goal})")


if __name__ == "__main__":
    main()
