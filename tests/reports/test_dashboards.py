"""Dashboards: empty states in-process, and real Voila pages in headless Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _servers import running

from noctis_lab._browser import CHROMIUM_ARGS
from noctis_lab._errors import ReportError
from noctis_lab.reports._dashboard_data import EMPTY_AI, EMPTY_HU, hu_slice_figure
from noctis_lab.reports._panels import safe_call
from noctis_lab.reports._records_badge import ChainState, records_badge
from noctis_lab.reports._voila import VoilaServer, start_voila, voila_command

ARGS = list(CHROMIUM_ARGS)


def test_empty_stores_show_empty_state(noctis_home: Path) -> None:
    from noctis_lab.reports import ai_dashboard, hu_dashboard

    hu = hu_dashboard()
    assert EMPTY_HU[:40] in hu.message.value and "noctis-msg-empty" in hu.message.value
    ai = ai_dashboard()
    assert EMPTY_AI[:40] in ai.message.value
    assert not (noctis_home / "data" / "noctis.db").exists()


def test_broken_record_is_a_message(store_home: Path) -> None:
    from noctis_lab.hu.history import CalibrationHistory

    history = CalibrationHistory()
    rec = history.latest(str(history.scanners(drift=False)["scanner"].iloc[0]))
    broken = type(rec)(**{**rec.__dict__, "source": str(store_home / "gone")})
    with pytest.raises(ReportError, match=r"images of calibration #\d+ are not available"):
        hu_slice_figure(broken)
    value, err = safe_call(lambda: hu_slice_figure(broken), "annotated slice")
    assert value is None and err is not None and "not available" in err
    value, err = safe_call(lambda: 1 / 0, "panel")
    assert err == "panel could not be shown (ZeroDivisionError: division by zero)"


def test_voila_command_is_loopback_with_token(tmp_path: Path) -> None:
    cmd = voila_command(tmp_path, port=1234, preheat=True, pool_size=2)
    assert "--Voila.ip=127.0.0.1" in cmd
    assert "--show_tracebacks=False" in cmd and "--pool_size=2" in cmd
    assert not any("token" in part for part in cmd)  # never on the command line


RELATIVE = "series-rel/ct-onc-1/2026-11-24"


def _record_relative(home: Path) -> None:
    """One more calibration of CT-ONC-1, recorded with a source relative to the home.

    As ``make demo`` records ``data/demo/...``: the dashboard's kernel runs in another
    folder and must still find the images.
    """
    import os
    from dataclasses import replace

    from noctis_lab.hu import analyze
    from noctis_lab.hu._demo_set import demo_plan
    from noctis_lab.hu.history import CalibrationHistory
    from noctis_lab.hu.synthetic import generate, write

    plan = next(p for p in demo_plan() if p["slug"] == "ct-onc-1" and p["phantom"] == "catphan604")
    kwargs = {
        **plan["kwargs"],
        "seed": 4242,
        "acquisition_datetime": "2026-11-24T07:30:00",
        "scanner": replace(plan["kwargs"]["scanner"]),
    }
    write(generate("catphan604", **kwargs), home / RELATIVE, overwrite=True)
    cwd = Path.cwd()
    os.chdir(home)
    try:
        result = analyze(Path(RELATIVE), phantom="catphan604", profile="seed")
    finally:
        os.chdir(cwd)
    assert result.source == RELATIVE
    with CalibrationHistory(f"sqlite:///{home / 'data' / 'noctis.db'}") as history:
        history.record(result, operator="test")


@pytest.fixture(scope="module")
def voila(
    store: tuple[Path, dict[str, object]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VoilaServer, Path]]:
    import os

    src, _ = store
    home = tmp_path_factory.mktemp("voila-home")
    shutil.copytree(src / "data", home / "data")
    shutil.copytree(src / "mlflow", home / "mlflow")
    _record_relative(home)
    env = dict(os.environ, NOCTIS_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("NOCTIS_DB_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    server = start_voila(env=env, log=home / "voila.log")  # the default: no preheat pool
    try:
        yield server, home
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium_path), args=ARGS)
        yield b
        b.close()


@pytest.mark.browser
@pytest.mark.server
def test_voila_needs_the_token(voila: tuple[VoilaServer, Path]) -> None:
    import urllib.error
    import urllib.request

    server, _ = voila
    for query in ("", "?token=wrong"):
        url = f"{server.base_url}/voila/render/hu_dashboard.ipynb{query}"
        with urllib.request.urlopen(url, timeout=60) as r:
            assert "/login" in r.url  # sent to the login page, not the dashboard
            assert "hu_dashboard" not in r.read().decode().split("next=")[0]
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{server.base_url}/api/kernels", timeout=10)


def _click_scanner(page: Any, select: Any, label: str, out: Path) -> None:
    """Click a scanner's row: caption, slice (no warning), trend and drop-down follow."""
    old = page.locator(".noctis-hu-slice img").first.get_attribute("src")
    station = label.split(" — ")[0]
    page.locator(".noctis-scanner-row", has_text=station).click()
    page.wait_for_function(
        "k => document.querySelector('.noctis-hu-caption').innerText.includes(k)",
        arg=label,
        timeout=60_000,
    )
    page.wait_for_function(
        "s => { const i = document.querySelector('.noctis-hu-slice img');"
        " return i && i.src !== s; }",
        arg=old,
        timeout=60_000,
    )
    assert page.locator(".noctis-hu-slice .noctis-msg-error").count() == 0
    assert "not available" not in page.inner_text(".noctis-hu-slice")
    assert label in page.inner_text(".noctis-hu-trend")
    assert select.input_value() == label  # the drop-down follows the click
    page.screenshot(path=str(out / f"hu_dashboard_{station}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.server
def test_hu_dashboard_in_chromium(
    voila: tuple[VoilaServer, Path], browser: object, test_output: Path
) -> None:
    from noctis_lab.hu.history import CalibrationHistory
    from noctis_lab.reports._dashboard_data import hu_overview_frame
    from noctis_lab.reports._panels import status_text

    server, home = voila
    out = test_output / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    # The first view must come up as it is, without a reload (a stalled pre-run kernel left
    # it at "Running ..." when the pool was on)
    page.goto(server.url("hu_dashboard.ipynb"), timeout=300_000, wait_until="commit")
    try:
        page.wait_for_selector(".noctis-hu-slice img", timeout=240_000)
    finally:
        page.screenshot(path=str(out / "hu_dashboard_first.png"), full_page=True)
    # the record-chain badge: what noctis_lab.records.verify says of the same database
    expected = records_badge(f"sqlite:///{home / 'data' / 'noctis.db'}")
    assert expected.state is ChainState.INTACT and expected.records > 0
    shown = page.inner_text(".noctis-hu-dashboard .noctis-records-badge")
    assert shown.strip() == f"✔ {expected.text}", shown
    history = CalibrationHistory(f"sqlite:///{home / 'data' / 'noctis.db'}")
    frame = hu_overview_frame(history)
    labels = dict(zip(frame["Key"], frame["Scanner"], strict=True))
    assert page.locator(".noctis-scanner-row").count() == len(labels)
    table = page.inner_text(".noctis-hu-overview")
    for key, status in zip(frame["Key"], frame["Status"], strict=True):
        station, _, model = labels[key].partition(" — ")
        assert station in table and model in table and status_text(status) in table
        assert key not in table  # station names, not keys
    # the dropdown names the scanners as the table does
    select = page.locator(".noctis-hu-trend select").first
    options = [o.replace("\xa0", " ") for o in select.locator("option").all_inner_texts()]
    assert sorted(options) == sorted(labels.values())
    assert page.locator(".noctis-hu-trend img").count() >= 1
    assert "Traceback" not in page.content()
    # CT-ONC-1's latest calibration was recorded with a source relative to the home
    # (data/demo/... in the demo): its annotated slice shows, with no warning
    onc = next(k for k, v in labels.items() if v.startswith("CT-ONC-1"))
    assert history.latest(onc).source == RELATIVE
    other = next(k for k in labels if k != onc)
    for key in (onc, other):  # a click on a scanner row opens it
        _click_scanner(page, select, labels[key], out)
    # a broken record (its images gone) is a message in its panel, after Refresh
    rec = history.latest(other)
    moved = Path(rec.source).with_name(Path(rec.source).name + ".moved")
    Path(rec.source).rename(moved)
    try:
        page.click(".noctis-refresh")
        page.wait_for_function(
            "() => document.querySelector('.noctis-hu-slice').innerText.includes('not available')",
            timeout=60_000,
        )
        assert page.locator(".noctis-hu-slice .noctis-msg-error").count() == 1
        assert "(refresh #2)" in page.inner_text(".noctis-stamp")
        assert "Traceback" not in page.content()
        page.screenshot(path=str(out / "hu_dashboard_broken_record.png"), full_page=True)
    finally:
        moved.rename(rec.source)
    page.close()


@pytest.mark.browser
@pytest.mark.server
def test_dashboards_work_offline(
    voila: tuple[VoilaServer, Path], browser: object, test_output: Path
) -> None:
    """With every request off the machine blocked, the pages are whole and nothing fails."""
    from urllib.parse import urlparse

    server, _ = voila
    out = test_output / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    ready = {
        "hu_dashboard.ipynb": ".noctis-hu-slice img",
        "ai_dashboard.ipynb": ".noctis-ai-trend img",
    }
    for notebook, selector in ready.items():
        outside: list[str] = []
        failed: list[str] = []
        context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]

        def route(r: object, outside: list[str] = outside) -> None:
            url = r.request.url  # type: ignore[attr-defined]
            host = urlparse(url).hostname
            if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                r.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(url)
                r.abort()  # type: ignore[attr-defined]

        context.route("**/*", route)
        page = context.new_page()
        page.on("requestfailed", lambda r, failed=failed: failed.append(r.url))
        page.goto(server.url(notebook), timeout=300_000, wait_until="commit")
        page.wait_for_selector(selector, timeout=300_000)
        page.wait_for_load_state("networkidle", timeout=60_000)
        page.screenshot(path=str(out / f"offline_{notebook[:-6]}.png"), full_page=True)
        assert outside == [], f"{notebook} asked for {outside}"
        assert failed == [], f"{notebook}: failed requests {failed}"
        assert "Traceback" not in page.content()
        context.close()


@pytest.mark.browser
@pytest.mark.server
def test_ai_dashboard_feedback_in_chromium(
    voila: tuple[VoilaServer, Path], browser: object, test_output: Path
) -> None:
    from noctis_lab.ai import analyses_frame, feedback_summary, model_status

    server, home = voila
    db = f"sqlite:///{home / 'data' / 'noctis.db'}"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.goto(server.url("ai_dashboard.ipynb"), timeout=300_000, wait_until="commit")
    page.wait_for_selector(".noctis-ai-overview table", timeout=180_000)
    page.wait_for_selector(".noctis-ai-trend img", timeout=180_000)
    assert "chain intact" in page.inner_text(".noctis-ai-dashboard .noctis-records-badge")
    model = page.locator(".noctis-ai-model select").input_value()
    status = model_status(
        model, tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}", db_url=db
    )
    table = page.inner_text(".noctis-ai-overview table")
    assert model in table and status.status in table
    metrics = page.inner_text(".noctis-ai-metrics")
    for name in status.metrics:
        assert name in metrics
    before = feedback_summary(model, db_url=db)
    page.fill(".noctis-fb-comment textarea", "Looks right <b>to me</b>")
    page.fill(".noctis-fb-user input", "Dr Test")
    page.locator(".noctis-fb-verdict select").select_option(label="false negative")
    page.click(".noctis-fb-submit")
    page.wait_for_selector(".noctis-fb-result .noctis-msg-info", timeout=60_000)
    assert "is stored" in page.inner_text(".noctis-fb-result")
    after = feedback_summary(model, db_url=db)
    assert after.n == before.n + 1
    assert after.counts["false_negative"] == before.counts["false_negative"] + 1
    assert len(analyses_frame(model, db_url=db)) > 0
    out = test_output / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "ai_dashboard.png"), full_page=True)
    assert "Traceback" not in page.content()
    page.close()


def _blocked_outside(context: Any, outside: list[str]) -> None:
    """Abort, and note, every request that leaves the machine."""
    from urllib.parse import urlparse

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in (
            "127.0.0.1",
            "localhost",
        ):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)


@contextmanager
def _single_user_lab(root: Path, home: Path, tmp: Path) -> Iterator[tuple[str, str]]:
    """The real `noctis-lab lab` (one user, token from a 0600 file); yields (base URL, token)."""
    import os
    import signal
    import sys

    from noctis_lab.reports._voila import free_port

    token_file = tmp / "token"
    token_file.write_text("t-" + os.urandom(12).hex())
    token_file.chmod(0o600)
    token, port = token_file.read_text(), free_port()
    exe = Path(sys.executable).with_name("noctis-lab")
    argv = ["lab", "--root", str(root), "--port", str(port), "--no-browser"]
    base = f"http://127.0.0.1:{port}"
    with running(
        [str(exe), *argv, "--token-file", str(token_file)],
        url=f"{base}/api/status?token={token}",
        log=tmp / "lab.log",
        env=dict(os.environ, NOCTIS_HOME=str(home)),
        timeout=120,
        # Ctrl-C, as a user stops it: noctis-lab lab then stops its jupyter-lab (on
        # SIGTERM it would exit and leave the server running)
        stop_signal=signal.SIGINT,
    ):
        yield base, token


@pytest.mark.browser
@pytest.mark.server
def test_voila_inside_the_single_user_lab_is_offline(
    store_home: Path, repo_root: Path, browser: object, tmp_path: Path, test_output: Path
) -> None:
    """`noctis-lab lab` (one user): /voila/render/... uses our template, nothing from outside."""
    root = tmp_path / "lab-root"
    shutil.copytree(repo_root / "notebooks" / "dashboards", root / "notebooks" / "dashboards")
    out = test_output / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    with _single_user_lab(root, store_home, tmp_path) as (base, token):
        outside: list[str] = []
        failed: list[str] = []
        context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        _blocked_outside(context, outside)
        page = context.new_page()
        page.on("requestfailed", lambda r: failed.append(r.url))
        url = f"{base}/voila/render/notebooks/dashboards/hu_dashboard.ipynb?token={token}"
        page.goto(url, timeout=300_000, wait_until="commit")
        try:
            page.wait_for_selector(".noctis-hu-slice img", timeout=240_000)
        finally:
            page.screenshot(path=str(out / "lab_voila_offline.png"), full_page=True)
        assert "cdn.jsdelivr.net" not in page.content()  # our template, not Voila's lab one
        assert outside == [] and failed == [], (outside, failed)
        assert "chain intact" in page.inner_text(".noctis-records-badge")
        context.close()
