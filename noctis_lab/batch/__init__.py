"""Batch analysis of an archive of phantom series, on a local pool or a Dask cluster.

>>> from noctis_lab.batch import analyze_archive
>>> report = analyze_archive("data/demo")                      # doctest: +SKIP
>>> report.to_dataframe().groupby("outcome").size()             # doctest: +SKIP

Every series is analysed and recorded in the calibration history by the worker
that analysed it (the history is safe under concurrent writers). A series that is
already in the history (same SeriesInstanceUID, phantom and profile) is skipped,
so a batch that was interrupted, or whose worker died, resumes where it stopped
and records nothing twice. A failing series is reported with its reason and does
not stop the batch.
"""

from __future__ import annotations

from noctis_lab.batch._archive import analyze_archive, find_series_folders
from noctis_lab.batch._report import BatchReport, SeriesOutcome

#: The public API: :func:`analyze_archive` (walk, analyse, record) and its report
#: (:class:`BatchReport` of :class:`SeriesOutcome`), and :func:`find_series_folders`.
__all__ = ["BatchReport", "SeriesOutcome", "analyze_archive", "find_series_folders"]
