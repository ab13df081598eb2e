"""The HU status "review" (needs review) is its own state on every page, never pass/fail."""

from __future__ import annotations

import re

import pandas as pd

from noctis_lab.reports._dashboard_data import report_verdict, status_counts
from noctis_lab.reports._panels import status_badge, status_html, status_text, styled_table


def test_review_reads_needs_review_in_its_own_colour() -> None:
    assert status_text("review") == "needs review"
    colours = {s: status_badge(s) for s in ("pass", "warning", "fail", "review")}
    assert len(set(colours.values())) == 4, colours  # its own colour
    badge = status_html("review")
    assert ">needs review<" in badge and "noctis-status-review" in badge
    table = styled_table(pd.DataFrame({"Scanner": ["A", "B"], "Status": ["review", "pass"]}))
    assert ">needs review<" in table and ">pass<" in table
    review_cell = re.search(r"#T_\w+_row0_col1 \{([^}]*)\}", table)
    assert review_cell is not None and "#4a148c" in review_cell.group(1)


def test_review_is_not_hidden_in_a_verdict() -> None:
    assert report_verdict(["pass", "review", "warning"]) == "review"
    assert report_verdict(["review", "fail"]) == "fail"
    assert report_verdict(["pass", "warning"]) == "warning"
    assert status_counts(["review", "pass", "review"])["review"] == 2
