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
    (their centres are used for matching).
``mask``
    Segmentation: ``.npy``, NIfTI (``.nii``/``.nii.gz``, needs nibabel) or DICOM file with the
    image's shape.
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

from noctis_lab._errors import ManifestError
from noctis_lab.ai._spec import Task

__all__ = ["SUBGROUP_COLUMNS", "Case", "TestSet", "load_test_set"]

#: Case attributes that subgroup metrics are computed by.
SUBGROUP_COLUMNS = ("scanner", "site", "kvp")


@dataclass(frozen=True)
class Case:
    """One test case, loaded.

    ``label`` is the class index (classification); ``centres`` an (k, 2) array of target
    centres in pixels (detection); ``mask`` a boolean array (segmentation); ``attributes``
    the subgroup keys (``scanner``, ``site``, ``kvp``) from the DICOM header or the
    manifest's columns of those names.
    """

    case_id: str
    image: np.ndarray
    spacing: tuple[float, ...]
    label: int | None = None
    centres: np.ndarray | None = None
    mask: np.ndarray | None = None
    attributes: dict[str, str] = field(default_factory=dict)


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
            "task": self.task,
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
    """A DICOM file or series folder through :func:`noctis_lab.dicom.load_series` (sorted by
    position, rescaled to HU, refused without a rescale); one slice gives a 2-D image. The
    scanner, site and kVp from the header become the case's subgroup attributes."""
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
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
    for f in files:
        h.update(f.read_bytes())


def _json_field(value: Any, where: str, key: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: {key} is not valid JSON: {value!r}") from exc
    return value


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
    if task is None:
        task = meta.get("task")
    if task is None:
        first = rows[0]
        task = (
            "classification"
            if "label" in first
            else "detection"
            if ("centres" in first or "boxes" in first)
            else "segmentation"
            if "mask" in first
            else None
        )
    if task not in ("classification", "detection", "segmentation"):
        raise ManifestError(
            f"manifest {path}: cannot tell the task (give task=, meta.task, or a "
            "label/centres/boxes/mask column)"
        )
    class_names = tuple(classes or meta.get("classes") or ())
    h = hashlib.sha256(path.read_bytes())
    cases: list[Case] = []
    seen: set[str] = set()
    shape: tuple[int, ...] | None = None
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ManifestError(f"{path} row {i}: expected an object, got {type(row).__name__}")
        case_id = str(row.get("case_id") or f"row{i}")
        where = f"{path.name} row {i} (case {case_id})"
        if case_id in seen:
            raise ManifestError(f"{where}: duplicate case_id")
        seen.add(case_id)
        if not row.get("image"):
            raise ManifestError(f"{where}: no 'image' given")
        img_file = (path.parent / str(row["image"])).resolve()
        image, spacing_found, attrs = _load_array(img_file, where, "image")
        for key in SUBGROUP_COLUMNS:  # the manifest's own columns win over the header
            if row.get(key) not in (None, ""):
                attrs[key] = str(row[key])
        _hash_into(h, img_file)
        if shape is not None and image.shape != shape:
            raise ManifestError(f"{where}: image shape {image.shape} differs from {shape}")
        shape = image.shape
        spacing: tuple[float, ...]
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
            spacing = tuple(float(v) for v in sp)
        elif spacing_found is not None and len(spacing_found) == image.ndim:
            spacing = spacing_found
        else:
            spacing = (1.0,) * image.ndim
        label = centres = mask = None
        if task == "classification":
            raw = row.get("label")
            if raw in (None, ""):
                raise ManifestError(f"{where}: no 'label'")
            if isinstance(raw, str) and not raw.strip().lstrip("-").isdigit():
                if raw not in class_names:
                    raise ManifestError(
                        f"{where}: unknown class {raw!r}; known: {list(class_names) or [0, 1]}"
                    )
                label = class_names.index(raw)
            else:
                try:
                    label = int(raw)
                except (TypeError, ValueError):
                    raise ManifestError(f"{where}: label {raw!r} is not a class") from None
                n_cls = len(class_names) or 2
                if not 0 <= label < n_cls:
                    raise ManifestError(f"{where}: unknown class {label}; expected 0..{n_cls - 1}")
        elif task == "detection":
            if row.get("centres") not in (None, ""):
                pts = np.asarray(_json_field(row["centres"], where, "centres"), dtype=float)
                if pts.size == 0:
                    pts = pts.reshape(0, image.ndim)
                if pts.ndim != 2 or pts.shape[1] != image.ndim:
                    raise ManifestError(
                        f"{where}: centres must be a list of {image.ndim}-number points, "
                        f"got shape {pts.shape}"
                    )
            elif row.get("boxes") not in (None, ""):
                boxes = np.asarray(_json_field(row["boxes"], where, "boxes"), dtype=float)
                if boxes.size == 0:
                    boxes = boxes.reshape(0, 2 * image.ndim)
                if boxes.ndim != 2 or boxes.shape[1] != 2 * image.ndim:
                    raise ManifestError(
                        f"{where}: boxes must be a list of {2 * image.ndim}-number boxes, "
                        f"got shape {boxes.shape}"
                    )
                pts = (boxes[:, : image.ndim] + boxes[:, image.ndim :]) / 2.0
            else:
                raise ManifestError(f"{where}: no 'centres' or 'boxes'")
            if len(pts) and (
                (pts < 0).any() or (pts >= np.asarray(image.shape, dtype=float)).any()
            ):
                raise ManifestError(f"{where}: a centre lies outside the {image.shape} image")
            centres = pts
        else:
            if not row.get("mask"):
                raise ManifestError(f"{where}: no 'mask'")
            mask_file = (path.parent / str(row["mask"])).resolve()
            m, _, _ = _load_array(mask_file, where, "mask")
            _hash_into(h, mask_file)
            if m.shape != image.shape:
                raise ManifestError(
                    f"{where}: mask shape {m.shape} does not match image shape {image.shape}"
                )
            mask = m > 0
        cases.append(Case(case_id, image, spacing, label, centres, mask, attrs))
    name = str(meta.get("name") or path.parent.name)
    return TestSet(name, task, tuple(cases), h.hexdigest(), class_names, path)
