"""``noctis-lab mlflow``: the MLflow UI on the home's store, on loopback, runs in view."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _cli_jupyter import free_port, wait_for
from _cli_tools import EXE

from noctis_lab._browser import CHROMIUM_ARGS

_MAKE_STORE = """
import sys, mlflow
client = mlflow.MlflowClient(sys.argv[1])
exp = client.create_experiment("noctis-ai/test-model", artifact_location=sys.argv[2])
run = client.create_run(exp, run_name="evaluation-on-phantoms")
client.log_metric(run.info.run_id, "auc", 0.93)
client.set_terminated(run.info.run_id)
"""


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.server
@pytest.mark.browser
@pytest.mark.slow
def test_mlflow_ui_serves_the_homes_runs(
    tmp_path: Path, clean_env: dict[str, str], chromium_path: Path, test_output: Path
) -> None:
    home = tmp_path / "home"
    (home / "mlflow").mkdir(parents=True)
    store = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    artifacts = (home / "mlflow" / "artifacts").as_uri()
    subprocess.run([sys.executable, "-c", _MAKE_STORE, store, artifacts], env=clean_env, check=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "noctis.toml").write_text(f'home = "{home}"\n')
    port = free_port()
    proc = subprocess.Popen(
        [str(EXE), "mlflow", "--port", str(port)],
        cwd=tmp_path / "elsewhere",  # the home comes from noctis.toml found here
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("MLflow UI: ", 1)[1].strip()
        assert url.startswith(f"http://127.0.0.1:{port}/") and "machine_learning" in url
        wait_for(f"http://127.0.0.1:{port}/health", timeout=240, proc=proc)
        api = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=50"
        with urllib.request.urlopen(api, timeout=30) as resp:
            names = [e["name"] for e in json.load(resp)["experiments"]]
        assert "noctis-ai/test-model" in names
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(chromium_path), args=list(CHROMIUM_ARGS)
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)  # the experiments list, in the runs view
            page.get_by_text("noctis-ai/test-model").first.wait_for(timeout=60_000)
            page.screenshot(path=str(test_output / "mlflow_ui_experiments.png"))
            runs = proc.stdout.readline()  # "  runs of noctis-ai/test-model: URL"
            assert runs.strip().startswith("runs of noctis-ai/test-model: "), runs
            page.goto(runs.split(": ", 1)[1].strip())
            page.get_by_text("evaluation-on-phantoms").first.wait_for(timeout=60_000)
            page.screenshot(path=str(test_output / "mlflow_ui_runs.png"))
            assert "Token Usage" not in page.inner_text("body")  # not the GenAI overview
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while not _port_closed(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _port_closed(port), "the MLflow server outlived `noctis-lab mlflow`"
