"""The interactive ROI editor: drag and resize ROIs on a CT slice, see the verdicts change.

State lives in synced traits (anywidget), so everything the browser does can also be
done from Python, and tests drive it without a browser:

- ``rois`` (list of dicts: ``key``, ``module``, ``name``, ``material``, ``role``,
  ``x_mm``, ``y_mm``, ``radius_mm``, ``slices``) is the geometry. The browser writes it
  while the user drags; Python writes it on :meth:`RoiEditor.reset` and
  :meth:`RoiEditor.move_roi`.
- On every change of ``rois`` only the ROIs whose geometry changed are measured
  again (the same ROI statistics as the analysis, ``noctis_lab.hu._measure``), then
  the whole result is judged again with the same profile by the analysis' own
  :func:`noctis_lab.hu.judge`, which gives new ROI verdicts, a new overall status,
  checks and recommendations.
- ``rows`` (list of dicts: material, mean, SD, nominal, deviation, verdict) is what
  the browser's table shows; :attr:`RoiEditor.table` is the same as a DataFrame.
- ``image`` is the windowed slice as raw uint8 bytes (``image_shape`` = rows, columns),
  redrawn when ``slice_index``, ``window`` or ``level`` change.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from noctis_lab.hu._kinds import LocalisationMethod
from noctis_lab.widgets._slice import window_uint8
from noctis_lab.widgets._style import DEFAULT_LEVEL, DEFAULT_WINDOW, STATUS_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from noctis_lab.dicom._volume import Volume
    from noctis_lab.hu._measure import Measurements
    from noctis_lab.hu._phantoms import Phantom
    from noctis_lab.hu._result import CalibrationResult, RoiMeasurement

__all__ = ["RoiEditor"]

_STATIC = Path(__file__).parent / "static"
_GEOMETRY = ("x_mm", "y_mm", "radius_mm")
_TABLE_COLUMNS = [
    "key",
    "module",
    "name",
    "material",
    "role",
    "mean",
    "sd",
    "nominal",
    "deviation",
    "status",
    "n_pixels",
    "x_mm",
    "y_mm",
    "radius_mm",
]


def _key(module: str, name: str) -> str:
    return f"{module}/{name}"


def _opt(v: float | None) -> float | None:
    """JSON-safe number for a trait: NaN and infinities become None."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


class RoiEditor(anywidget.AnyWidget):
    """A CT slice with the analysis ROIs, which the user moves and resizes with the mouse.

    Parameters
    ----------
    result_or_volume : CalibrationResult, Volume or SyntheticSeries
        A finished analysis (then give ``volume``, or the series is loaded again from
        ``result.source``), or a series to analyse now with ``phantom`` and ``profile``.
    phantom : str, optional
        Phantom name or file, when a series is given (default ``catphan604``).
    volume : Volume, optional
        The series the result was measured on.
    profile : str, optional
        Tolerance profile for a new analysis (default: the analysis' default). The
        editor always re-judges with the profile of the result.
    baseline : CalibrationResult, optional
        Baseline result, for profiles that need one (constancy).
    history : CalibrationHistory or str, optional
        Where :meth:`record` writes: a history object or a database URL
        (default: the project's history, ``noctis_lab._paths.db_url()``).
    window, level : float
        Initial display window (width, centre) in HU.
    operator : str
        Pre-filled operator name.

    Attributes
    ----------
    result : CalibrationResult
        The current (adjusted) result; equal to :attr:`original` until a ROI moves.
    original : CalibrationResult
        The result the editor started from.
    volume : Volume
        The series shown.
    last_update_s : float
        Seconds the last ROI recomputation took (measure + re-judge + table).
    """

    _esm = _STATIC / "roi_editor.js"
    _css = _STATIC / "roi_editor.css"

    image = t.Bytes(b"").tag(sync=True)
    image_shape = t.List(t.Int(), default_value=[0, 0]).tag(sync=True)
    pixel_mm = t.List(t.Float(), default_value=[1.0, 1.0]).tag(sync=True)
    n_slices = t.Int(1).tag(sync=True)
    slice_index = t.Int(0).tag(sync=True)
    window = t.Float(DEFAULT_WINDOW).tag(sync=True)
    level = t.Float(DEFAULT_LEVEL).tag(sync=True)
    rois = t.List(t.Dict()).tag(sync=True)
    rows = t.List(t.Dict()).tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    checks = t.List(t.Dict()).tag(sync=True)
    recommendations = t.List(t.Unicode()).tag(sync=True)
    status_colours = t.Dict().tag(sync=True)
    selected = t.Unicode("").tag(sync=True)
    operator = t.Unicode("").tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    profile_note = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        result_or_volume: Any,
        phantom: str | None = None,
        *,
        volume: Volume | None = None,
        profile: str | None = None,
        baseline: CalibrationResult | None = None,
        history: Any = None,
        window: float = DEFAULT_WINDOW,
        level: float = DEFAULT_LEVEL,
        operator: str = "",
    ) -> None:
        result, vol = _resolve_inputs(result_or_volume, phantom, volume, profile, baseline)
        self._volume = vol
        self._original = result
        self._result = result
        self._baseline = baseline
        self._history = history
        self._judge = _Judge(vol, result, baseline)
        self._geometry: dict[str, tuple[float, float, float]] = {}
        self._recorded: tuple[Any, str] | None = None  # (record id, status) of the last record
        self.last_update_s = 0.0
        nz, ny, nx = vol.shape
        super().__init__(
            image_shape=[ny, nx],
            pixel_mm=[float(vol.spacing[1]), float(vol.spacing[2])],
            n_slices=nz,
            slice_index=min(max(result.localisation.reference_slice, 0), nz - 1),
            window=float(window),
            level=float(level),
            status_colours=dict(STATUS_COLOURS),
            operator=operator,
        )
        from noctis_lab.reports._dashboard_data import not_checked_note

        self.profile_note = not_checked_note(result)
        self._render_image()
        self.rois = self._initial_rois()
        self.on_msg(self._on_frontend_msg)

    # -- public API -----------------------------------------------------------------------
    @property
    def result(self) -> CalibrationResult:
        """The current result, with the adjusted ROIs, checks and status."""
        return self._result

    @property
    def original(self) -> CalibrationResult:
        """The result the editor started from."""
        return self._original

    @property
    def volume(self) -> Volume:
        """The series shown."""
        return self._volume

    @property
    def table(self) -> pd.DataFrame:
        """The ROI table (one row per ROI) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=_TABLE_COLUMNS)

    @property
    def adjusted(self) -> tuple[str, ...]:
        """Keys (``module/name``) of the ROIs whose geometry differs from the original."""
        orig = {_key(r.module, r.name): (r.x_mm, r.y_mm, r.radius_mm) for r in self._original.rois}
        return tuple(k for k, g in self._geometry.items() if not _same(g, orig[k]))

    def move_roi(
        self,
        name: str,
        *,
        x_mm: float | None = None,
        y_mm: float | None = None,
        radius_mm: float | None = None,
        dx_mm: float = 0.0,
        dy_mm: float = 0.0,
    ) -> RoiMeasurement:
        """Move and/or resize one ROI, as a drag in the browser would.

        Parameters
        ----------
        name : str
            ``module/name`` key, or the ROI name when it is unique.
        x_mm, y_mm, radius_mm : float, optional
            New absolute position (mm from the first pixel centre) and radius.
        dx_mm, dy_mm : float
            Shift added to the position.

        Returns
        -------
        RoiMeasurement
            The new measurement of that ROI (with its new verdict).
        """
        key = self._resolve_key(name)
        new = [dict(r) for r in self.rois]
        for r in new:
            if r["key"] == key:
                if x_mm is not None:
                    r["x_mm"] = float(x_mm)
                if y_mm is not None:
                    r["y_mm"] = float(y_mm)
                if radius_mm is not None:
                    r["radius_mm"] = float(radius_mm)
                r["x_mm"] = float(r["x_mm"]) + float(dx_mm)
                r["y_mm"] = float(r["y_mm"]) + float(dy_mm)
        self.rois = new
        module, roi_name = key.split("/", 1)
        return self._result.roi(roi_name, module)

    def reset(self) -> None:
        """Put every ROI back where the analysis placed it."""
        self._result = self._original
        self._geometry = {}
        self.rois = self._initial_rois()
        self.message = "ROIs reset to the analysis positions."

    def record(self, operator: str | None = None, notes: str | None = None) -> Any:
        """Record the current (adjusted) result in the calibration history.

        Parameters
        ----------
        operator : str, optional
            Who did the calibration (default: the ``operator`` trait, the browser's field).
        notes : str, optional
            Free text; the ROI adjustments are always added.

        Returns
        -------
        object
            The history record id.

        Raises
        ------
        HistoryError
            No operator name, a result already recorded, or a database failure (the
            history's own checks).
        """
        from noctis_lab.hu.history import AlreadyRecordedWarning, CalibrationHistory

        who = (self.operator if operator is None else operator).strip()
        moved = self.adjusted
        text = "; ".join(
            p
            for p in (
                notes or "",
                f"ROIs adjusted in the ROI editor: {', '.join(moved)}" if moved else "",
            )
            if p
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AlreadyRecordedWarning)
            if self._history is None or isinstance(self._history, str):
                with CalibrationHistory(self._history) as history:
                    record_id = history.record(self._result, operator=who, notes=text)
            else:
                record_id = self._history.record(self._result, operator=who, notes=text)
        self.operator = who
        self._recorded = (record_id, self._result.status)
        if any(issubclass(w.category, AlreadyRecordedWarning) for w in caught):
            self.message = (
                f"Already recorded as record {record_id} ({self._result.status.upper()}): "
                "nothing stored."
            )
        else:
            self.message = f"Recorded {self._result.status.upper()} as record {record_id} by {who}."
        return record_id

    # -- internals --------------------------------------------------------------------------
    def _resolve_key(self, name: str) -> str:
        keys = [str(r["key"]) for r in self.rois]
        if name in keys:
            return name
        hits = [k for k in keys if k.split("/", 1)[1] == name]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise KeyError(f"no ROI {name!r} in the editor; ROIs are {', '.join(keys)}")
        raise KeyError(f"ROI name {name!r} is ambiguous: {', '.join(hits)}; use module/name")

    def _initial_rois(self) -> list[dict[str, Any]]:
        slices = self._original.localisation.module_slices
        out = []
        for r in self._original.rois:
            key = _key(r.module, r.name)
            self._geometry[key] = (r.x_mm, r.y_mm, r.radius_mm)
            out.append(
                {
                    "key": key,
                    "module": r.module,
                    "name": r.name,
                    "material": r.material,
                    "role": r.role,
                    "x_mm": float(r.x_mm),
                    "y_mm": float(r.y_mm),
                    "radius_mm": float(r.radius_mm),
                    "slices": [int(i) for i in slices.get(r.module, ())],
                }
            )
        self._publish()
        return out

    def _render_image(self) -> None:
        nz = self._volume.shape[0]
        idx = min(max(int(self.slice_index), 0), nz - 1)
        self.image = window_uint8(self._volume.hu[idx], self.window, self.level).tobytes()

    @t.observe("slice_index", "window", "level")
    def _on_display(self, change: dict[str, Any]) -> None:
        self._render_image()

    @t.validate("slice_index")
    def _valid_slice(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        n = self.n_slices
        if not 0 <= value < n:
            raise t.TraitError(f"slice_index {value} is outside the series (0..{n - 1})")
        return value

    @t.validate("window")
    def _valid_window(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise t.TraitError(f"window must be a positive width in HU, got {value}")
        return value

    @t.validate("rois")
    def _valid_rois(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        value = proposal["value"]
        if not self._geometry:  # first assignment, from the analysis
            return [dict(r) for r in value]
        known = set(self._geometry)
        _, ny, nx = self._volume.shape
        dy, dx = self._volume.pixel_size
        for r in value:
            key = r.get("key")
            if key not in known:
                raise t.TraitError(f"rois: unknown ROI {key!r}; ROIs are {', '.join(known)}")
            for f in _GEOMETRY:
                v = r.get(f)
                if not isinstance(v, int | float) or not math.isfinite(v):
                    raise t.TraitError(f"rois: {key} {f} must be a finite number, got {v!r}")
            if r["radius_mm"] <= 0:
                raise t.TraitError(f"rois: {key} radius_mm must be positive, got {r['radius_mm']}")
            if not (0 <= r["x_mm"] <= (nx - 1) * dx and 0 <= r["y_mm"] <= (ny - 1) * dy):
                raise t.TraitError(
                    f"rois: {key} centre ({r['x_mm']:.1f}, {r['y_mm']:.1f}) mm is outside "
                    f"the image (0..{(nx - 1) * dx:.1f}, 0..{(ny - 1) * dy:.1f} mm)"
                )
        # copies: a caller that mutates its dicts later must not change the state silently
        return [dict(r) for r in value]

    @t.observe("rois")
    def _on_rois(self, change: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        changed: list[dict[str, Any]] = []
        for r in change["new"]:
            g = (float(r["x_mm"]), float(r["y_mm"]), float(r["radius_mm"]))
            if not _same(g, self._geometry.get(r["key"], (math.nan,) * 3)):
                changed.append(r)
                self._geometry[r["key"]] = g
        if not changed:
            return
        self._result = self._judge.judge(dict(self._geometry), self.adjusted)
        self._publish()
        self._stale_message()
        self.last_update_s = time.perf_counter() - t0

    def _stale_message(self) -> None:
        """After an edit, no message may speak of a state the ROIs have left."""
        recorded = self._recorded
        if recorded is None:
            self.message = ""
            return
        record_id, status = recorded
        self.message = (
            f"Changed since record {record_id} ({status.upper()}): now "
            f"{self._result.status.upper()}, not recorded."
        )

    def _publish(self) -> None:
        res = self._result
        self.rows = [
            {
                "key": _key(r.module, r.name),
                "module": r.module,
                "name": r.name,
                "material": r.material,
                "role": r.role,
                "mean": _opt(r.mean),
                "sd": _opt(r.sd),
                "nominal": _opt(r.nominal_hu),
                "deviation": _opt(r.deviation),
                "status": r.status,
                "n_pixels": int(r.n_pixels),
                "x_mm": _opt(r.x_mm),
                "y_mm": _opt(r.y_mm),
                "radius_mm": _opt(r.radius_mm),
            }
            for r in res.rois
        ]
        self.checks = [
            {
                "id": c.id,
                "target": c.target,
                "measured": _opt(c.measured),
                "unit": c.unit,
                "tolerance": c.tolerance,
                "status": c.status,
            }
            for c in res.checks
            if c.status != "pass"
        ]
        self.recommendations = list(res.recommendations)
        self.status = res.status

    def _on_frontend_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        event = content.get("event") if isinstance(content, dict) else None
        try:
            if event == "reset":
                self.reset()
            elif event == "record":
                self.record(str(content.get("operator") or self.operator))
        except Exception as exc:  # shown to the user in the widget, not as a traceback
            self.message = f"Not recorded: {exc}" if event == "record" else str(exc)


def _same(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    return all(abs(x - y) <= 1e-6 for x, y in zip(a, b, strict=True))


def _resolve_inputs(
    obj: Any,
    phantom: str | None,
    volume: Volume | None,
    profile: str | None,
    baseline: CalibrationResult | None,
) -> tuple[CalibrationResult, Volume]:
    """(result, volume) from what the caller gave."""
    from noctis_lab.dicom._volume import Volume
    from noctis_lab.hu._result import CalibrationResult

    if isinstance(obj, CalibrationResult):
        if volume is None:
            src = Path(obj.source) if obj.source else None
            if src is None or not src.exists():
                raise ValueError(
                    f"RoiEditor: the result's series {obj.source!r} is not on disk; "
                    "pass the series as volume=..."
                )
            from noctis_lab.dicom import load_series

            volume = load_series(src)
        vol = getattr(volume, "volume", volume)
        if not isinstance(vol, Volume):
            raise TypeError(f"RoiEditor: volume must be a Volume, got {type(volume).__name__}")
        if obj.series_uid and vol.series_uid and obj.series_uid != vol.series_uid:
            raise ValueError(
                f"RoiEditor: the result is of series {obj.series_uid}, the volume is "
                f"{vol.series_uid}"
            )
        return obj, vol
    vol = getattr(obj, "volume", obj)
    if not isinstance(vol, Volume):
        raise TypeError(
            "RoiEditor needs a CalibrationResult (with volume=...) or a Volume, "
            f"got {type(obj).__name__}"
        )
    from noctis_lab.hu import analyze

    kwargs: dict[str, Any] = {"phantom": phantom or "catphan604"}
    if profile is not None:
        kwargs["profile"] = profile
    if baseline is not None:
        kwargs["baseline"] = baseline
    return analyze(vol, **kwargs), vol


class _Judge:
    """Measures and judges a result again after ROI edits, with the analysis' own code.

    The analysis' placement (module slices, per-module phantom centre, roll) is
    rebuilt exactly from the result: each module's centre follows from where the
    analysis put one of its ROIs and where the phantom file puts that ROI. An edited
    ROI becomes a copy of the phantom's ROI at the new place (in the phantom frame),
    so :func:`noctis_lab.hu._measure.measure` measures it exactly as the analysis
    would have. Only the modules holding edited ROIs are measured again
    (:func:`noctis_lab.hu._measure.merge` swaps their numbers in and derives the
    rest afresh), and :func:`noctis_lab.hu.judge`, the end of
    :func:`noctis_lab.hu.analyze`, judges and advises.
    """

    def __init__(
        self, volume: Volume, result: CalibrationResult, baseline: CalibrationResult | None
    ) -> None:
        from noctis_lab.hu._locate import ModulePlacement, Placement
        from noctis_lab.hu._phantoms import load_phantom
        from noctis_lab.hu._profiles import load_profile

        self.volume = volume
        self.result = result
        self.baseline = baseline
        self.phantom = load_phantom(result.phantom)
        self.profile = load_profile(result.profile)
        _, self.dy, self.dx = (float(v) for v in volume.spacing)
        loc = result.localisation
        self.roll = float(loc.roll_deg)
        modules: dict[str, ModulePlacement] = {}
        for name, slices in loc.module_slices.items():
            measured = [r for r in result.rois if r.module == name]
            if not measured:
                continue
            first = measured[0]
            xr, yr = self.phantom.module(name).roi(first.name).position(self.roll)
            centre = (first.x_mm / self.dx - xr / self.dx, first.y_mm / self.dy - yr / self.dy)
            pos = [volume.slice_positions[i] for i in slices if 0 <= i < volume.shape[0]]
            modules[name] = ModulePlacement(
                module=name,
                z_mm=float(sum(pos) / len(pos)) if pos else math.nan,
                slices=tuple(int(i) for i in slices),
                centre_px=centre,
                verified=True,
            )
        self.placement = Placement(modules=modules, roll_deg=self.roll, localisation=loc)
        # the numbers the analysis measured, per module (restricted measurements merge in)
        self._original_meas = self._measure(set(modules), {})

    def _phantom_with(self, geometry: dict[str, tuple[float, float, float]]) -> Phantom:
        """The phantom with the edited ROIs moved/resized.

        No validation: a ROI may deliberately sit off its insert, or outside the body.
        """
        a = math.radians(-self.roll)
        c, s = math.cos(a), math.sin(a)
        modules = []
        for m in self.phantom.modules:
            mp = self.placement.modules.get(m.name)
            rois = []
            for roi in m.rois:
                g = geometry.get(_key(m.name, roi.name))
                if g is None or mp is None:
                    rois.append(roi)
                    continue
                x_mm, y_mm, radius = g
                xr = (x_mm / self.dx - mp.centre_px[0]) * self.dx
                yr = (y_mm / self.dy - mp.centre_px[1]) * self.dy
                fx, fy = xr * c - yr * s, xr * s + yr * c
                rois.append(
                    roi.model_copy(
                        update={
                            "x_mm": fx,
                            "y_mm": fy,
                            "distance_mm": math.hypot(fx, fy),
                            "angle_deg": math.degrees(math.atan2(fy, fx)),
                            "radius_mm": radius,
                        }
                    )
                )
            modules.append(m.model_copy(update={"rois": tuple(rois)}))
        return self.phantom.model_copy(update={"modules": tuple(modules)})

    def _measure(
        self, modules: set[str], geometry: dict[str, tuple[float, float, float]]
    ) -> Measurements:
        from noctis_lab.hu._locate import Placement
        from noctis_lab.hu._measure import measure

        placement = Placement(
            modules={k: v for k, v in self.placement.modules.items() if k in modules},
            roll_deg=self.roll,
            localisation=self.placement.localisation,
        )
        return measure(self.volume, self._phantom_with(geometry), placement)

    def judge(
        self, geometry: dict[str, tuple[float, float, float]], adjusted: tuple[str, ...]
    ) -> CalibrationResult:
        """The result with ROIs at ``geometry`` (only the ``adjusted`` keys differ)."""
        from noctis_lab.hu import judge
        from noctis_lab.hu._measure import merge

        orig = self.result
        if not adjusted:
            return orig
        moved = {k: geometry[k] for k in adjusted}
        modules = {k.split("/", 1)[0] for k in adjusted}
        meas = merge(self._original_meas, self._measure(modules, moved), self.phantom)
        loc = orig.localisation
        loc = dataclasses.replace(
            loc,
            method=LocalisationMethod.MIXED if loc.method == "auto" else loc.method,
            notes=(*loc.notes, f"ROIs adjusted by hand in the ROI editor: {', '.join(adjusted)}"),
        )
        return judge(
            meas,
            self.phantom,
            self.profile,
            loc,
            baseline=self.baseline,
            scanner=orig.scanner,
            series_uid=orig.series_uid,
            study_uid=orig.study_uid,
            source=orig.source,
        )
