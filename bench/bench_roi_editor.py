"""ROI editor: time from moving one ROI (setting the ``rois`` trait) to the new table.

Ours: :class:`noctis_lab.widgets.RoiEditor` re-measures only the module of the moved
ROI with the analysis' own measurement code and re-runs the profile's checks.
Peer: what a widget without that would do on every move -- the full
:func:`noctis_lab.hu.analyze` of the series (locate, measure, check, advise).

Series: a synthetic CatPhan 604, 512 x 512 at 0.5 mm, 2 mm slices, 10 HU noise.
Prints the median of N moves for both, and the ratio.
"""

from __future__ import annotations

import statistics
import sys
import time


def main(n: int = 30) -> int:
    from noctis_lab.hu import analyze
    from noctis_lab.hu.synthetic import generate
    from noctis_lab.widgets import RoiEditor

    series = generate("catphan604", matrix=512, pixel_size_mm=0.5, noise_sd_hu=10.0, seed=3)
    vol = series.volume
    result = analyze(vol, "catphan604", "seed")
    editor = RoiEditor(result, volume=vol)
    print(f"series {vol!r}; {len(result.rois)} ROIs")

    ours = []
    for i in range(n):
        rois = [dict(r) for r in editor.rois]
        roi = next(r for r in rois if r["key"] == "CTP404/air_top")
        roi["x_mm"] += 0.5 if i % 2 == 0 else -0.5  # a drag step of one pixel
        before = editor.rows
        t0 = time.perf_counter()
        editor.rois = rois  # what the browser's drag sends
        dt = time.perf_counter() - t0
        if editor.rows is before:
            print("error: the table trait did not update", file=sys.stderr)
            return 1
        ours.append(dt)

    peer = []
    for _ in range(max(5, n // 3)):
        t0 = time.perf_counter()
        analyze(vol, "catphan604", "seed")
        peer.append(time.perf_counter() - t0)

    o, p = statistics.median(ours), statistics.median(peer)
    print(f"ours  RoiEditor move -> table : median {o * 1e3:7.1f} ms over {len(ours)} moves")
    print(f"peer  full analyze() per move : median {p * 1e3:7.1f} ms over {len(peer)} runs")
    print(
        f"ratio peer/ours: {p / o:.1f}x faster; target < 50 ms: {'met' if o < 0.05 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
