"""Test-set manifests: CSV or JSON lists of images with labels.

Columns (CSV) or keys (JSON ``{"meta": {...}, "cases": [...]}`` or a bare list):

``case_id``
    Optional; defaults to ``row<N>``.
``image``
    Path relative to the manifest: a ``.npy`` array, a DICOM file, or a folder holding one
    DICOM series, read by :func:`noctis_lab.dicom.load_series` (sorted by position,
    rescaled to HU; a slice without a rescale is refused).
``label``
    Classification: a class index or a class name from ``meta.classes``.
``centres`` / ``boxes``
    Detection: JSON list of ``[row, col]`` centres, or of ``[row0, col0, row1, col1]`` boxes
    (kept for box detectors, matched by IoU; their centres serve point detectors).
``mask``
    Segmentation: ``.npy``, NIfTI (``.nii``/``.nii.gz``, needs nibabel) or DICOM file with the
    image's shape, or a DICOM SEG (read with highdicom on the image's own slices, which must
    be DICOM). With ``meta.classes`` (label names) the truth is multi-label: one channel
    per label (``.npy`` (L, ...), or the SEG segment whose SegmentLabel is that name), or
    an integer label map (0 background, ``i + 1`` for label ``i``).
``spacing``
    Optional JSON list of pixel spacing in mm (row, col); DICOM's PixelSpacing otherwise, else 1.
``scanner`` / ``site`` / ``kvp``
    Optional subgroup attributes; for DICOM images they come from the header
    (Manufacturer + ManufacturerModelName, InstitutionName, KVP) unless given here.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noctis_lab._errors import DicomError, ManifestError
from noctis_lab.ai._spec import Task

__all__ = ["SUBGROUP_COLUMNS", "Case", "TestSet", "load_test_set"]

#: Case attributes that subgroup metrics are computed by.
SUBGROUP_COLUMNS = ("scanner", "site", "kvp")


@dataclass(frozen=True)
class Case:
    """One test case, loaded.

    ``label`` is the class index (classification); ``centres`` an (k, 2) array of target
    centres in pixels (detection) and ``boxes`` the (k, 4) ``[row0, col0, row1, col1]``
    boxes when the manifest gives boxes (their centres are ``centres``); ``mask`` a boolean
    array (segmentation; (L, ...) with one channel per label for multi-label truth);
    ``attributes`` the subgroup keys (``scanner``, ``site``, ``kvp``) from the DICOM header
    or the manifest's columns of those names.
    """

    case_id: str
    image: np.ndarray
    spacing: tuple[float, ...]
    label: int | None = None
    centres: np.ndarray | None = None
    mask: np.ndarray | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    boxes: np.ndarray | None = None


@dataclass(frozen=True)
class TestSet:
    """A loaded, validated test set.

    Attributes
    ----------
    name : str
        The manifest's folder name (or ``meta.name``).
    task : {"classification", "detection", "segmentation"}
    cases : tuple of Case
    sha256 : str
        Hash over the manifest and every file it names (the test set's identity).
    classes : tuple of str
    path : Path
        The manifest file.
    """

    __test__ = False  # not a pytest class

    name: str
    task: Task
    cases: tuple[Case, ...]
    sha256: str
    classes: tuple[str, ...]
    path: Path

    def __len__(self) -> int:
        return len(self.cases)

    def images(self) -> np.ndarray:
        """All images stacked as float32 (n, ...); they must share one shape."""
        return np.stack([c.image for c in self.cases]).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """Summary (no pixel data)."""
        return {
            "name": self.name,
            "task": self.task.value,
            "n_cases": len(self.cases),
            "sha256": self.sha256,
            "classes": list(self.classes),
            "path": str(self.path),
        }


def _read_rows(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest {path} is not valid JSON: {exc}") from exc
        if isinstance(data, list):
            return {}, data
        if isinstance(data, dict) and isinstance(data.get("cases"), list):
            meta = data.get("meta") or {}
            if not isinstance(meta, dict):
                raise ManifestError(f"manifest {path}: 'meta' must be an object")
            return meta, data["cases"]
        raise ManifestError(f"manifest {path}: expected a list of cases or {{'cases': [...]}}")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        return {}, rows
    raise ManifestError(f"manifest {path}: unknown format {path.suffix!r} (use .csv or .json)")


def _load_array(
    file: Path, where: str, what: str
) -> tuple[np.ndarray, tuple[float, ...] | None, dict[str, str]]:
    """Pixels, spacing (when the file says) and DICOM header attributes of one file."""
    if not file.exists():
        raise ManifestError(f"{where}: {what} file {file} not found")
    name = file.name.lower()
    try:
        if name.endswith(".npy"):
            return np.load(file, allow_pickle=False), None, {}
        if name.endswith((".nii", ".nii.gz")):
            try:
                import nibabel
            except ModuleNotFoundError:
                raise ManifestError(
                    f"{where}: {file} is NIfTI but nibabel is not installed"
                ) from None
            img = nibabel.load(str(file))
            return np.asarray(img.dataobj), tuple(float(z) for z in img.header.get_zooms()), {}
        return _load_dicom(file)
    except ManifestError:
        raise
    except Exception as exc:
        raise ManifestError(f"{where}: cannot read {what} file {file}: {exc}") from exc


def _load_dicom(path: Path) -> tuple[np.ndarray, tuple[float, ...], dict[str, str]]:
    """A DICOM file or series folder through :func:`noctis_lab.dicom.load_series`.

    Slices are sorted by position, rescaled to HU, refused without a rescale; one slice
    gives a 2-D image. The scanner, site and kVp from the header become the case's
    subgroup attributes.
    """
    from noctis_lab.dicom import load_series

    vol = load_series(path, workers=1)
    sc = vol.scanner
    attrs = {
        "scanner": " ".join(s for s in (sc.manufacturer, sc.model) if s),
        "site": sc.institution,
        "kvp": "" if sc.kvp is None else f"{sc.kvp:g}",
    }
    attrs = {k: v for k, v in attrs.items() if v}
    if vol.hu.shape[0] == 1:
        return vol.hu[0], (float(vol.spacing[1]), float(vol.spacing[2])), attrs
    return vol.hu, tuple(float(s) for s in vol.spacing), attrs


def _hash_into(h: Any, path: Path) -> None:
    """Add a file, or every file of a folder (sorted by name), to the test set's hash."""
    from noctis_lab.dicom import walk_files

    for f in walk_files(path):
        h.update(f.read_bytes())


def _json_field(value: Any, where: str, key: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: {key} is not valid JSON: {value!r}") from exc
    return value


def _infer_task(meta: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> Task:
    """The task: ``meta.task``, else from the first row's columns."""
    task = meta.get("task")
    if task is None:
        first = rows[0] if isinstance(rows[0], dict) else {}
        task = next(
            (t for col, t in _TASK_COLUMNS if col in first),
            None,
        )
    if task not in ("classification", "detection", "segmentation"):
        raise ManifestError(
            f"manifest {path}: cannot tell the task (give task=, meta.task, or a "
            "label/centres/boxes/mask column)"
        )
    return Task(task)


#: The column that tells each task, in the order they are looked for.
_TASK_COLUMNS = (
    ("label", "classification"),
    ("centres", "detection"),
    ("boxes", "detection"),
    ("mask", "segmentation"),
)


def _row_spacing(
    row: dict[str, Any], where: str, image: np.ndarray, found: tuple[float, ...] | None
) -> tuple[float, ...]:
    """Pixel spacing in mm: the row's ``spacing``, else the file's, else 1 per axis."""
    if row.get("spacing") not in (None, ""):
        sp = _json_field(row["spacing"], where, "spacing")
        if (
            not isinstance(sp, list)
            or len(sp) != image.ndim
            or not all(isinstance(v, int | float) and v > 0 for v in sp)
        ):
            raise ManifestError(
                f"{where}: spacing must be {image.ndim} positive numbers, got {sp!r}"
            )
        return tuple(float(v) for v in sp)
    if found is not None and len(found) == image.ndim:
        return found
    return (1.0,) * image.ndim


def _row_label(row: dict[str, Any], where: str, class_names: tuple[str, ...]) -> int:
    """A classification label: a class index or a name of ``class_names``."""
    raw = row.get("label")
    if raw in (None, ""):
        raise ManifestError(f"{where}: no 'label'")
    if isinstance(raw, str) and not raw.strip().lstrip("-").isdigit():
        if raw not in class_names:
            raise ManifestError(
                f"{where}: unknown class {raw!r}; known: {list(class_names) or [0, 1]}"
            )
        return class_names.index(raw)
    try:
        label = int(raw)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: label {raw!r} is not a class") from None
    n_cls = len(class_names) or 2
    if not 0 <= label < n_cls:
        raise ManifestError(f"{where}: unknown class {label}; expected 0..{n_cls - 1}")
    return label


def _points_array(value: Any, where: str, key: str, width: int, what: str) -> np.ndarray:
    """A JSON list of ``width``-number rows as a (k, width) float array (k may be 0)."""
    arr = np.asarray(_json_field(value, where, key), dtype=float)
    if arr.size == 0:
        arr = arr.reshape(0, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ManifestError(
            f"{where}: {key} must be a list of {width}-number {what}, got shape {arr.shape}"
        )
    return arr


def _row_targets(
    row: dict[str, Any], where: str, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Detection targets: (k, ndim) centres and the (k, 2*ndim) boxes, if given.

    Boxes are ``[row0, col0, row1, col1]``; the centres are then the boxes' centres.
    """
    nd = image.ndim
    boxes = None
    if row.get("centres") not in (None, ""):
        pts = _points_array(row["centres"], where, "centres", nd, "points")
    elif row.get("boxes") not in (None, ""):
        boxes = _points_array(row["boxes"], where, "boxes", 2 * nd, "boxes")
        if (boxes[:, nd:] <= boxes[:, :nd]).any():
            raise ManifestError(f"{where}: a box has its end at or before its start")
        pts = (boxes[:, :nd] + boxes[:, nd:]) / 2.0
    else:
        raise ManifestError(f"{where}: no 'centres' or 'boxes'")
    if len(pts) and ((pts < 0).any() or (pts >= np.asarray(image.shape, dtype=float)).any()):
        raise ManifestError(f"{where}: a centre lies outside the {image.shape} image")
    return pts, boxes


@dataclass(frozen=True)
class _Context:
    """What every row of one manifest is read against."""

    path: Path
    task: Task
    class_names: tuple[str, ...]
    h: Any  # the test set's running sha256


#: SOP Class UID of a DICOM Segmentation object.
_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def _is_dicom_seg(file: Path) -> bool:
    """Whether ``file`` is a DICOM SEG object (a header read; other files: False)."""
    if not file.is_file() or file.name.lower().endswith((".npy", ".nii", ".nii.gz")):
        return False
    from noctis_lab.dicom import file_header

    try:
        header = file_header(file)
    except DicomError:
        return False
    return header is not None and str(header.get("SOPClassUID", "")) == _SEG_SOP_CLASS


def _image_sop_uids(image_file: Path, where: str) -> list[str]:
    """SOP Instance UIDs of a DICOM image's slices, in the order the image was loaded."""
    from noctis_lab.dicom import file_header, load_series

    files = [image_file] if image_file.is_file() else None
    if files is None:
        files = [Path(src) for src in load_series(image_file, workers=1).sources]
    uids = []
    for f in files:
        try:
            header = file_header(f)
        except DicomError:
            header = None
        uid = str(header.get("SOPInstanceUID", "") or "") if header is not None else ""
        if not uid:
            raise ManifestError(
                f"{where}: a DICOM SEG mask needs a DICOM image it references; {f} is not one"
            )
        uids.append(uid)
    return uids


def _read_seg(seg_file: Path, image_file: Path, where: str, labels: tuple[str, ...]) -> np.ndarray:
    """A DICOM SEG's segments on the image's slices: (S, *image shape) booleans.

    With ``labels``, segment *i* is the one whose SegmentLabel is ``labels[i]`` (a label
    with no segment is an error); without, the segments in number order.
    """
    import highdicom as hd

    uids = _image_sop_uids(image_file, where)
    try:
        seg = hd.seg.segread(seg_file)
        by_label = {
            seg.get_segment_description(n).segment_label: n for n in seg.get_segment_numbers()
        }
        if labels:
            missing = [lab for lab in labels if lab not in by_label]
            if missing:
                raise ManifestError(
                    f"{where}: DICOM SEG {seg_file.name} has no segment labelled "
                    f"{missing[0]!r} (its segments: {sorted(by_label)})"
                )
            numbers = [by_label[lab] for lab in labels]
        else:
            numbers = sorted(by_label.values())
        arr = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=numbers, combine_segments=False
        )
    except ManifestError:
        raise
    except Exception as exc:
        raise ManifestError(
            f"{where}: DICOM SEG {seg_file.name} does not fit the image {image_file.name}: "
            f"{' '.join(str(exc).split())[:300]}"
        ) from None
    out = np.moveaxis(np.asarray(arr) > 0, -1, 0)  # (S, slices, rows, cols)
    return out[:, 0] if len(uids) == 1 else out


def _as_label_masks(
    m: np.ndarray, where: str, shape: tuple[int, ...], labels: tuple[str, ...]
) -> np.ndarray:
    """A mask as the test set's truth: (*shape) booleans, or (L, *shape) with ``labels``.

    Multi-label truth comes as one channel per label or as a label map (0 background,
    ``i + 1`` for ``labels[i]``).
    """
    n = len(labels)
    if not labels:
        if m.shape == (1, *shape):
            m = m[0]
        if m.shape != shape:
            raise ManifestError(f"{where}: mask shape {m.shape} does not match image shape {shape}")
        return np.asarray(m > 0)
    if m.shape == (n, *shape):
        return np.asarray(m > 0)
    if m.shape == shape:
        values = np.unique(m)
        if not np.isin(values, np.arange(n + 1)).all():
            raise ManifestError(
                f"{where}: label map values {values.tolist()[:8]} are not 0..{n} (labels "
                f"{list(labels)})"
            )
        return np.stack([m == i + 1 for i in range(n)])
    raise ManifestError(
        f"{where}: mask shape {m.shape} is neither {(n, *shape)} (one channel per label "
        f"{list(labels)}) nor a label map {shape}"
    )


def _row_mask(
    ctx: _Context, row: dict[str, Any], where: str, image_file: Path, image: np.ndarray
) -> np.ndarray:
    """Segmentation truth with the image's shape (added to the test set's hash).

    The mask file is ``.npy``, NIfTI, DICOM or a DICOM SEG (read with highdicom on the
    image's slices); with the test set's ``classes`` (labels) it is multi-label.
    """
    if not row.get("mask"):
        raise ManifestError(f"{where}: no 'mask'")
    mask_file = (ctx.path.parent / str(row["mask"])).resolve()
    if _is_dicom_seg(mask_file):
        m = _read_seg(mask_file, image_file, where, ctx.class_names)
    else:
        m, _, _ = _load_array(mask_file, where, "mask")
    _hash_into(ctx.h, mask_file)
    return _as_label_masks(m, where, image.shape, ctx.class_names)


def _case_id(ctx: _Context, i: int, row: Any, seen: set[str]) -> str:
    """The id of row ``i`` (1-based): its ``case_id``, else ``row<i>``; unique."""
    if not isinstance(row, dict):
        raise ManifestError(f"{ctx.path} row {i}: expected an object, got {type(row).__name__}")
    case_id = str(row.get("case_id") or f"row{i}")
    if case_id in seen:
        raise ManifestError(f"{ctx.path.name} row {i} (case {case_id}): duplicate case_id")
    return case_id


def _load_case(
    ctx: _Context, where: str, case_id: str, row: dict[str, Any], shape: tuple[int, ...] | None
) -> Case:
    """One manifest row as a loaded :class:`Case` (``where`` names the row in errors)."""
    if not row.get("image"):
        raise ManifestError(f"{where}: no 'image' given")
    img_file = (ctx.path.parent / str(row["image"])).resolve()
    image, spacing_found, attrs = _load_array(img_file, where, "image")
    for key in SUBGROUP_COLUMNS:  # the manifest's own columns win over the header
        if row.get(key) not in (None, ""):
            attrs[key] = str(row[key])
    _hash_into(ctx.h, img_file)
    if shape is not None and image.shape != shape:
        raise ManifestError(f"{where}: image shape {image.shape} differs from {shape}")
    spacing = _row_spacing(row, where, image, spacing_found)
    if ctx.task == "classification":
        label = _row_label(row, where, ctx.class_names)
        return Case(case_id, image, spacing, label=label, attributes=attrs)
    if ctx.task == "detection":
        centres, boxes = _row_targets(row, where, image)
        return Case(case_id, image, spacing, centres=centres, boxes=boxes, attributes=attrs)
    mask = _row_mask(ctx, row, where, img_file, image)
    return Case(case_id, image, spacing, mask=mask, attributes=attrs)


def load_test_set(
    manifest: str | Path, *, task: Task | None = None, classes: tuple[str, ...] | None = None
) -> TestSet:
    """Read and validate a test-set manifest, loading every image and label.

    Parameters
    ----------
    manifest : str or Path
        ``.csv`` or ``.json`` file.
    task : str, optional
        Expected task; otherwise ``meta.task`` or inferred from the columns.
    classes : tuple of str, optional
        Class names (classification); otherwise ``meta.classes``, else labels must be 0/1.

    Raises
    ------
    ManifestError
        The manifest or a row is malformed; the message names the row and the reason.
    """
    path = Path(manifest).resolve()
    meta, rows = _read_rows(path)
    if not rows:
        raise ManifestError(f"manifest {path} has no cases")
    ctx = _Context(
        path,
        Task(task) if task else _infer_task(meta, rows, path),
        tuple(classes or meta.get("classes") or ()),
        hashlib.sha256(path.read_bytes()),
    )
    cases: list[Case] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=1):
        case_id = _case_id(ctx, i, row, seen)
        seen.add(case_id)
        where = f"{path.name} row {i} (case {case_id})"
        cases.append(_load_case(ctx, where, case_id, row, cases[0].image.shape if cases else None))
    name = str(meta.get("name") or path.parent.name)
    return TestSet(name, ctx.task, tuple(cases), ctx.h.hexdigest(), ctx.class_names, path)
