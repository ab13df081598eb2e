"""Fixtures of the alerts tests: two real analyses of synthetic series, a home with rooms.

The series are written as DICOM and analysed from their folders (as ``hu analyze``
does), so the results name a real source whose StudyInstanceUID the bot reads for
its study links.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from noctis_lab.dicom import ScannerInfo

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Analysed:
    """A synthetic series on disk and its analysis."""

    folder: Path
    study_uid: str
    series_uid: str
    result: object


def scanner_ct_rt_4() -> ScannerInfo:
    """The scanner of the example in issue #8."""
    return ScannerInfo(
        manufacturer="Canon",
        model="Aquilion Prime SP",
        station="CT-RT-4",
        serial="CN-4412",
        institution="Noctis Lab",
        kvp=120.0,
        convolution_kernel="FC13",
    )


def _series(folder: Path, when: str, offset_hu: float) -> Analysed:
    from noctis_lab.hu import analyze
    from noctis_lab.hu.synthetic import generate, write

    s = generate(
        "catphan604",
        matrix=256,
        pixel_size_mm=1.0,
        slice_thickness_mm=5.0,
        z_range_mm=(-95, 15),
        offset_hu=offset_hu,
        scanner=scanner_ct_rt_4(),
        acquisition_datetime=when,
        seed=3,
    )
    write(s, folder)
    result = analyze(str(folder), "catphan604", "seed")
    return Analysed(folder, s.volume.study_uid, s.volume.series_uid, result)


@pytest.fixture(scope="session")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Analysed]:
    """``pass``: a calibrated scanner; ``fail``: the same scanner reading +12 HU."""
    base = tmp_path_factory.mktemp("alerts-series")
    out = {
        "pass": _series(base / "pass", "2026-11-19T08:00:00", 0.0),
        "fail": _series(base / "fail", "2026-11-20T08:00:00", 12.0),
    }
    assert out["pass"].result.status == "pass"  # type: ignore[attr-defined]
    assert out["fail"].result.status == "fail"  # type: ignore[attr-defined]
    return out


@pytest.fixture
def home(noctis_home: Path) -> Path:
    """A NOCTIS_HOME that is also the chat root: two rooms, the HU notebook, alerts.json."""
    rooms = noctis_home / "rooms"
    rooms.mkdir()
    for name in ("qa-hu.chat", "qa-ai.chat"):
        (rooms / name).write_text("{}", encoding="utf-8")
    shutil.copy(ROOT / "notebooks" / "hu_calibration.ipynb", noctis_home / "hu_calibration.ipynb")
    (noctis_home / "alerts.json").write_text(
        json.dumps(
            {
                "chat_root": ".",
                "rooms": {
                    "hu": "rooms/qa-hu.chat",
                    "drift": "rooms/qa-hu.chat",
                    "ai": "rooms/qa-ai.chat",
                },
                "notify_on": ["fail", "warning"],
            }
        ),
        encoding="utf-8",
    )
    return noctis_home
