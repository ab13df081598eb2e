"""Read a printed report back: its text (poppler's pdftotext), page by page."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

#: Section headings of the reports: none may end a page (an orphaned heading).
HEADINGS = (
    "Summary per scanner",
    "Checks of the latest calibration",
    "Annotated images",
    "Trends and drift",
    "Drift alarms",
    "Recommendations",
    "Models",
    "Metrics with confidence intervals, trends and degradation",
    "Recent analyses and feedback",
)


def pdf_pages(pdf: Path, *, layout: bool = True) -> list[str]:
    """The text of each page (``-layout`` keeps each table row's first line on one line)."""
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.fail("pdftotext (poppler-utils) is needed to read the PDF reports back")
    args = [exe, *(["-layout"] if layout else []), str(pdf), "-"]
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


def first_word(value: Any) -> str:
    """The first word a table cell shows (floats with two decimals, missing as a dash).

    Up to a hyphen inside it, where a narrow column may break the word.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    m = re.match(r"\s*(-?[^\s-]+-?)", text)
    return m.group(1) if m else "—"


def row_line(pages: list[str], cells: list[Any]) -> str | None:
    """The PDF line holding the first word of every cell of a row, in order; else None.

    Cells are top-aligned, so a row's first line carries each cell's first word; a
    column cut at the page edge loses its words and the row is not found.
    """
    words = [re.escape(first_word(c)) for c in cells]
    pattern = re.compile(r"(?<!\S)" + r"\s+.*?".join(words))
    for page in pages:
        for line in page.splitlines():
            if pattern.search(line):
                return line
    return None


def blank_pages(pages: list[str]) -> list[int]:
    """Pages with nothing but the footer."""
    return [
        i
        for i, page in enumerate(pages, start=1)
        if not [ln for ln in page.splitlines() if ln.strip() and "page " not in ln]
    ]


def orphaned_headings(pages: list[str]) -> list[tuple[int, str]]:
    """Headings that are the last text of a page (the footer line left out)."""
    out = []
    for i, page in enumerate(pages[:-1], start=1):
        lines = [ln.strip() for ln in page.splitlines() if ln.strip()]
        body = [ln for ln in lines if not re.search(r"page \d+ of \d+", ln)]
        if body and any(body[-1].startswith(h) for h in HEADINGS):
            out.append((i, body[-1]))
    return out


def norm(text: str) -> str:
    """Text without whitespace or hyphens (pdftotext joins a word hyphenated at a line end)."""
    return re.sub(r"[\s\-\u00ad]+", "", text)


def missing_from_pdf(html_text: str, pages: list[str]) -> list[str]:
    """What the HTML report shows that the PDF does not.

    Headings and paragraphs must be there whole; table cells word by word (a cell may
    wrap over lines, between other cells' lines).
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html_text, "html.parser")
    flat = norm("\n".join(pages))
    out = []
    for tag in soup.select("main h1, main h2, main h3, main h4, main p, main li, main td"):
        text = tag.get_text(" ")
        if tag.name == "td" or tag.find("table"):
            lost = [w for w in text.split() if norm(w) and norm(w) not in flat]
            if lost:
                out.append(f"{text[:80]!r} (words {lost[:5]})")
        elif norm(text) and norm(text) not in flat:
            out.append(repr(text[:80]))
    return out
