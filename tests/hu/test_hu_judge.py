"""The public judging step, derived quantities after ROI replacement, serialisation, colours."""

from __future__ import annotations

import dataclasses

import pytest

from noctis_lab._errors import ProfileError
from noctis_lab.hu import analyze, judge, load_phantom
from noctis_lab.hu._locate import locate
from noctis_lab.hu._measure import derive, measure, merge
from noctis_lab.hu._result import CalibrationResult


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


def test_one_status_colour_table():
    from noctis_lab.hu import _history_plot, _plot
    from noctis_lab.hu._style import STATUS_COLOURS
    from noctis_lab.widgets import _style as widget_style

    assert set(STATUS_COLOURS) == {"pass", "warning", "fail", "review", "not_checked"}
    assert _plot.STATUS_COLOURS is STATUS_COLOURS
    assert _history_plot.STATUS_COLOURS is STATUS_COLOURS
    assert widget_style.STATUS_COLOURS is STATUS_COLOURS
    with pytest.raises(TypeError):
        STATUS_COLOURS["pass"] = "#000000"  # type: ignore[index]
