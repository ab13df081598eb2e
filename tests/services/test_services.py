"""``noctis-lab services``: real PostgreSQL and MLflow servers, used by the AI and HU code.

The tests of this module share one ``services up`` and run in file order: the last one
stops everything, checks that the ports are closed, starts again on the same data and
finds what the earlier tests stored.
"""

from __future__ import annotations

import argparse
import json
import socket
import stat
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from noctis_lab import NoctisError
from noctis_lab._errors import ServiceError
from noctis_lab.services import (
    ServicesReport,
    free_port,
    services_down,
    services_status,
    services_up,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hu_history"))

from _history_factory import make_result

pytestmark = pytest.mark.server

MODEL = "svc-tiny-cls"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cli(argv: list[str]) -> int:
    """Run ``noctis-lab services ...`` through the module's own ``register``."""
    from noctis_lab.cli._services import register

    parser = argparse.ArgumentParser(prog="noctis-lab")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["services", *argv])
    return int(args.handler(args))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A seeded, briefly trained classifier (state dict + spec) and a small test set."""
    import numpy as np
    import torch

    from noctis_lab.ai import ModelSpec, save_model
    from noctis_lab.ai._demo_data import make_batch, write_test_set
    from noctis_lab.ai._nets import train_network

    root = tmp_path_factory.mktemp("svc-ai")
    torch.manual_seed(0)
    batch = make_batch(48, seed=3)
    net = train_network(
        "noctis.tiny_classifier",
        batch.images,
        batch.artifact[:, None].astype(np.float32),
        epochs=1,
        seed=0,
    )
    model = root / "cls.pt"
    save_model(
        net,
        model,
        ModelSpec(
            task="classification",
            format="state_dict",
            factory="noctis.tiny_classifier",
            classes=("no_artifact", "artifact"),
        ),
    )
    return model, write_test_set(root / "ts", "classification", 24, seed=4)


def test_up_binds_loopback_with_private_credentials(
    services: ServicesReport, services_dir: Path
) -> None:
    pg, ml = services.postgres, services.mlflow
    assert services.actions == ("initdb", "start postgresql", "start mlflow")
    assert pg.port != ml.port and _listening(pg.port) and _listening(ml.port)  # type: ignore[arg-type]
    creds = services_dir / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    passwords = {r["password"] for r in json.loads(creds.read_text()).values()}
    assert len(passwords) == 4 and all(len(p) >= 32 for p in passwords)  # admin, owner, app, mlflow
    db = services.env["NOCTIS_DB_URL"]
    assert db.startswith("postgresql+psycopg://noctis:") and db.endswith(f":{pg.port}/noctis")
    assert services.env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{ml.port}"
    assert "password" not in repr(services) and db.split(":")[2].split("@")[0] not in repr(services)
    # loopback only: PostgreSQL listens on 127.0.0.1, with no Unix socket
    conf = (services_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    assert conf[4] == "" and conf[5] == "127.0.0.1"  # socket dir, listen address
    # MLflow's host check refuses a foreign Host header (DNS rebinding)
    req = urllib.request.Request(
        f"{services.env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1",
        headers={"Host": "evil.example"},
    )
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(req, timeout=10)


def test_roles_are_separated(services: ServicesReport, services_dir: Path) -> None:
    import psycopg

    creds = json.loads((services_dir / "credentials.json").read_text())
    port = services.postgres.port
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=port, user="noctis", password="wrong", dbname="noctis"
        )
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(
            host="127.0.0.1",
            port=port,
            user="mlflow",
            password=creds["mlflow"]["password"],
            dbname="noctis",
        )
    with psycopg.connect(services.env["NOCTIS_DB_URL"].replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == (False,)


def test_up_again_says_already_up(
    services: ServicesReport, services_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["up", "--dir", str(services_dir)]) == 0
    out = capsys.readouterr().out
    assert "services already up" in out
    assert f"NOCTIS_DB_URL={services.env['NOCTIS_DB_URL']}" in out.splitlines()
    assert f"MLFLOW_TRACKING_URI={services.env['MLFLOW_TRACKING_URI']}" in out.splitlines()
    assert _cli(["status", "--dir", str(services_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["up"] and status["postgres"]["pid"] == services.postgres.pid
    with pytest.raises(ServiceError, match=r"already runs on port \d+ .* services down"):
        services_up(services_dir, pg_port=free_port())


def test_ai_registry_and_evaluation_on_the_mlflow_server(
    services: ServicesReport, services_dir: Path, tiny_model: tuple[Path, Path]
) -> None:
    from noctis_lab.ai import evaluate, metric_history, model_status, register_model

    uri, db = services.env["MLFLOW_TRACKING_URI"], services.env["NOCTIS_DB_URL"]
    model, test_set = tiny_model
    mv = register_model(model, MODEL, tracking_uri=uri)
    assert mv.version == "1" and mv.aliases == ("champion",)
    # the file travelled through the server's artifact proxy into the services folder
    stored = list((services_dir / "mlflow-artifacts").rglob(model.name))
    # (once as the registered MLflow model's data, once as the run's artifact)
    assert stored and all(p.read_bytes() == model.read_bytes() for p in stored)
    result = evaluate(f"{MODEL}@champion", test_set, n_boot=50, plots=False, tracking_uri=uri)
    assert result.run_id is not None
    history = metric_history(MODEL, tracking_uri=uri)
    assert set(history["run_id"]) == {result.run_id}
    auc = result.metrics.values["auroc"].value
    assert history.set_index("metric").loc["auroc", "value"] == pytest.approx(auc)
    status = model_status(MODEL, tracking_uri=uri, db_url=db)
    assert status.version == "1" and status.last_run_id == result.run_id
    assert status.metrics["auroc"]["value"] == pytest.approx(auc)
    assert status.sources["file"] != "error", status.issues
    # the tracking data really is in PostgreSQL's mlflow database
    import psycopg

    creds = json.loads((services_dir / "credentials.json").read_text())["mlflow"]
    with psycopg.connect(
        host="127.0.0.1",
        port=services.postgres.port,
        user=creds["user"],
        password=creds["password"],
        dbname="mlflow",
    ) as conn:
        names = conn.execute("SELECT name FROM registered_models").fetchall()
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert (MODEL,) in names and runs is not None and runs[0] == 2  # registration + evaluation


def test_calibration_history_on_the_services_postgres(services: ServicesReport) -> None:
    from noctis_lab.hu.history import CalibrationHistory

    result = make_result(datetime(2026, 3, 2, 8, 30), serial="SVC-1", offsets={"Teflon": 4.0})
    with CalibrationHistory(services.env["NOCTIS_DB_URL"]) as history:
        record_id = history.record(result, "physicist")
        back = history.get(record_id)
    assert back.operator == "physicist"
    assert back.result.id == result.id and back.result.scanner.key == "GE/Revolution/SVC-1"
    assert back.result.rois == result.rois


def test_the_app_role_appends_only_and_an_owner_rewrite_is_named(
    services: ServicesReport, services_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The team's role cannot change a record or the triggers; the owner can, and is caught."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from noctis_lab.cli import main
    from noctis_lab.hu.history import CalibrationHistory
    from noctis_lab.services import pg_url
    from noctis_lab.services._postgres import OWNER_ROLE

    app_url = services.env["NOCTIS_DB_URL"]
    owner = json.loads((services_dir / "credentials.json").read_text())[OWNER_ROLE]
    owner_url = pg_url(services.postgres.port or 0, "noctis", owner["user"], owner["password"])
    with CalibrationHistory(app_url) as history:
        rid = history.record(
            make_result(datetime(2026, 3, 9, 8, 30), serial="SVC-2", offsets={"Teflon": 40.0}),
            "physicist",
        )
        assert history.get(rid).status == "fail"
    app, own = create_engine(app_url), create_engine(owner_url)
    try:
        with app.connect() as conn:
            tables = set(
                conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tableowner = %(o)s",
                    {"o": OWNER_ROLE},
                ).scalars()
            )
        assert {"hu_calibrations", "ai_feedback", "alerts_posted"} <= tables
        for sql, error in (
            ("ALTER TABLE hu_calibrations DISABLE TRIGGER ALL", "must be owner"),
            ("ALTER TABLE ai_feedback DISABLE TRIGGER USER", "must be owner"),
            (f"UPDATE hu_calibrations SET status = 'pass' WHERE id = {rid}", "permission denied"),
            ("UPDATE ai_feedback SET verdict = 'agree'", "permission denied"),
            ("DELETE FROM alerts_posted", "permission denied"),
            ("CREATE TABLE intruder (id int)", "permission denied"),
        ):
            with pytest.raises(DBAPIError, match=error), app.begin() as conn:
                conn.exec_driver_sql(sql)
        # even the owner meets the triggers on every record table ...
        with pytest.raises(DBAPIError, match="append-only"), own.begin() as conn:
            conn.exec_driver_sql("TRUNCATE ai_feedback")
        # ... until it disables them: a FAIL becomes a PASS
        with own.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE hu_calibrations DISABLE TRIGGER USER")
            conn.exec_driver_sql(f"UPDATE hu_calibrations SET status = 'pass' WHERE id = {rid}")
            conn.exec_driver_sql("ALTER TABLE hu_calibrations ENABLE TRIGGER USER")
    finally:
        app.dispose()
        own.dispose()
    assert main(["verify", "--db-url", app_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "tampered"
    assert [(f["table"], f["record_id"]) for f in report["findings"]] == [("hu_calibrations", rid)]
    assert owner["password"] not in json.dumps(report)


def test_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services: ServicesReport
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"port {port} on 127.0.0.1 is taken.*--pg-port"):
            services_up(tmp_path / "a", pg_port=port)
        with pytest.raises(ServiceError, match=rf"port {port} .* taken.*--mlflow-port"):
            services_up(tmp_path / "b", mlflow_port=port)
    assert not (tmp_path / "a" / "postgres").exists()  # refused before initdb
    with pytest.raises(ServiceError, match="cannot share port"):
        services_up(tmp_path / "c", pg_port=port, mlflow_port=port)
    with pytest.raises(ServiceError, match="between 1024 and 65535"):
        services_up(tmp_path / "d", pg_port=80)
    monkeypatch.setenv("NOCTIS_PG_BINDIR", str(tmp_path / "nowhere"))
    with pytest.raises(ServiceError, match=r"PostgreSQL server binaries not found"):
        services_up(tmp_path / "e")
    with pytest.raises(NoctisError, match="no services were set up here"):
        services_down(tmp_path / "empty")
    with pytest.raises(ServiceError, match="no services were set up here"):
        _cli(["env", "--dir", str(tmp_path / "empty")])


def test_down_stops_everything_and_up_keeps_the_data(
    services: ServicesReport, services_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg_port, ml_port = services.postgres.port, services.mlflow.port
    pids = (services.postgres.pid, services.mlflow.pid)
    assert _cli(["down", "--dir", str(services_dir)]) == 0
    assert "stop mlflow, stop postgresql" in capsys.readouterr().out
    assert not _listening(pg_port) and not _listening(ml_port)  # type: ignore[arg-type]
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert services_status(services_dir).down
    assert _cli(["status", "--dir", str(services_dir)]) == 3
    assert services_down(services_dir).actions == ()  # idempotent
    again = services_up(services_dir)
    assert again.actions == ("start postgresql", "start mlflow")  # no second initdb
    assert again.env == services.env  # same ports and passwords
    from noctis_lab.ai import list_models

    assert MODEL in {m.name for m in list_models(tracking_uri=again.env["MLFLOW_TRACKING_URI"])}
    assert services_down(services_dir).down


def _zombie(pid: int) -> bool:
    try:
        fields: Any = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return bool(fields[0] == "Z")
