"""The demo set: scanners with history, drift, a failing scanner, extra phantoms."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noctis_lab.dicom import load_series
from noctis_lab.hu._demo_set import write_demo_set as demo_set
from noctis_lab.hu.synthetic import load_truth


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("demo")
    return root, demo_set(root, progress=False)


def _manifest(root: Path) -> list[dict[str, Any]]:
    data = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert data["schema"] == "noctis-demo-set/1"
    return list(data["series"])


def test_layout_and_manifest(demo: tuple[Path, list[Path]]) -> None:
    root, folders = demo
    series = _manifest(root)
    assert len(series) == len(folders)
    assert {root / s["path"] for s in series} == set(folders)
    for s in series:
        folder = root / s["path"]
        assert folder.parent.name == s["scanner_slug"]
        assert folder.name == s["date"]
        assert (folder / "ground_truth.json").is_file()
        assert len(list(folder.glob("*.dcm"))) == s["n_slices"]
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total < 150e6
    phantoms = {s["phantom"] for s in series}
    assert {"catphan604", "acr464", "water", "cirs062m"} <= phantoms


def test_history_per_scanner(demo: tuple[Path, list[Path]]) -> None:
    root, _ = demo
    series = _manifest(root)
    by_scanner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in series:
        if s["scenario"] != "reference":
            by_scanner[s["scanner_key"]].append(s)
    assert 3 <= len(by_scanner) <= 4
    assert len({s["scanner"]["manufacturer"] for v in by_scanner.values() for s in v}) >= 3
    for items in by_scanner.values():
        dates = sorted(s["date"] for s in items)
        assert 6 <= len(dates) <= 16
        assert dates[-1] == "2026-11-20"
        assert len(set(dates)) == len(dates)
    scen = {v[0]["scenario"]: sorted(v, key=lambda s: s["date"]) for v in by_scanner.values()}
    drift = [s["offset_hu"] for s in scen["offset_drift"]]
    assert drift[-1] - drift[0] > 4.0
    scale = [s["scale"] for s in scen["scale_drift"]]
    assert scale[-1] - scale[0] > 0.015
    failing = scen["failing"]
    assert all(abs(s["offset_hu"]) < 3 for s in failing[:-2])
    assert all(s["offset_hu"] > 10 for s in failing[-2:])
    stable = [s["offset_hu"] for s in scen["stable"]]
    assert max(abs(v) for v in stable) < 3


def test_failing_scanner_shows_its_miscalibration(demo: tuple[Path, list[Path]]) -> None:
    root, _ = demo
    last = next(
        s for s in _manifest(root) if s["scenario"] == "failing" and s["date"] == "2026-11-20"
    )
    folder = root / last["path"]
    vol = load_series(folder)
    truth = load_truth(folder)
    assert vol.scanner.key == last["scanner_key"]
    assert vol.hu.shape[1:] == (256, 256)
    water_like = truth.roi("CTP486", "centre")
    k = truth.module("CTP486").centre_slice_index
    assert k is not None
    yy, xx = np.mgrid[:256, :256]
    mask = (yy - water_like.row) ** 2 + (xx - water_like.col) ** 2 <= 10.0**2
    assert float(vol.hu[k][mask].mean()) == pytest.approx(water_like.true_hu, abs=2.0)
    assert water_like.true_hu > 10.0


def test_demo_series_finds_series_and_names_what_is_missing(
    demo: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    from noctis_lab import NoFilesFoundError
    from noctis_lab.hu import demo_series
    from noctis_lab.hu.synthetic import load_truth

    root, _ = demo
    first = demo_series("catphan604", root=root)
    last = demo_series(scanner="ct-rt-4", root=root, latest=True)
    assert load_truth(first).phantom == "catphan604"
    assert last.name == "2026-11-20" and last.parent.name == "ct-rt-4"
    assert load_truth(demo_series("acr464", root=root)).phantom == "acr464"
    with pytest.raises(NoFilesFoundError, match="has no series of phantom 'water' on scanner"):
        demo_series("water", scanner="ct-onc-1", root=root)
    with pytest.raises(NoFilesFoundError, match="run `noctis-lab demo`"):
        demo_series(root=tmp_path)
