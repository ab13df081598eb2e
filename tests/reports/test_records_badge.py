"""The dashboards' record-chain badge: intact on a real store, and it names a rewrite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from noctis_lab.reports._records_badge import ChainState, records_badge, records_badge_html


def _rewrite_a_failed_calibration_as_pass(db: Path) -> int:
    """What issue 16 feared: drop the trigger and turn a recorded FAIL into PASS in SQL."""
    con = sqlite3.connect(db)
    try:
        (rid,) = con.execute(
            "SELECT id FROM hu_calibrations WHERE status = 'fail' ORDER BY id LIMIT 1"
        ).fetchone()
        con.execute("DROP TRIGGER hu_calibrations_no_update")
        con.execute("UPDATE hu_calibrations SET status = 'pass' WHERE id = ?", (rid,))
        con.commit()
    finally:
        con.close()
    return int(rid)


def test_badge_says_intact_then_names_the_rewritten_record(store_home: Path) -> None:
    from noctis_lab.reports import hu_dashboard

    badge = records_badge()
    assert badge.state is ChainState.INTACT and badge.records > 0, badge
    assert badge.text == f"records verified: {badge.records} records, chain intact"
    rid = _rewrite_a_failed_calibration_as_pass(store_home / "data" / "noctis.db")
    badge = records_badge()
    assert badge.state is ChainState.TAMPERED, badge
    assert f"hu_calibrations record {rid} was rewritten" in badge.text
    # the dashboard shows it in its header, in the red style
    dash = hu_dashboard()
    assert f"hu_calibrations record {rid} was rewritten" in dash.records.value
    assert "noctis-records-tampered" in dash.records.value
    assert "chain intact" not in dash.records.value


def test_badge_on_no_store_and_on_a_bad_url(noctis_home: Path) -> None:
    assert records_badge().state is ChainState.EMPTY
    assert not (noctis_home / "data" / "noctis.db").exists()  # the check created nothing
    bad = records_badge("nonsense://x")
    assert bad.state is ChainState.UNCHECKED and "nonsense" in bad.text
    html = records_badge_html(bad)
    assert "records not verified" in html and "<script" not in html
