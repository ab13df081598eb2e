"""DICOM SEG objects for the tests, built with highdicom from known masks.

One place for what the DICOM writer's and the AI test-set loader's tests both need: a
binary segmentation of a CT series (the ``source`` datasets), one segment per label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["build_seg"]


def build_seg(sources: list[Any], masks: dict[str, np.ndarray]) -> Any:
    """A binary ``highdicom.seg.Segmentation`` of ``sources``: segment i + 1 is the i-th label.

    Parameters
    ----------
    sources
        The CT images (pydicom datasets, in the order of the masks' first axis).
    masks
        Label -> boolean mask with the shape (slices, rows, columns) of ``sources``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    desc = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=label,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, label in enumerate(masks)
    ]
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack(list(masks.values()), axis=-1),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=desc,
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Noctis Lab tests",
        manufacturer_model_name="known masks",
        software_versions="1",
        device_serial_number="1",
    )
