"""Fixtures of the HU analysis tests: small synthetic phantoms with ground truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from noctis_lab.hu.synthetic import SyntheticSeries, generate

#: Small and fast: 256 x 256 at 1 mm (the CatPhan's 3.5 mm ROIs are 7 pixels across).
SMALL: dict[str, Any] = {"matrix": 256, "pixel_size_mm": 1.0}


@pytest.fixture(scope="session")
def make() -> Callable[..., SyntheticSeries]:
    """``make(phantom, **kwargs)``: a small synthetic series, cached per arguments."""
    cache: dict[str, SyntheticSeries] = {}

    def _make(phantom: str = "catphan604", **kwargs: Any) -> SyntheticSeries:
        args = {**SMALL, **kwargs}
        key = repr((phantom, sorted(args.items())))
        if key not in cache:
            cache[key] = generate(phantom, **args)
        return cache[key]

    return _make


@pytest.fixture(scope="session")
def catphan(make: Callable[..., SyntheticSeries]) -> SyntheticSeries:
    """A well-calibrated CatPhan 604, 2 mm slices, noise SD 3 HU."""
    return make("catphan604", noise_sd_hu=3.0, slice_thickness_mm=2.0, seed=11)
