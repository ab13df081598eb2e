"""Window/level of a CT slice to 8-bit grey, for the browser."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["window_uint8"]


def window_uint8(
    image: npt.NDArray[np.floating] | npt.NDArray[np.integer], window: float, level: float
) -> npt.NDArray[np.uint8]:
    """Map HU to 0..255 grey: ``level - window/2`` is black, ``level + window/2`` white.

    Parameters
    ----------
    image : numpy.ndarray
        A 2-D slice in HU.
    window, level : float
        Window width (> 0) and centre, HU.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape, C-contiguous (ready to send as bytes).

    Raises
    ------
    ValueError
        ``window`` is not a positive width.
    """
    if not window > 0:
        raise ValueError(f"window must be a positive width in HU, got {window}")
    lo = level - window / 2.0
    scaled = (np.asarray(image, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / window)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.ascontiguousarray(np.rint(scaled).astype(np.uint8))
