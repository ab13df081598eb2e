"""One message view in headless Chromium: the chat view carries reactions, replies,
read receipts, study cards and message moderation; the Room panel beside it the room,
its members and the moderation log (it has no message list of its own).

Alice writes in the stock jupyterlab-chat input; Bob reacts and replies under her
message in the chat view; Alice's chat view shows the reaction, the reply with its
quote and Bob's read receipt, her panel Bob's presence; Alice moderates (mute in the
panel, delete in the chat view, the moderation log), sees an API error in the panel,
and opens a study from a study-link card. User text is shown literally (an HTML payload
does not run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rooms_client import STUDY_ALERT, STUDY_LINK, Server

from noctis_lab._browser import CHROMIUM_ARGS

ARGS = list(CHROMIUM_ARGS)
PANEL = "#noctis-rooms-panel"
ROOM = "panel.chat"
XSS = '<img src=x onerror="window.__pwned=1"> calibration notes'

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]


def _open_room(page: Any, lab: Server, user: str) -> Any:
    """Open the chat in Lab as ``user`` and show the Room panel; returns the panel."""
    from playwright.sync_api import expect

    # a workspace of its own: the session's Lab server is shared with test_rooms_browser.py
    page.goto(f"{lab.base}/lab/workspaces/panel-{user}/tree/{ROOM}?token={lab.tokens[user]}")
    page.locator(".jp-chat-input-container textarea").first.wait_for(timeout=60_000)
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="noctis-rooms-panel"]')
    tab.click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator(".noctis-rooms-meta")).to_contain_text("study · public", timeout=20_000)
    return panel


def _message(page: Any, text: str) -> Any:
    """The message holding ``text`` in the chat view (the first: replies quote it)."""
    return page.locator(".jp-chat-message", has_text=text).first


def _alice_writes(alice: Any) -> None:
    """Alice writes in the stock chat UI (one message with an HTML payload)."""
    box = alice.locator(".jp-chat-input-container textarea").first
    box.fill("Water HU on CT 1 is +6.2")
    box.press("Enter")
    box.fill(XSS)
    box.press("Enter")


def _bob_reacts_and_replies(bob: Any, b_panel: Any, out: Path) -> None:
    """Bob sees Alice's messages (the HTML one literally), reacts and replies in the chat."""
    from playwright.sync_api import expect

    first = _message(bob, "Water HU on CT 1")
    expect(first).to_be_visible(timeout=20_000)
    # user text is shown literally, never parsed as HTML
    expect(_message(bob, "calibration notes")).to_contain_text("calibration notes", timeout=20_000)
    assert bob.evaluate("window.__pwned === undefined")
    # one message list: the panel has none of its own
    expect(b_panel.locator(".noctis-rooms-message")).to_have_count(0)
    expect(b_panel.locator(".noctis-rooms-hint")).to_be_visible()
    # opening a public room made Bob a member: he reacts and replies in the chat
    expect(b_panel.locator(".noctis-rooms-meta")).to_contain_text("you: member")
    expect(b_panel.locator(".noctis-rooms-leave")).to_be_visible()
    first.locator(".noctis-rooms-react-add").click(timeout=20_000)
    first.locator('.noctis-rooms-pick[data-emoji="👍"]').click()
    chip = first.locator('.noctis-rooms-reaction[data-emoji="👍"]')
    expect(chip).to_have_text("👍 1", timeout=20_000)
    expect(chip).to_have_attribute("aria-pressed", "true")
    first.locator(".noctis-rooms-reply").click()
    reply_box = first.locator(".noctis-rooms-reply-input")
    expect(first.locator(".noctis-rooms-composer .noctis-rooms-quote")).to_contain_text(
        "Replying to Alice: Water HU on CT 1"
    )
    reply_box.fill("Rescanning the phantom now.")
    reply_box.press("Enter")
    expect(_message(bob, "Rescanning the phantom now.")).to_be_visible(timeout=20_000)
    expect(bob.locator(".noctis-rooms-composer")).to_have_count(0, timeout=20_000)
    bob.screenshot(path=str(out / "panel_bob_reacted_and_replied.png"))


def _alice_sees_reaction_reply_receipt(alice: Any, a_panel: Any, out: Path) -> Any:
    """Alice's chat view shows Bob's reaction, reply and read receipt; returns Bob's row."""
    from playwright.sync_api import expect

    a_first = _message(alice, "Water HU on CT 1")
    a_chip = a_first.locator('.noctis-rooms-reaction[data-emoji="👍"]')
    expect(a_chip).to_have_text("👍 1", timeout=20_000)
    expect(a_chip).to_have_attribute("data-users", "bob")
    expect(a_chip).to_have_attribute("aria-pressed", "false")
    reply = _message(alice, "Rescanning the phantom now.")
    expect(reply.locator(".noctis-rooms-preamble .noctis-rooms-quote")).to_have_text(
        "Alice: Water HU on CT 1 is +6.2", timeout=20_000
    )
    expect(reply.locator(".jp-chat-rendered-message")).to_contain_text(
        "Rescanning the phantom now."
    )
    expect(a_first.locator(".noctis-rooms-receipt")).to_have_text("Seen by Bob", timeout=20_000)
    # presence: Bob is online in Alice's member list, as a member
    bob_row = a_panel.locator('.noctis-rooms-member[data-username="bob"]')
    expect(bob_row).to_have_attribute("data-online", "true", timeout=20_000)
    expect(bob_row).to_contain_text("member")
    # Alice toggles her own reaction: on (2), then off (1)
    a_chip.click()
    expect(a_chip).to_have_text("👍 2", timeout=20_000)
    expect(a_chip).to_have_attribute("aria-pressed", "true")
    a_chip.click()
    expect(a_chip).to_have_text("👍 1", timeout=20_000)
    assert alice.evaluate("window.__pwned === undefined")
    alice.screenshot(path=str(out / "panel_alice_sees_reaction_reply_receipt.png"))
    return bob_row


def _alice_moderates(alice: Any, bob: Any, a_panel: Any, b_panel: Any, bob_row: Any) -> str:
    """Alice mutes Bob and deletes the HTML message; the log shows the mute. Returns its id."""
    from playwright.sync_api import expect

    bob_row.locator(".noctis-rooms-mute").click()
    expect(bob_row.locator(".noctis-rooms-muted")).to_be_visible(timeout=20_000)
    expect(b_panel.locator(".noctis-rooms-membership")).to_contain_text(
        "You are muted", timeout=20_000
    )
    expect(bob.locator(".noctis-rooms-reply")).to_have_count(0, timeout=20_000)
    xss_msg = _message(alice, "calibration notes")
    xss_id = xss_msg.locator(".noctis-rooms-footer").get_attribute("data-message-id")
    assert xss_id
    xss_msg.locator(".noctis-rooms-delete").click()
    alice.locator(".jp-Dialog .jp-mod-warn", has_text="Delete").click()
    deleted = alice.locator(
        ".jp-chat-message",
        has=alice.locator(f'.noctis-rooms-footer[data-message-id="{xss_id}"]'),
    )
    expect(deleted).to_contain_text("(message deleted)", timeout=20_000)
    expect(deleted).not_to_contain_text("calibration notes")
    a_panel.locator(".noctis-rooms-modlog summary").click()
    log = a_panel.locator(".noctis-rooms-modlog-entry")
    expect(log.filter(has_text="mute → bob")).to_have_count(1, timeout=20_000)
    # deleting one's own message is not a moderation action: not in the log
    expect(log.filter(has_text="delete_message")).to_have_count(0)
    # members do not see the moderation log
    expect(b_panel.locator(".noctis-rooms-modlog")).to_be_hidden()
    return str(xss_id)


def _panel_shows_an_api_error(a_panel: Any) -> None:
    """Inviting an unknown user: the panel shows the server's reason, dismissable."""
    from playwright.sync_api import expect

    invite = a_panel.locator(".noctis-rooms-invite-input")
    invite.fill("mallory")
    invite.press("Enter")
    error = a_panel.locator(".noctis-rooms-error")
    expect(error).to_be_visible(timeout=20_000)
    expect(error).to_contain_text("Invite failed")
    expect(error).to_contain_text("unknown user 'mallory'")
    error.locator(".noctis-rooms-error-dismiss").click()
    expect(error).to_be_hidden()


def _alice_opens_the_study(alice: Any, a_panel: Any, lab: Server, out: Path) -> None:
    """The QA bot posts a study link; Alice opens the study from the card in the chat."""
    from playwright.sync_api import expect

    st, _ = lab.system_message(ROOM, "alice", STUDY_ALERT, STUDY_LINK)
    assert st == 201
    card = _message(alice, STUDY_ALERT).locator(".noctis-rooms-card")
    expect(card.locator(".noctis-rooms-card-title")).to_have_text("ACR 464 on CT 1", timeout=20_000)
    expect(card).to_contain_text("Study UID 1.2.3.4")
    alice.screenshot(path=str(out / "panel_alice_moderation_and_study_card.png"))
    card.locator(".noctis-rooms-open-study").click()
    expect(alice.locator(".jp-NotebookPanel").first).to_be_visible(timeout=60_000)
    expect(
        alice.locator(".lm-TabBar-tab.lm-mod-current", has_text="hu_qa.ipynb").first
    ).to_be_visible()
    # the panel keeps following the open chat while the notebook is active
    expect(a_panel.locator(".noctis-rooms-title")).to_have_text("Ward QA")
    alice.screenshot(path=str(out / "panel_alice_opened_study.png"))


def test_room_panel_reactions_replies_receipts_moderation(
    lab: Server, chromium_path: Path, test_output: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    out = test_output / "rooms"
    out.mkdir(parents=True, exist_ok=True)
    st, _ = lab.request(
        "POST", "/api/noctis/rooms", "alice", {"path": ROOM, "kind": "study", "title": "Ward QA"}
    )
    assert st == 201
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_path), args=ARGS)
        try:
            alice = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            bob = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            a_panel = _open_room(alice, lab, "alice")
            expect(a_panel.locator(".noctis-rooms-meta")).to_contain_text("you: admin")
            expect(a_panel.locator(".noctis-rooms-title")).to_have_text("Ward QA")
            _alice_writes(alice)
            b_panel = _open_room(bob, lab, "bob")
            _bob_reacts_and_replies(bob, b_panel, out)
            bob_row = _alice_sees_reaction_reply_receipt(alice, a_panel, out)
            xss_id = _alice_moderates(alice, bob, a_panel, b_panel, bob_row)
            _panel_shows_an_api_error(a_panel)
            _alice_opens_the_study(alice, a_panel, lab, out)
        finally:
            browser.close()
    # the server-side view agrees with what the panels showed
    view = lab.messages(ROOM, "carol")
    water = next(m for m in view.values() if m["body"] == "Water HU on CT 1 is +6.2")
    assert water["reactions"] == {"👍": ["bob"]}
    assert "bob" in water["read_by"]
    assert view[xss_id]["deleted"] and view[xss_id]["body"] == ""
    assert "refused update" not in lab.log(), lab.log()[-3000:]
