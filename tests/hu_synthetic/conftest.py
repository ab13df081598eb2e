"""Fixtures for the synthetic phantom tests: small series, generated once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from noctis_lab.hu.synthetic import SyntheticSeries, generate, write

#: A rolled, shifted, miscalibrated CatPhan 604 at a non-round pixel size.
TRICKY: dict[str, Any] = {
    "matrix": 320,
    "pixel_size_mm": 0.7,
    "slice_thickness_mm": 2.5,
    "shift_mm": (6.3, -9.1, 1.7),
    "roll_deg": 17.0,
    "scale": 1.03,
    "offset_hu": -4.0,
    "material_offsets_hu": {"Teflon": 25.0, "Air": -6.0},
}


@pytest.fixture(scope="session")
def tricky_kwargs() -> dict[str, Any]:
    """The arguments of :func:`tricky`."""
    return dict(TRICKY)


@pytest.fixture(scope="session")
def tricky() -> SyntheticSeries:
    """Noiseless CatPhan 604, shifted, rolled and miscalibrated."""
    return generate("catphan604", **TRICKY)


@pytest.fixture(scope="session")
def noisy_kwargs() -> dict[str, Any]:
    """Arguments of a small noisy series with every artifact and two missing slices."""
    return {
        "matrix": 256,
        "pixel_size_mm": 1.0,
        "slice_thickness_mm": 5.0,
        "noise_sd_hu": 10.0,
        "ring_artifact_hu": 15.0,
        "metal_streaks": True,
        "couch": True,
        "blur_mm": 0.4,
        "shift_mm": (2.0, -3.0, 1.0),
        "roll_deg": -4.0,
        "missing_slices": (3, 4),
        "seed": 7,
    }


@pytest.fixture(scope="session")
def noisy(noisy_kwargs: dict[str, Any]) -> SyntheticSeries:
    """A small noisy CatPhan 604 series with artifacts and missing slices."""
    return generate("catphan604", **noisy_kwargs)


@pytest.fixture(scope="session")
def noisy_folder(noisy: SyntheticSeries, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``noisy`` written as DICOM plus ground truth."""
    return write(noisy, tmp_path_factory.mktemp("noisy") / "series")
