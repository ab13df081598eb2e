"""The public judging step, derived quantities after ROI replacement, serialisation, colours."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

import noctis_lab
from noctis_lab._errors import ProfileError
from noctis_lab.hu import analyze, judge, load_phantom
from noctis_lab.hu._locate import locate
from noctis_lab.hu._measure import derive, measure, merge
from noctis_lab.hu._result import CalibrationResult
from noctis_lab.quality import PALETTE, STATUS_COLOURS, Status


def _comparable(result: CalibrationResult) -> dict:
    d = result.to_dict()
    d.pop("id")
    d.pop("analysed_at")
    return d


@pytest.fixture(scope="module")
def located(make):
    s = make(noise_sd_hu=3.0, offset_hu=6.0, roll_deg=5.0, shift_mm=(4.0, -6.0, 0.0), seed=61)
    ph = load_phantom("catphan604")
    placement = locate(s.volume, ph)
    return s, ph, placement, measure(s.volume, ph, placement)


def test_analyze_is_locate_measure_judge(located):
    s, ph, placement, meas = located
    res = analyze(s.volume, ph, "seed")
    again = judge(
        meas,
        ph,
        "seed",
        placement.localisation,
        scanner=s.volume.scanner,
        series_uid=s.volume.series_uid,
        study_uid=s.volume.study_uid,
        source=res.source,
    )
    assert res.study_uid == s.volume.study_uid != ""  # study links open the study
    assert again.id != res.id
    assert _comparable(again) == _comparable(res)
    assert again.status == "fail"  # the 6 HU offset
    assert again.roi("centre", "CTP486").status == "fail"


def test_derive_is_idempotent_and_recomputes_after_replacement(located):
    _, ph, _, meas = located
    same = derive(meas.rois, ph, meas.correlation_factors, meas.slice_sd)
    assert same == meas
    # a doctored teflon reading moves the linearity fit, the ED point and the CNR
    teflon = meas.rois[[r.name for r in meas.rois].index("teflon")]
    fake = dataclasses.replace(teflon, mean=teflon.mean + 100.0, cnr=None)
    new = dataclasses.replace(meas, rois=(fake,))
    merged = merge(meas, new, ph)
    assert [r.name for r in merged.rois] == [r.name for r in meas.rois]
    got = next(r for r in merged.rois if r.name == "teflon")
    bg = next(r for r in merged.rois if r.module == "CTP404" and r.role == "background")
    assert got.mean == pytest.approx(teflon.mean + 100.0)
    assert got.cnr == pytest.approx(abs(got.mean - bg.mean) / bg.sd)
    assert merged.linearity is not None and meas.linearity is not None
    assert merged.linearity.slope > meas.linearity.slope + 0.01
    assert merged.electron_density is not None
    ed = {p.material: p.mean_hu for p in merged.electron_density}
    assert ed["Teflon"] == pytest.approx(got.mean)
    # the other derived quantities did not move
    assert merged.uniformity == meas.uniformity
    assert merged.noise_hu == meas.noise_hu and merged.noise_roi == meas.noise_roi


def test_judge_gives_review_on_doubtful_localisation(located):
    s, ph, placement, meas = located
    loc = dataclasses.replace(
        placement.localisation,
        notes=(*placement.localisation.notes, "doubt: test doubt about the roll"),
    )
    res = judge(meas, ph, "seed", loc, scanner=s.volume.scanner)
    check = next(c for c in res.checks if c.id == "localisation")
    assert check.status == "review" and res.status == "review"
    assert any("test doubt about the roll" in t for t in res.recommendations)


def test_judge_needs_a_baseline_for_constancy(located):
    s, ph, placement, meas = located
    with pytest.raises(ProfileError, match="needs a baseline"):
        judge(meas, ph, "baseline", placement.localisation, scanner=s.volume.scanner)


def test_to_dict_has_every_field(located):
    s, ph, _, _ = located
    res = analyze(s.volume, ph, "manufacturer")
    d = res.to_dict()
    for part, key in (
        (res.rois[0], "rois"),
        (res.checks[0], "checks"),
        (res.linearity, "linearity"),
        (res.uniformity, "uniformity"),
    ):
        names = {f.name for f in dataclasses.fields(part)}
        got = d[key][0] if isinstance(d[key], list) else d[key]
        assert names <= set(got), names - set(got)
    assert res.electron_density is not None
    assert d["electron_density"][0] == dataclasses.asdict(res.electron_density[0])
    assert CalibrationResult.from_json(res.to_json()) == res
    assert CalibrationResult.from_json(res.to_json(indent=None)) == res


_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_STATUS_WORDS = {s.value for s in Status} | {s.label for s in Status} | {"ok", "failing"}
_PALETTE_MODULE = Path(noctis_lab.__file__).parent / "quality" / "_palette.py"
#: A status key followed by a colour in a JavaScript/TypeScript object or a CSS rule.
_WORDS_RE = "|".join(re.escape(w) for w in sorted(_STATUS_WORDS))
_TEXT_TABLE = re.compile(
    rf"""(?:["']?\b(?:{_WORDS_RE})\b["']?\s*:\s*["']#[0-9a-fA-F]{{3,6}}"""
    rf"""|status-(?:{_WORDS_RE})\b[^{{}}]*\{{[^}}]*#[0-9a-fA-F]{{3,6}})"""
)


def _status_key(node: ast.expr | None) -> bool:
    """A dict key naming a status: ``"pass"``, ``"needs review"`` or ``Status.PASS``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower() in _STATUS_WORDS
    return isinstance(node, ast.Attribute) and node.attr.lower() in {s.name.lower() for s in Status}


def _holds_colour(node: ast.expr) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and _HEX.match(n.value)
        for n in ast.walk(node)
    )


def status_colour_tables(source: str, where: str = "<source>") -> list[str]:
    """Every dict literal in ``source`` that maps a status to a colour (``where:line``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict) and any(
            _status_key(k) and _holds_colour(v) for k, v in zip(node.keys, node.values, strict=True)
        ):
            found.append(f"{where}:{node.lineno}")
    return found


def colour_tables_outside_the_palette(root: Path) -> list[str]:
    """Status colour tables in the package under ``root`` outside the one palette module."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root.parent)
        if path.suffix == ".py" and path.relative_to(root) != Path("quality", "_palette.py"):
            found += status_colour_tables(path.read_text(encoding="utf-8"), str(rel))
        elif path.suffix in {".js", ".ts", ".css", ".html", ".j2", ".tpl"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            lines = [text[: m.start()].count("\n") + 1 for m in _TEXT_TABLE.finditer(text)]
            found += [f"{rel}:{n}" for n in lines]
    return found


def status_hues_outside_the_palette(root: Path) -> list[str]:
    """Literal status hues (the palette's colours of a verdict) in the package's code.

    The greys of ``not_checked`` are left out: they double as neutral lines and text.
    """
    hues = {
        c.lower()
        for status, sw in PALETTE.items()
        if status is not Status.NOT_CHECKED
        for c in (sw.colour, sw.fg)
    }
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root) == Path("quality", "_palette.py"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(h in line.lower() for h in hues):
                found.append(f"{path.relative_to(root.parent)}:{n}")
    return found


def test_the_scan_finds_a_second_table():
    assert status_colour_tables('C = {"pass": "#00ff00", "not_checked": "#999999"}') == [
        "<source>:1"
    ]
    assert status_colour_tables('C = {"review": ("#4a148c", "#f3e5f5"), **OTHER}')
    assert status_colour_tables("C = {Status.FAIL: Swatch('#c62828', '#b71c1c', '#fff')}")
    assert _TEXT_TABLE.search("const c = {pass: '#2e7d32'};")
    assert _TEXT_TABLE.search(".noctis-status-review { color: #4a148c }")
    assert not status_colour_tables('ROLE = {"insert": "#1f77b4"}; MSG = {"info": "#0d47a1"}')


def test_one_status_colour_table():
    from noctis_lab.hu import _history_plot, _plot
    from noctis_lab.widgets import _style as widget_style

    package = Path(noctis_lab.__file__).parent
    assert colour_tables_outside_the_palette(package) == []
    assert status_hues_outside_the_palette(package) == []
    assert status_colour_tables(_PALETTE_MODULE.read_text(encoding="utf-8"))  # the one table
    assert set(PALETTE) == set(Status)
    assert set(STATUS_COLOURS) == {s.value for s in Status}
    assert _plot.STATUS_COLOURS is STATUS_COLOURS
    assert _history_plot.STATUS_COLOURS is STATUS_COLOURS
    assert widget_style.STATUS_COLOURS is STATUS_COLOURS
    with pytest.raises(TypeError):
        STATUS_COLOURS["pass"] = "#000000"  # type: ignore[index]
    with pytest.raises(TypeError):
        PALETTE[Status.PASS] = PALETTE[Status.FAIL]  # type: ignore[index]


def test_statuses_stay_enums_and_serialise_as_text(located):
    s, ph, _, _ = located
    res = analyze(s.volume, ph, "seed")
    assert type(res.status) is Status and res.status is Status.FAIL
    assert all(type(c.status) is Status for c in res.checks)
    assert all(type(r.status) is Status for r in res.rois)
    d = res.to_dict()
    assert type(d["status"]) is str and d["status"] == "fail"
    assert {type(c["status"]) for c in d["checks"]} == {str}
    assert {type(r["status"]) for r in d["rois"]} == {str}
    back = CalibrationResult.from_json(res.to_json())
    assert back.status is Status.FAIL and back.checks[0].status is res.checks[0].status
    assert '"status": "fail"' in res.to_json()


def test_a_stored_record_reads_back_with_enum_statuses(located, tmp_path):
    from noctis_lab.hu.history import CalibrationHistory

    s, ph, _, _ = located
    res = analyze(s.volume, ph, "seed")
    history = CalibrationHistory(f"sqlite:///{tmp_path / 'h.db'}")
    rec = history.get(history.record(res, operator="test"))
    assert rec.status is Status.FAIL and rec.result.status is Status.FAIL
    assert all(type(c.status) is Status for c in rec.result.checks)
    d = rec.to_dict()
    assert type(d["status"]) is str and d["status"] == "fail"
    assert '"status": "fail"' in rec.to_json()
