"""Two users in headless Chromium on the stock jupyterlab-chat UI, with the room rules on.

The stock UI has no reaction, reply or read-receipt widgets (noctis-rooms adds them to
the chat view, see test_browser_panel.py): here Bob's reaction and read receipt are
written over his own websocket connection and checked through the REST view; his
reply (with the quote) and the bot's study-link card are what Alice sees in the
stock UI. The ``lab`` server is the session one from conftest.py.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _ci import IN_CI
from rooms_client import STUDY_ALERT, STUDY_LINK, ChatClient, Server

from noctis_lab._browser import CHROMIUM, CHROMIUM_ARGS

ARGS = list(CHROMIUM_ARGS)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.slow,
    pytest.mark.skipif(  # in CI a missing chromium fails the test instead
        not CHROMIUM.exists() and not IN_CI,
        reason=f"Debian's chromium is not installed at {CHROMIUM}",
    ),
]


def _send(page: Any, text: str) -> Any:
    """Type ``text`` in the stock chat input and send it; returns the input box.

    The input keeps its text until the chat model (synced over the websocket) takes the
    message: on a busy machine the first Enter can come before that, so it is pressed again.
    """
    from playwright.sync_api import expect

    box = page.locator(".jp-chat-input-container textarea").first
    box.fill(text)
    box.press("Enter")
    for _ in range(5):
        if box.input_value() == "":
            break
        page.wait_for_timeout(2_000)
        if box.input_value() != "":
            box.press("Enter")
    expect(box).to_have_value("", timeout=10_000)
    return box


def _alice_writes_bob_reads(alice: Any, bob: Any, out: Path) -> bool:
    """Alice writes; markdown renders, HTML/script does not run. Returns whether the stock UI
    showed Alice a writing indicator while Bob typed."""
    from playwright.sync_api import expect

    _send(alice, 'Water HU on CT 1 is **+6.2** <img src=x onerror="window.__pwned=1">')
    for page in (alice, bob):
        expect(
            page.locator(".jp-chat-rendered-message", has_text="Water HU on CT 1")
        ).to_be_visible(timeout=30_000)
    assert bob.evaluate("window.__pwned === undefined")
    assert alice.evaluate("window.__pwned === undefined")
    expect(bob.locator(".jp-chat-rendered-message strong", has_text="+6.2")).to_be_visible()
    # Bob starts typing: Alice sees the writing indicator if the stock UI shows it
    bob.locator(".jp-chat-input-container textarea").first.type("On it", delay=50)
    typing_seen = bool(alice.locator(".jp-chat-writers").count() > 0)
    bob.screenshot(path=str(out / "bob_sees_alice.png"))
    bob.locator(".jp-chat-input-container textarea").first.fill("")
    return typing_seen


def _bob_reacts_reads_and_replies(lab: Server, alice: Any, mid: str) -> None:
    """Bob's reaction and read receipt over his own websocket, his reply over REST."""
    from playwright.sync_api import expect

    async def bob_reacts_and_reads() -> None:
        async with ChatClient(lab, "ward.chat", "bob") as b:
            b.react_and_read(mid)
            await asyncio.sleep(0.5)
            assert not b.rejected()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
        pool.submit(asyncio.run, bob_reacts_and_reads()).result(timeout=60)
    st, _ = lab.request(
        "POST",
        "/api/noctis/rooms/reply/ward.chat",
        "bob",
        {"reply_to": mid, "text": "Rescanning the phantom now."},
    )
    assert st == 201
    expect(
        alice.locator(".jp-chat-rendered-message", has_text="Rescanning the phantom now.")
    ).to_be_visible(timeout=20_000)
    expect(alice.locator(".jp-chat-rendered-message blockquote")).to_be_visible()
    view = lab.messages("ward.chat", "alice")
    assert view[mid]["reactions"] == {"👍": ["bob"]}
    assert "bob" in view[mid]["read_by"]


def _alice_opens_the_study(lab: Server, alice: Any, out: Path) -> None:
    """The QA bot posts a study link; Alice opens the study from the link in the stock UI."""
    from playwright.sync_api import expect

    st, _ = lab.system_message("ward.chat", "alice", STUDY_ALERT, STUDY_LINK)
    assert st == 201
    link = alice.locator(".jp-chat-rendered-message a", has_text="Open study")
    expect(link).to_be_visible(timeout=20_000)
    alice.screenshot(path=str(out / "alice_sees_reply_and_study_link.png"))
    if link.get_attribute("target") == "_blank":
        with alice.context.expect_page() as popup:
            link.click()
        study_page = popup.value
    else:
        link.click()
        study_page = alice
    expect(study_page.locator(".jp-NotebookPanel").first).to_be_visible(timeout=60_000)
    expect(study_page.locator(".lm-TabBar-tab", has_text="hu_qa.ipynb").first).to_be_visible()
    assert "notebooks/hu_qa.ipynb" in study_page.url
    study_page.screenshot(path=str(out / "alice_opened_study.png"))


def test_two_users_chat_in_the_browser(lab: Server, test_output: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = test_output / "rooms"
    out.mkdir(parents=True, exist_ok=True)
    assert (
        lab.request("POST", "/api/noctis/rooms", "alice", {"path": "ward.chat", "kind": "study"})[0]
        == 201
    )
    # a workspace of its own: the session's Lab server is shared with test_browser_panel.py
    url = f"{lab.base}/lab/workspaces/ward/tree/ward.chat?token="
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            alice = browser.new_context(viewport={"width": 1300, "height": 850}).new_page()
            bob = browser.new_context(viewport={"width": 1300, "height": 850}).new_page()
            alice.goto(url + lab.tokens["alice"])
            bob.goto(url + lab.tokens["bob"])
            for page in (alice, bob):
                page.locator(".jp-chat-input-container textarea").first.wait_for(timeout=60_000)
            typing_seen = _alice_writes_bob_reads(alice, bob, out)
            view = lab.messages("ward.chat", "bob").values()
            first = next(m for m in view if "Water HU" in m["body"])
            assert first["sender"] == "alice"
            _bob_reacts_reads_and_replies(lab, alice, first["id"])
            _alice_opens_the_study(lab, alice, out)
        finally:
            browser.close()
    # the stock frontend never tripped the server-side rules
    assert "refused update" not in lab.log(), lab.log()[-3000:]
    print(f"typing indicator element present: {typing_seen}")
