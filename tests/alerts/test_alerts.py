"""The QA bot: calibration failures, drift alarms and AI status changes, posted once each."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noctis_lab._errors import ReportError
from noctis_lab.alerts import (
    AlertConfig,
    ai_change,
    check_and_post,
    configured,
    load_config,
    notify_calibration,
)
from noctis_lab.hu.history import CalibrationHistory

BOT = "noctis-bot"


def messages(room: Path) -> list[dict[str, Any]]:
    """The messages of a .chat file, read back as JSON."""
    content = json.loads(room.read_text(encoding="utf-8") or "{}")
    return list(content.get("messages", []))


def run_cli(argv: list[str]) -> int:
    """``noctis-lab ARGV`` through :func:`noctis_lab.cli.main`."""
    from noctis_lab.cli import main

    return main(argv)


def drifting(result: Any, n_base: int = 10, n_drift: int = 6) -> list[Any]:
    """Copies of a real result on another scanner: a quiet baseline, then +1.5 HU a week."""
    rng = np.random.default_rng(7)
    sc = dataclasses.replace(result.scanner, station="CT-RT-9", serial="CN-9001")
    start = datetime(2026, 6, 1, 8)
    out = []
    for i in range(n_base + n_drift):
        shift = float(rng.normal(0, 0.3)) + (1.5 * (i - n_base + 1) if i >= n_base else 0.0)
        when = (start + timedelta(days=7 * i)).isoformat()
        rois = tuple(
            dataclasses.replace(
                r,
                mean=r.mean + shift,
                deviation=None if r.deviation is None else r.deviation + shift,
            )
            for r in result.rois
        )
        out.append(
            dataclasses.replace(
                result,
                id=uuid.uuid4().hex,
                series_uid=f"{result.series_uid}.{i}",  # one series per QA day
                rois=rois,
                scanner=dataclasses.replace(sc, acquisition_datetime=when),
                acquisition_datetime=when,
            )
        )
    return out


def test_failure_is_posted_once_with_text_sender_and_study_link(home: Path, analysed: Any) -> None:
    with CalibrationHistory() as h:
        ok_id = h.record(analysed["pass"].result, operator="A. Physicist")
        bad_id = h.record(analysed["fail"].result, operator="A. Physicist")
    run = check_and_post()
    assert [(a.kind, a.key, a.outcome) for a in run.alerts] == [
        ("calibration", str(bad_id), "posted")
    ], run.to_json()
    assert str(ok_id) not in {a.key for a in run.alerts}  # a pass is not news
    room = home / "rooms" / "qa-hu.chat"
    msgs = messages(room)
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg["sender"] == BOT and msg["metadata"]["noctis_system"] is True
    text = run.posted[0].text
    assert text.startswith(
        "CT-RT-4 (Canon Aquilion Prime SP) FAILED its CatPhan 604 QA on 2026-11-20: "
    ), text
    water = next(c for c in analysed["fail"].result.checks if c.id == "water.CTP486.centre")
    assert f"Water-equivalent {water.measured:+.1f} HU (tolerance 0 ± 5 HU)" in text
    assert 10.0 < water.measured < 14.0
    assert "Recommendation: Offset: all materials read about +12" in text
    assert f"(record {bad_id}, profile seed v" in text
    # the room shows the words (escaped markdown) and the study card
    assert msg["body"].startswith("CT\\-RT\\-4 \\(Canon Aquilion Prime SP\\) FAILED")
    link = msg["metadata"]["study_link"]
    assert link == {
        "study_uid": analysed["fail"].study_uid,
        "series_uid": analysed["fail"].series_uid,
        "open_path": "hu_calibration.ipynb",
        "description": f"CatPhan 604 QA — CT-RT-4, 2026-11-20 (record {bad_id})",
    }
    assert msg["mime_model"]["data"]["application/vnd.noctis.study-link+json"] == link
    # a second run posts nothing: the room is byte-for-byte the same
    before = room.read_bytes()
    again = check_and_post()
    assert again.posted == () and [a.outcome for a in again.skipped] == ["already_posted"]
    assert room.read_bytes() == before
    # the state store is append-only
    import sqlalchemy

    from noctis_lab._paths import db_url

    eng = sqlalchemy.create_engine(db_url())
    try:
        with (
            pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"),
            eng.begin() as conn,
        ):
            conn.exec_driver_sql("DELETE FROM alerts_posted")
    finally:
        eng.dispose()


def test_lookback_and_notify_on(home: Path, analysed: Any) -> None:
    with CalibrationHistory() as h:
        bad_id = h.record(analysed["fail"].result, operator="A. Physicist")
    later = datetime.now() + timedelta(days=30)
    assert check_and_post(now=later).alerts == ()  # recorded 30 days "ago": not news
    cfg = AlertConfig(notify_on=("pass",))
    assert check_and_post(config=cfg, dry_run=True).alerts == ()
    dry = check_and_post(dry_run=True)
    assert [(a.key, a.outcome) for a in dry.alerts] == [(str(bad_id), "dry_run")]
    assert messages(home / "rooms" / "qa-hu.chat") == []  # a dry run posts nothing
    assert [a.outcome for a in check_and_post().alerts] == ["posted"]  # ...nor remembers


def test_analyze_record_posts_at_once_and_the_sweep_does_not_repeat(
    home: Path, analysed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert configured()
    rc = run_cli(["hu", "analyze", str(analysed["fail"].folder), "--record", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "fail"
    msgs = messages(home / "rooms" / "qa-hu.chat")
    assert len(msgs) == 1 and msgs[0]["sender"] == BOT
    assert msgs[0]["metadata"]["study_link"]["study_uid"] == analysed["fail"].study_uid
    assert f"record {out['record_id']}" in msgs[0]["body"]
    # the sweep (CLI) knows it was announced
    assert run_cli(["alerts", "check", "--json"]) == 0
    swept = json.loads(capsys.readouterr().out)
    assert swept["n_posted"] == 0 and swept["n_skipped"] == 1
    assert len(messages(home / "rooms" / "qa-hu.chat")) == 1
    # the immediate path itself is idempotent too
    again = notify_calibration(analysed["fail"].result, int(out["record_id"]))
    assert again is not None and again.outcome == "already_posted"
    # a pass is not announced
    assert notify_calibration(analysed["pass"].result, 999) is None


def test_drift_alarm_is_posted_once_per_scanner(home: Path, analysed: Any) -> None:
    series = drifting(analysed["pass"].result)
    with CalibrationHistory() as h:
        ids = [h.record(r, operator="QA") for r in series]
        alarms = [d for d in h.drift("Canon/Aquilion Prime SP/CN-9001") if d.alarm]
    assert len(alarms) >= 3  # every material drifts together
    run = check_and_post()
    drift = [a for a in run.alerts if a.kind == "drift"]
    assert [a.outcome for a in drift] == ["posted"], run.to_json()
    text = drift[0].text
    assert text.startswith("Drift alarm on CT-RT-9 (Canon Aquilion Prime SP), CatPhan 604: ")
    assert "has drifted +" in text and "Recommendation: review the trend" in text
    assert "Canon/Aquilion Prime SP/CN-9001 has drifted" not in text  # scanner said once
    assert drift[0].key.count(" ; ") == len(alarms) - 1
    msgs = messages(home / "rooms" / "qa-hu.chat")
    assert len(msgs) == 1
    link = msgs[0]["metadata"]["study_link"]
    assert link["series_uid"] == series[-1].series_uid  # the latest record's series
    assert link["description"].endswith(f"(record {ids[-1]})")
    again = check_and_post()
    assert [a.outcome for a in again.alerts if a.kind == "drift"] == ["already_posted"] * len(
        alarms
    )
    assert len(messages(home / "rooms" / "qa-hu.chat")) == 1


def test_two_runs_at_once_post_once(home: Path, analysed: Any) -> None:
    with CalibrationHistory() as h:
        h.record(analysed["fail"].result, operator="A. Physicist")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait()
        outcomes.extend(a.outcome for a in check_and_post().alerts)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["already_posted", "posted"]
    assert len(messages(home / "rooms" / "qa-hu.chat")) == 1


def test_missing_room_fails_and_is_retried(home: Path, analysed: Any) -> None:
    (home / "rooms" / "qa-hu.chat").unlink()
    with CalibrationHistory() as h:
        h.record(analysed["fail"].result, operator="A. Physicist")
    run = check_and_post()
    assert [a.outcome for a in run.failed] == ["failed"]
    assert "rooms/qa-hu.chat" in str(run.failed[0].error)
    (home / "rooms" / "qa-hu.chat").write_text("{}", encoding="utf-8")
    assert [a.outcome for a in check_and_post().alerts] == ["posted"]  # nothing was remembered


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"rooms": {"hu": "qa-hu.txt"}}, r"field 'rooms\.hu': .*not a \.chat file"),
        ({"notify_on": ["failed"]}, r"field 'notify_on\.0'"),
        ({"notify_on": []}, r"field 'notify_on': list at least one status"),
        ({"lookback_days": 0}, r"field 'lookback_days'"),
        ({"room": {}}, r"field 'room': Extra inputs are not permitted"),
        ({"rooms": {"ai": "../outside.chat"}}, r"field 'rooms\.ai': .*without '\.\.'"),
    ],
)
def test_bad_config_names_the_field(noctis_home: Path, content: dict[str, Any], match: str) -> None:
    (noctis_home / "alerts.json").write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ReportError, match=r"alerts config .*alerts\.json: " + match):
        load_config()


def test_config_defaults_env_and_cli(
    noctis_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not configured()
    cfg = load_config()
    assert cfg == AlertConfig() and cfg.root() == noctis_home.resolve()
    assert cfg.rooms.hu == "rooms/qa-hu.chat" and cfg.ai_levels() == {"error", "warning"}
    other = noctis_home / "elsewhere.json"
    monkeypatch.setenv("NOCTIS_ALERTS", str(other))
    with pytest.raises(ReportError, match=r"elsewhere\.json: no such file"):
        load_config()
    other.write_text('{"chat_root": "notebooks", "rooms": {"ai": null}}', encoding="utf-8")
    assert configured()
    assert run_cli(["alerts", "config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == str(other)
    assert shown["chat_root_path"] == str(noctis_home / "notebooks")
    assert shown["rooms"] == {"hu": "rooms/qa-hu.chat", "drift": "rooms/qa-hu.chat", "ai": None}
    other.write_text("{not json", encoding="utf-8")
    assert run_cli(["alerts", "check"]) == 2
    captured = capsys.readouterr()
    assert "not readable JSON" in captured.out + captured.err


def test_ai_change_rule() -> None:
    levels = AlertConfig().ai_levels()
    assert not ai_change("good", "good", levels)
    assert not ai_change(None, "excellent", levels)  # a healthy new model is not news
    assert ai_change(None, "warning", levels)
    assert ai_change("good", "error", levels)
    assert ai_change("error", "warning", levels)
    assert ai_change("error", "good", levels)  # recovery is announced
    assert not ai_change("excellent", "good", levels)  # noted, not posted
    assert ai_change("excellent", "good", AlertConfig(notify_on=("pass",)).ai_levels())


def test_ai_status_changes_are_posted_against_the_last_one_seen(home: Path) -> None:
    import shutil

    import torch

    from noctis_lab.ai import ModelSpec, register_model, resolve_model, save_model
    from noctis_lab.ai._nets import build_network

    tracking = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    torch.manual_seed(0)
    model = home / "models" / "cls.pt2"
    save_model(
        build_network("noctis.tiny_classifier"),
        model,
        ModelSpec(task="classification", factory="noctis.tiny_classifier"),
    )
    register_model(model, "ct-artifact", tracking_uri=tracking)
    room = home / "rooms" / "qa-ai.chat"

    def ai_run() -> list[tuple[str, str]]:
        run = check_and_post(tracking_uri=tracking)
        return [(a.key, a.outcome) for a in run.alerts if a.kind == "ai_status"]

    # never evaluated: a warning, announced on first sight
    assert ai_run() == [("ct-artifact@1", "posted")]
    first = messages(room)[-1]
    assert first["sender"] == BOT and "study_link" not in first["metadata"]
    assert first["body"].startswith("AI model ct\\-artifact v1 is at status WARNING: ")
    assert "never been evaluated" in first["body"]
    assert ai_run() == []  # no change, nothing
    # the registered file disappears: an error, announced as a change
    path = resolve_model("ct-artifact", tracking_uri=tracking).path
    backup = path.with_suffix(".bak")
    shutil.move(path, backup)
    try:
        assert ai_run() == [("ct-artifact@2", "posted")]
    finally:
        shutil.move(backup, path)
    second = messages(room)[-1]["body"]
    assert "changed status from WARNING to ERROR" in second
    assert "Recommendation: do not rely on this model" in second
    # restored: back to warning, announced once
    assert ai_run() == [("ct-artifact@3", "posted")]
    assert "changed status from ERROR to WARNING" in messages(room)[-1]["body"]
    assert ai_run() == []
    assert len(messages(room)) == 3


def test_a_calibration_that_needs_review_is_announced_as_such(analysed: Any) -> None:
    from noctis_lab.alerts import AlertConfig, calibration_text
    from noctis_lab.hu import analyze

    base = analysed["pass"].result
    assert "review" in AlertConfig().notify_on
    doubtful = analyze(str(analysed["pass"].folder), base.phantom, roll=15.0)  # a wrong roll
    assert doubtful.status == "review"
    text = calibration_text(doubtful, 7)
    assert " NEEDS REVIEW after its " in text and "[review]" in text
    assert "FAILED" not in text and "vendor" not in text
