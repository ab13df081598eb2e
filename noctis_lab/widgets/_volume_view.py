"""Orthogonal slices and a 3-D rendering of a series, offline: NiiVue via ipyniivue.

ipyniivue is an anywidget whose JavaScript (NiiVue with its shaders) ships inside the
wheel, so nothing is fetched at run time and it renders the same in JupyterLab and
Voila. The volume travels as an in-memory NIfTI-1 image (see :mod:`._nifti`); the ROIs
of a :class:`~noctis_lab.hu.CalibrationResult` travel as a second, label volume whose
values are the ROI verdicts, drawn with the verdict colours.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from noctis_lab.widgets._nifti import affine_ras, nifti_bytes
from noctis_lab.widgets._style import (
    DEFAULT_LEVEL,
    DEFAULT_WINDOW,
    STATUS_COLOURS,
    STATUS_LABELS,
    rgb,
)

if TYPE_CHECKING:  # pragma: no cover
    from noctis_lab.dicom._volume import Volume
    from noctis_lab.hu._result import CalibrationResult

__all__ = ["roi_label_volume", "view_volume", "volume_grid"]


def _check_volume(volume: Any) -> Volume:
    from noctis_lab.dicom._volume import Volume

    vol = getattr(volume, "volume", volume)  # a SyntheticSeries carries .volume
    if not isinstance(vol, Volume):
        raise TypeError(
            f"view_volume needs a noctis_lab.dicom.Volume (or an object with .volume), "
            f"got {type(volume).__name__}"
        )
    return vol


def volume_grid(volume: Volume, max_matrix: int) -> tuple[npt.NDArray[np.int16], int]:
    """The HU volume pooled in-plane so that neither side exceeds ``max_matrix``.

    Returns the ``(z, y', x')`` int16 array (block means, rounded) and the block size.
    """
    if max_matrix < 16:
        raise ValueError(f"max_matrix must be at least 16 pixels, got {max_matrix}")
    nz, ny, nx = volume.shape
    step = max(1, math.ceil(max(ny, nx) / max_matrix))
    hu = volume.hu
    if step > 1:
        my, mx = ny // step, nx // step
        hu = hu[:, : my * step, : mx * step].reshape(nz, my, step, mx, step).mean(axis=(2, 4))
    out = np.clip(np.rint(hu), -32768, 32767).astype(np.int16)
    return out, step


def roi_label_volume(
    result: CalibrationResult, volume: Volume, step: int = 1
) -> npt.NDArray[np.uint8]:
    """A label volume on the (pooled) grid: each ROI's disc in its module's slices.

    The label value is the ROI's verdict (:data:`STATUS_LABELS`), so the overlay shows
    pass / warning / fail / not checked in the same colours as the ROI editor.
    """
    nz, ny, nx = volume.shape
    my, mx = ny // step, nx // step
    labels = np.zeros((nz, my, mx), dtype=np.uint8)
    dy, dx = volume.pixel_size
    shift = (step - 1) / 2.0
    yy = (np.arange(my) * step + shift) * dy
    xx = (np.arange(mx) * step + shift) * dx
    slices = result.localisation.module_slices
    for roi in result.rois:
        idx = [i for i in slices.get(roi.module, ()) if 0 <= i < nz]
        if not idx or not math.isfinite(roi.x_mm) or not math.isfinite(roi.y_mm):
            continue
        # a ROI narrower than one pooled voxel still shows as that voxel
        r = max(roi.radius_mm, 0.75 * step * max(dx, dy))
        disc = ((yy[:, None] - roi.y_mm) ** 2 + (xx[None, :] - roi.x_mm) ** 2) <= r * r
        block = labels[idx]
        block[:, disc] = STATUS_LABELS[roi.status]
        labels[idx] = block
    return labels


def _label_colormap() -> dict[str, list[Any]]:
    names = ["background", *STATUS_LABELS]
    r, g, b = [0], [0], [0]
    for status in STATUS_LABELS:
        cr, cg, cb = rgb(STATUS_COLOURS[status])
        r.append(cr)
        g.append(cg)
        b.append(cb)
    return {
        "R": r,
        "G": g,
        "B": b,
        "A": [0] + [255] * len(STATUS_LABELS),
        "I": [0, *STATUS_LABELS.values()],
        "labels": names,
    }


def view_volume(
    volume: Any,
    result: CalibrationResult | None = None,
    *,
    window: float = DEFAULT_WINDOW,
    level: float = DEFAULT_LEVEL,
    max_matrix: int = 256,
    height: int = 480,
    roi_opacity: float = 0.7,
) -> Any:
    """Axial, coronal and sagittal slices plus a 3-D rendering of a series.

    Parameters
    ----------
    volume : Volume
        The series (a :class:`~noctis_lab.dicom.Volume`, or anything with ``.volume``
        such as a synthetic series).
    result : CalibrationResult, optional
        When given, its ROIs are overlaid in their modules' slices, coloured by verdict.
    window, level : float
        Display window (width and centre, HU).
    max_matrix : int
        The volume is pooled in-plane to at most this many pixels a side before it is
        sent to the browser (a 512x512 series becomes 256x256), which keeps the widget
        light; measurements are never made on the pooled copy.
    height : int
        Widget height, pixels.
    roi_opacity : float
        Opacity of the ROI overlay, 0 to 1.

    Returns
    -------
    ipyniivue.NiiVue
        The widget (display it, or put it in a layout). It renders offline in
        JupyterLab and Voila: NiiVue's JavaScript ships inside ipyniivue.

    Raises
    ------
    TypeError
        ``volume`` is not a Volume.
    ValueError
        ``window`` is not positive or ``max_matrix`` is below 16.
    """
    from ipyniivue import NiiVue, ShowRender, SliceType

    vol = _check_volume(volume)
    if not window > 0:
        raise ValueError(f"window must be a positive width in HU, got {window}")
    grid, step = volume_grid(vol, max_matrix)
    affine = affine_ras(vol, step)
    nv = NiiVue(
        height=height,
        slice_type=SliceType.MULTIPLANAR,
        multiplanar_show_render=ShowRender.ALWAYS,
        is_colorbar=False,
        back_color=(0.0, 0.0, 0.0, 1.0),
        show_3d_crosshair=True,
    )
    desc = vol.scanner.series_description or vol.series_uid or "CT"
    volumes: list[dict[str, Any]] = [
        {
            "data": nifti_bytes(grid, affine, description=f"noctis {desc}"),
            "name": "ct.nii.gz",
            "colormap": "gray",
            "cal_min": level - window / 2.0,
            "cal_max": level + window / 2.0,
        }
    ]
    if result is not None:
        labels = roi_label_volume(result, vol, step)
        volumes.append(
            {
                "data": nifti_bytes(labels, affine, description="noctis ROI verdicts"),
                "name": "rois.nii.gz",
                "opacity": float(roi_opacity),
            }
        )
    nv.load_volumes(volumes)
    if result is not None:
        nv.volumes[1].set_colormap_label(_label_colormap())
    return nv
