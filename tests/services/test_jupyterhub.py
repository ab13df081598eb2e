"""The documented JupyterHub configuration (docs/jupyterhub/jupyterhub_config.py), for real.

Needs a JupyterHub installation that can also import Noctis Lab's packages, and
configurable-http-proxy; neither is part of the project's requirements. Make a throwaway one
with ``sh docs/jupyterhub/make_test_env.sh`` and export the two lines it prints
(``NOCTIS_JUPYTERHUB``, ``NOCTIS_CHP``); otherwise these tests skip and say so.

The Hub loads the documented file, then swaps only what a test cannot have: PAM → the
DummyAuthenticator, system accounts → SimpleLocalProcessSpawner (every server runs as
this user, homes in a tmp dir), a free loopback port. Everything else is the file's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _ci import missing_real_part
from _servers import free_port, wait_until

pytestmark = pytest.mark.server

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "jupyterhub" / "jupyterhub_config.py"
HOW = "make one with `sh docs/jupyterhub/make_test_env.sh` and export the lines it prints"


def _find(env: str, name: str) -> Path | None:
    given = os.environ.get(env)
    if given:
        return Path(given) if Path(given).is_file() else None
    found = shutil.which(name)
    return Path(found) if found else None


@dataclass(frozen=True)
class Hub:
    url: str
    token: str
    root: Path
    db_url: str
    tracking_uri: str

    @property
    def log(self) -> Path:
        """The Hub's log (its own output and its servers' and services')."""
        return self.root / "hub.log"

    def api(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {token or self.token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
        return json.loads(text) if text else None


def _hub_installation() -> tuple[Path, Path]:
    """The throwaway Hub's ``jupyterhub`` and ``configurable-http-proxy`` (a missing real part
    otherwise: skip, or fail in CI)."""
    jupyterhub = _find("NOCTIS_JUPYTERHUB", "jupyterhub")
    chp = _find("NOCTIS_CHP", "configurable-http-proxy")
    if jupyterhub is None:
        missing_real_part(f"no JupyterHub installation (NOCTIS_JUPYTERHUB or PATH): {HOW}")
    if chp is None:
        missing_real_part(f"no configurable-http-proxy (NOCTIS_CHP or PATH): {HOW}")
    python = jupyterhub.parent / "python"
    probe = subprocess.run(
        [str(python), "-c", "import noctis_rooms, jupyter_server_ydoc, jupyterlab"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        missing_real_part(f"{python} cannot import noctis_rooms/jupyterlab/collaboration: {HOW}")
    return jupyterhub, chp


def _write_config(root: Path, chp: Path, token: str) -> Path:
    """The documented configuration, with what a test cannot have swapped (module doc)."""
    extra_args = ["--allow-root"] if os.geteuid() == 0 else []
    jupyter_dirs = {
        "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),
        "JUPYTER_CONFIG_PATH": str(Path(sys.prefix) / "etc" / "jupyter"),
        "JUPYTERLAB_DIR": str(Path(sys.prefix) / "share" / "jupyter" / "lab"),
    }
    config = root / "jupyterhub_config.py"
    config.write_text(
        f"""
load_subconfig({str(CONFIG)!r})
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_groups = set()
c.Authenticator.allowed_users = {{"alice", "bob", "qa-team"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(root / "home" / "{username}")!r}
c.Spawner.args = c.Spawner.args + {extra_args!r}
c.ConfigurableHTTPProxy.command = [{str(chp)!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.hub_port = {free_port()}
for _service in c.JupyterHub.services:
    _service["command"] = _service["command"] + {extra_args!r}
    # the throwaway Hub venv sees the project's packages (.pth) but not its data and config
    # folders (lab extensions: jupyterlab-chat, noctis_rooms): name them
    _service["environment"].update({jupyter_dirs!r})
c.JupyterHub.services = c.JupyterHub.services + [{{"name": "noctis-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = c.JupyterHub.load_roles + [
    {{"name": "noctis-test", "scopes": ["admin:users", "admin:servers", "admin:server_state",
      "tokens", "read:roles", "groups", "read:services"], "services": ["noctis-test"]}}
]
"""
    )
    return config


def _hub_environment(info: Hub, singleuser: Path) -> dict[str, str]:
    """What the documented configuration reads from the environment, for this test's Hub."""
    return {
        **os.environ,
        "NOCTIS_HUB_STATE": str(info.root / "state"),
        "NOCTIS_HUB_BIND_URL": info.url,
        "NOCTIS_HUB_ADMINS": "alice",
        "NOCTIS_HUB_COLLABORATIONS": json.dumps({"qa-team": ["alice", "bob"]}),
        "NOCTIS_HUB_SINGLEUSER": str(singleuser),
        "NOCTIS_HOME": str(info.root),
        "NOCTIS_DB_URL": info.db_url,
        "MLFLOW_TRACKING_URI": info.tracking_uri,
        # the rooms service: its own root; no account switch (everything runs as this user)
        "NOCTIS_ROOMS_ROOT": str(info.root / "rooms"),
        "NOCTIS_ROOMS_ACCOUNT": "",
        "NOCTIS_ROOMS_PORT": str(free_port()),
    }


def _stop_hub(proc: subprocess.Popen[bytes], root: Path) -> list[str]:
    """Stop the Hub as a service manager does (SIGTERM: it stops its servers, services and
    proxy), then anything left in ``root`` (servers and services run in sessions of their
    own). Returns what the Hub did not stop by itself within 30 s (killed here)."""
    left = []
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        left.append("jupyterhub itself")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in _pids_under(root):
        with contextlib.suppress(OSError):
            left.append(
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200].decode()
            )
    _stop_processes_under(root)
    return left


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    jupyterhub, chp = _hub_installation()
    root = Path(tempfile.mkdtemp(prefix="noctis-hub-"))
    (root / "state").mkdir(mode=0o700)
    (root / "rooms").mkdir(mode=0o700)
    token = os.urandom(24).hex()
    info = Hub(
        f"http://127.0.0.1:{free_port()}",
        token,
        root,
        f"sqlite:///{root / 'noctis.db'}",
        f"http://127.0.0.1:{free_port()}",
    )
    config = _write_config(root, chp, token)
    with open(info.log, "wb") as out:
        proc = subprocess.Popen(
            [str(jupyterhub), "-f", str(config)],
            cwd=root,
            env=_hub_environment(info, jupyterhub.parent / "jupyterhub-singleuser"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            "the Hub answering",
            lambda: info.api("GET", "/hub/api/"),
            timeout=90,
            proc=proc,
            log=info.log,
        )
        yield info
    finally:
        left = _stop_hub(proc, root)
        shutil.rmtree(root, ignore_errors=True)
    # the deployment stops cleanly: the rooms service exits on the Hub's SIGINT (it hung
    # until killed, 40 s of teardown, before noctis_rooms made SIGINT a clean stop)
    assert not left, f"left running after the Hub stopped: {left}"


def _pids_under(root: Path) -> list[int]:
    """The processes whose working folder is ``root`` or below it (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == root or root in cwd.parents:
            pids.append(int(entry.name))
    return pids


def _stop_processes_under(root: Path) -> None:
    """Stop every process working in ``root`` (the Hub's spawned servers and its services:
    their working folders are the test's homes and rooms root), so no test run leaves
    servers behind."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_under(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while _pids_under(root) and time.monotonic() < deadline:
            time.sleep(0.2)


def test_hub_answers_with_the_documented_groups_and_roles(hub: Hub) -> None:
    info = hub.api("GET", "/hub/api/")
    assert info["version"].split(".")[0] >= "5"
    group = hub.api("GET", "/hub/api/groups/collab-qa-team")
    assert sorted(group["users"]) == ["alice", "bob"]
    assert group["roles"] == ["collab-access-qa-team"]
    assert hub.api("GET", "/hub/api/users/alice")["admin"] is True
    token = hub.api("POST", "/hub/api/users/bob/tokens", body={"note": "test"})
    assert "access:servers!user=qa-team" in token["scopes"]
    assert "shares!user=bob" in token["scopes"]


def test_collaboration_server_has_rooms_identity_and_shared_stores(hub: Hub) -> None:
    # the collaboration account exists (the config allows it); a member (bob) may start it
    bob = hub.api("POST", "/hub/api/users/bob/tokens", body={"note": "test"})["token"]
    hub.api("POST", "/hub/api/users/qa-team/server", token=bob)

    def ready() -> Any:
        user = hub.api("GET", "/hub/api/users/qa-team")
        server = user["servers"].get("")
        return server if server and server["ready"] else None

    server = wait_until("the collaboration server ready", ready, timeout=120, log=hub.log)
    # collaboration is on: noctis_rooms found jupyter-collaboration's websocket and guards it
    assert "chat rules enforced on the collaboration websocket" in hub.log.read_text()
    # alice (a member) and carol (not one) ask the collaboration's server who they are
    alice = hub.api("POST", "/hub/api/users/alice/tokens", body={"note": "test"})["token"]
    me = hub.api("GET", "/user/qa-team/api/me", token=alice)
    assert me["identity"]["username"] == "alice"  # the Hub's name, in chat and RTC
    rooms = hub.api("GET", "/user/qa-team/api/noctis/rooms", token=alice)
    assert isinstance(rooms, dict | list)  # the noctis_rooms REST API is served
    hub.api("POST", "/hub/api/users/carol")
    carol = hub.api("POST", "/hub/api/users/carol/tokens", body={"note": "test"})["token"]
    with pytest.raises(urllib.error.HTTPError) as err:
        hub.api("GET", "/user/qa-team/api/me", token=carol)
    assert err.value.code in (403, 404)
    # the shared stores reached the server's environment
    pid = server["state"]["pid"]
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
        if "=" in item
    )
    assert environ["NOCTIS_DB_URL"] == hub.db_url
    assert environ["MLFLOW_TRACKING_URI"] == hub.tracking_uri
    assert environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "--ServerApp.jpserver_extensions=noctis_rooms=True" in cmdline
    hub.api("DELETE", "/hub/api/users/qa-team/server")


def test_rooms_live_in_a_service_where_nobody_runs_code(hub: Hub) -> None:
    """The chat rooms are served by the Hub-managed `noctis-rooms` service: every Hub user
    reaches it under their own name, a room created there is a file of the service's root
    (not of anybody's server), and nobody can start a kernel or a terminal in it."""
    alice = hub.api("POST", "/hub/api/users/alice/tokens", body={"note": "test"})["token"]
    base = "/services/noctis-rooms"
    me = wait_until(
        "the rooms service answering",
        lambda: hub.api("GET", f"{base}/api/me", token=alice),
        timeout=120,
        log=hub.log,
    )
    assert me["identity"]["username"] == "alice"
    room = hub.api(
        "POST",
        f"{base}/api/noctis/rooms",
        token=alice,
        body={"path": "physics.chat", "visibility": "private"},
    )
    assert room
    assert list((hub.root / "rooms").rglob("*.chat")), "the room is not in the service's root"
    for path, body in (("/api/kernels", {"name": "python3"}), ("/api/terminals", {})):
        with pytest.raises(urllib.error.HTTPError) as err:
            hub.api("POST", base + path, token=alice, body=body)
        assert err.value.code in (403, 404), path
    # the browser path: the lab page, and the Hub's login round trip is not closed by the gate
    page = urllib.request.Request(
        f"{hub.url}{base}/lab", headers={"Authorization": f"token {alice}"}
    )
    with urllib.request.urlopen(page, timeout=30) as resp:
        assert resp.status == 200 and b"jupyter-config-data" in resp.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{hub.url}{base}/oauth_callback", timeout=30)
    assert err.value.code == 400  # the callback's own answer to a missing state, not a 403
    # the service process: terminals off, its own root, the rooms' rules loaded
    service = hub.api("GET", "/hub/api/services/noctis-rooms")
    pid = service["pid"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "--ServerApp.terminals_enabled=False" in cmdline
    assert f"--ServerApp.root_dir={hub.root / 'rooms'}" in cmdline
    assert "--ServerApp.jpserver_extensions=noctis_rooms=True" in cmdline
    assert "--NoctisRoomsGate.enforce=True" in cmdline


@pytest.mark.browser
def test_a_member_logs_in_to_the_rooms_service_in_chromium(
    hub: Hub, chromium_path: Path, test_output: Path
) -> None:
    """Alice logs in to the Hub in Chromium and opens the rooms service: the Hub's OAuth round
    trip passes the rooms' gate and the service's JupyterLab knows her by her Hub name."""
    from playwright.sync_api import sync_playwright

    from noctis_lab._browser import CHROMIUM_ARGS

    base = "/services/noctis-rooms"
    out = test_output / "rooms"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_path), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_context(viewport={"width": 1300, "height": 850}).new_page()
            # the Hub's login page, sent on to the service (no server of her own is started)
            page.goto(f"{hub.url}/hub/login?next={base}/lab")
            page.fill("#username_input", "alice")
            page.fill("#password_input", "any")
            page.click("#login_submit")
            page.locator("#jp-main-dock-panel").wait_for(timeout=90_000)
            assert page.url.startswith(f"{hub.url}{base}/lab")
            # as JupyterLab asks: the login cookie plus the XSRF token (JupyterHub requires it)
            me = page.evaluate(
                "(url) => fetch(url, {headers: {'X-XSRFToken': "
                "(document.cookie.match(/_xsrf=([^;]+)/) || [])[1]}}).then(r => r.json())",
                f"{base}/api/me",
            )
            assert me.get("identity", {}).get("username") == "alice", me
            page.screenshot(path=str(out / "hub_rooms_service_alice.png"))
        finally:
            browser.close()


@pytest.mark.browser
def test_two_members_chat_in_the_rooms_service_in_chromium(
    hub: Hub, chromium_path: Path, test_output: Path
) -> None:
    """Alice and Bob log in to the Hub, open one room of the rooms service and each sees
    the other's message under the Hub's name."""
    from playwright.sync_api import expect, sync_playwright

    from noctis_lab._browser import CHROMIUM_ARGS

    base = "/services/noctis-rooms"
    alice = hub.api("POST", "/hub/api/users/alice/tokens", body={"note": "test"})["token"]
    hub.api("POST", f"{base}/api/noctis/rooms", token=alice, body={"path": "ward.chat"})
    out = test_output / "rooms"
    out.mkdir(parents=True, exist_ok=True)

    def open_room(browser: Any, user: str) -> Any:
        page = browser.new_context(viewport={"width": 1300, "height": 850}).new_page()
        page.goto(f"{hub.url}/hub/login?next={base}/lab/tree/ward.chat")
        page.fill("#username_input", user)
        page.fill("#password_input", "any")
        page.click("#login_submit")
        try:
            page.locator(".jp-chat-input-container textarea").first.wait_for(timeout=120_000)
        except Exception:
            page.screenshot(path=str(out / f"hub_rooms_chat_{user}_failed.png"))
            raise
        return page

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_path), args=list(CHROMIUM_ARGS))
        try:
            a = open_room(browser, "alice")
            b = open_room(browser, "bob")
            box = a.locator(".jp-chat-input-container textarea").first
            box.fill("CT 2 water reads +7 HU, rescanning")
            box.press("Enter")
            seen = b.locator(".jp-chat-message", has_text="CT 2 water reads +7 HU").first
            expect(seen).to_be_visible(timeout=30_000)
            b.screenshot(path=str(out / "hub_rooms_chat_bob.png"))
        finally:
            browser.close()
