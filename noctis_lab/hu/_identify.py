"""Which phantom is in a series: identified from the images, with the evidence.

For every built-in phantom whose reference module has an insert ring, the ring is
looked for (:func:`noctis_lab.hu._find.scan_ring`) and, where found, fitted on the
best slice. The candidate is then scored by how well its *layout* explains the ring:
the CT number measured at each of its inserts and at each empty position of its
ring (where a phantom of the same family has an insert and this one has none) is
correlated with what the candidate says is there (the insert's nominal value, or
the background); an insert like its background (a water vial) is no evidence either
way. A CatPhan 604 scan therefore scores low as a 504 (bone where the
504 has nothing) and a 504 scan low as a 604 (nothing where the 604 has bone).

Candidates whose layouts score alike (CatPhan 503, 504 and 600 share one CTP404
pattern up to a half turn) are told apart by their other modules: a uniform module
found uniform at the phantom's own offset counts for it, one found not uniform
there counts against it. A series with no insert ring whose slices show a uniform
cylinder of a uniform phantom's diameter is that phantom. When the evidence does
not single out one phantom, :class:`PhantomNotFoundError` lists the candidates and
their scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from noctis_lab._errors import PhantomNotFoundError
from noctis_lab.dicom._volume import Volume
from noctis_lab.hu._find import (
    BODY_HU,
    Coarse,
    body_circle,
    body_level,
    body_start,
    coarse_grid,
    fit_inserts,
    ring_inserts,
    sample_slices,
    scan_ring,
    uniform_content,
)
from noctis_lab.hu._measure import roi_offsets
from noctis_lab.hu._phantoms import Phantom, list_phantoms, load_phantom

__all__ = ["Candidate", "Identification", "identify"]

#: Layout scores closer than this are a tie, broken by the other modules.
TIE = 0.03
#: Inserts within this many HU of their module's background cannot be seen, so their
#: positions are no evidence for or against a layout (a 600's water vial, full or empty).
INVISIBLE_HU = 20.0
#: A layout must explain the ring at least this well to be a candidate at all.
MIN_LAYOUT = 0.8


@dataclass(frozen=True)
class Candidate:
    """One phantom considered, with its scores and the evidence in words."""

    name: str
    title: str
    layout: float
    modules: int
    evidence: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary."""
        return {
            "name": self.name,
            "title": self.title,
            "layout": None if math.isnan(self.layout) else self.layout,
            "modules": self.modules,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Identification:
    """The phantom identified in a series and the candidates weighed."""

    phantom: str
    evidence: str
    candidates: tuple[Candidate, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary."""
        return {
            "phantom": self.phantom,
            "evidence": self.evidence,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _ring_points(ph: Phantom) -> tuple[list[float], list[float], list[str]]:
    """Angles and expected HU of the ring's inserts and empty positions, with labels."""
    ref = ph.module()
    ring, _ = ring_inserts(ref)
    angles = sorted(r.angle_deg for r in ring if r.angle_deg is not None)
    gaps = np.diff(np.array([*angles, angles[0] + 360.0]))
    step = float(min(g for g in gaps if g > 1.0)) if len(angles) > 1 else 30.0
    ang: list[float] = []
    exp: list[float] = []
    lab: list[str] = []
    for r in ring:
        assert r.angle_deg is not None and r.nominal_hu is not None
        if abs(r.nominal_hu - ref.background_hu) < INVISIBLE_HU:
            continue  # an insert like its background (a water vial, often empty) tells nothing
        ang.append(r.angle_deg)
        exp.append(r.nominal_hu)
        lab.append(r.name)
    for k in range(round(360.0 / step)):
        a = angles[0] + k * step
        if min(abs((a - b + 180.0) % 360.0 - 180.0) for b in angles) > 0.5 * step:
            ang.append(a)
            exp.append(ref.background_hu)
            lab.append(f"empty@{a % 360:.0f}")
    return ang, exp, lab


def _disk_mean(img: np.ndarray, x: float, y: float, r_mm: float, dy: float, dx: float) -> float:
    """Mean of the pixels whose centres lie within ``r_mm`` of (x, y); NaN off the image.

    The pixel rule is the ROIs' own (:func:`noctis_lab.hu._measure.roi_offsets`).
    """
    ny, nx = img.shape
    ix, iy = math.floor(x), math.floor(y)
    oy, ox = roi_offsets(r_mm / dx, r_mm / dy, x - ix, y - iy)
    rows, cols = iy + oy, ix + ox
    ok = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    return float(img[rows[ok], cols[ok]].mean()) if ok.any() else math.nan


def _layout_score(
    vol: Volume, c: Coarse, ph: Phantom
) -> tuple[float, str, float, tuple[float, float]]:
    """How well the phantom's ring layout explains the series; evidence, z and centre."""
    ref = ph.module()
    ring, radius = ring_inserts(ref)
    scan = scan_ring(c, sample_slices(c, vol.slice_positions, ref.thickness_mm), ref)
    nowhere = (math.nan, math.nan)
    if scan is None:
        return math.nan, "no slice holds material", math.nan, nowhere
    k = int(np.argmax(scan.strength))
    if not (scan.corr[k] >= 0.6 and scan.amp[k] >= 0.25):
        why = f"no {ref.name} ring (best pattern correlation {scan.corr[k]:.2f})"
        return math.nan, why, math.nan, nowhere
    s = int(scan.slices[k])
    img = np.asarray(vol.hu[s], dtype=np.float32)
    level = body_level(img, default=0.0)
    _, dy, dx = vol.spacing
    start = (float(scan.centre[k, 0]), float(scan.centre[k, 1]))
    fit = fit_inserts(
        img, level, ring, ref.background_hu, start, float(scan.roll[k]), float(scan.amp[k]), dy, dx
    )
    centre, roll = (fit.centre, fit.roll) if fit is not None else (start, float(scan.roll[k]))
    reach = 0.6 * min(r.reach_mm for r in ring)
    ang, exp, _ = _ring_points(ph)
    meas = []
    for a in ang:
        t = math.radians(a + roll)
        meas.append(
            _disk_mean(
                img,
                centre[0] + radius * math.cos(t) / dx,
                centre[1] + radius * math.sin(t) / dy,
                reach,
                dy,
                dx,
            )
        )
    m, e = np.asarray(meas), np.asarray(exp)
    ok = np.isfinite(m)
    if ok.sum() < 4:
        return math.nan, f"{ref.name} ring outside the image", math.nan, nowhere
    r = float(np.corrcoef(m[ok], e[ok])[0, 1])
    return (
        r,
        f"{ref.name} ring on slice {s}: layout correlation {r:.3f} over {int(ok.sum())} positions",
        float(vol.slice_positions[s]),
        centre,
    )


def _module_score(
    vol: Volume, c: Coarse, ph: Phantom, z_ref: float, centre: tuple[float, float]
) -> tuple[int, str]:
    """+1 per uniform module uniform at its offset, -1 per one seen there but not uniform.

    Either z direction counts (a phantom set up the other way round); a module with
    no slice at its offset in either direction counts 0.
    """
    pos = np.asarray(vol.slice_positions, dtype=np.float64)
    score, said = 0, []
    for m in ph.modules:
        if m.kind != "uniformity" or m.name == ph.reference_module:
            continue
        seen: list[int] = []
        for sign in (1.0, -1.0):
            z = z_ref + sign * m.z_offset_mm
            idx = np.flatnonzero(np.abs(pos - z) <= 0.4 * m.thickness_mm).astype(np.intp)
            idx = idx[c.material[idx] > 0.05]
            if idx.size == 0:
                continue
            flags, _ = uniform_content(c, idx, centre, 0.6 * min(ph.body.half_axes_mm))
            seen.append(1 if flags.mean() >= 0.5 else -1)
        if seen:
            best = max(seen)
            score += best
            said.append(
                f"{m.name} {'uniform' if best > 0 else 'not uniform'} at {m.z_offset_mm:+.0f} mm"
            )
    return score, "; ".join(said)


def _uniform_cylinders(vol: Volume, c: Coarse, names: list[str]) -> list[Candidate]:
    """Uniform phantoms (a uniform reference module) whose diameter the series shows."""
    body = np.flatnonzero(c.material > 0.05)
    if body.size == 0:
        return []
    s = int(body[body.size // 2])
    start = body_start(c, s)
    circle = body_circle(c, s, start, None) if start is not None else None
    if circle is None:
        return []
    out = []
    for name in names:
        ph = load_phantom(name)
        if ring_inserts(ph.module())[0]:
            continue
        expect = min(ph.body.half_axes_mm)
        if abs(circle.radius_mm - expect) > 0.1 * expect:
            continue
        flags, _ = uniform_content(c, body.astype(np.intp), circle.centre, 0.8 * expect)
        if flags.mean() >= 0.8:
            out.append(
                Candidate(
                    ph.name,
                    ph.title,
                    1.0,
                    0,
                    f"a uniform cylinder {2 * circle.radius_mm:.0f} mm across on "
                    f"{int(flags.sum())} of {body.size} slices, no insert ring",
                )
            )
    return out


def identify(vol: Volume, coarse: Coarse | None = None) -> Identification:
    """Identify the built-in phantom shown in ``vol``.

    Parameters
    ----------
    vol : Volume
        The series.
    coarse : Coarse, optional
        The series on the coarse grid, if already computed.

    Returns
    -------
    Identification
        The phantom's name, the evidence in words and every candidate weighed.

    Raises
    ------
    PhantomNotFoundError
        No built-in phantom explains the series, or several explain it equally well
        (the message lists them with their scores; give ``phantom=`` / ``--phantom``).
    """
    c = coarse if coarse is not None else coarse_grid(vol)
    if not (c.material > 0.01).any():
        raise PhantomNotFoundError(
            f"no phantom body: no slice holds material (nothing above {BODY_HU:.0f} HU); "
            "is this an air scan?"
        )
    names = list_phantoms()
    cands: list[Candidate] = []
    for name in names:
        ph = load_phantom(name)
        if not ring_inserts(ph.module())[0]:
            continue
        layout, why, z, centre = _layout_score(vol, c, ph)
        if math.isnan(layout):
            cands.append(Candidate(ph.name, ph.title, math.nan, 0, why))
            continue
        mods, mwhy = _module_score(vol, c, ph, z, centre)
        cands.append(
            Candidate(ph.name, ph.title, layout, mods, why + (f"; {mwhy}" if mwhy else ""))
        )
    viable = [k for k in cands if not math.isnan(k.layout) and k.layout >= MIN_LAYOUT]
    if not viable:
        uniform = _uniform_cylinders(vol, c, names)
        if len(uniform) == 1:
            return Identification(uniform[0].name, uniform[0].evidence, (*uniform, *cands))
        cands = [*uniform, *cands]
        raise PhantomNotFoundError(_no_match(cands, bool(uniform)))
    top = max(k.layout for k in viable)
    tied = [k for k in viable if k.layout >= top - TIE]
    best_mod = max(k.modules for k in tied)
    tied = [k for k in tied if k.modules == best_mod]
    if len(tied) == 1:
        k = tied[0]
        return Identification(k.name, f"{k.title}: {k.evidence}", tuple(cands))
    raise PhantomNotFoundError(
        "cannot tell which phantom this is: "
        + "; ".join(f"{k.name} ({k.evidence})" for k in tied)
        + " fit equally well; give the phantom (--phantom NAME on the command line, "
        "phantom= in Python)"
    )


def _no_match(cands: list[Candidate], ambiguous_uniform: bool) -> str:
    listed = "; ".join(
        f"{k.name}: {k.evidence}" + ("" if math.isnan(k.layout) else f" (score {k.layout:.2f})")
        for k in cands
    )
    head = (
        "cannot tell which uniform phantom this is"
        if ambiguous_uniform
        else "no QA phantom found: no built-in phantom's layout explains the series"
    )
    return (
        f"{head} ({listed}); if it is a phantom, give it (--phantom NAME on the command line, "
        "phantom= in Python)"
    )
