"""What a report run produced: :class:`ReportOutput` and the summary JSON beside it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

__all__ = ["SUMMARY_NAME", "ReportKind", "ReportOutput", "RunStatus", "write_facts"]

#: File name of the machine-readable summary written beside every report.
SUMMARY_NAME = "summary.json"

ReportKind = Literal["hu", "ai"]
RunStatus = Literal["ok", "error"]


@dataclass(frozen=True)
class ReportOutput:
    """The outcome of one report run (also written as ``summary.json``).

    Attributes
    ----------
    kind : {"hu", "ai"}
        Which report.
    status : {"ok", "error"}
        ``ok`` when the notebook ran and the HTML was written; ``error`` otherwise.
    verdict : str or None
        The report's overall verdict: ``pass`` / ``warning`` / ``fail`` for HU,
        ``healthy`` / ``degraded`` / ... for AI; ``None`` when the run failed.
    out_dir : str
        The folder holding this run's files (``OUT/<kind>/<YYYY-MM-DD>[_<selection>]``).
    notebook, html, pdf, summary : str or None
        Paths of the executed notebook, the HTML, the PDF (``None`` when skipped) and the
        summary JSON.
    parameters : dict
        The notebook parameters of the run.
    scanners, models : tuple of str
        What the report covers.
    period : dict
        ``{"since": ..., "until": ...}`` (ISO dates or ``None``).
    counts : dict
        Report-specific counts (e.g. calibrations per status, failed checks).
    started_at : str
        ISO 8601 time the run began (UTC).
    duration_s : float
        Wall-clock duration of the run.
    error : str or None
        One clear line saying why the report could not be made.
    notes : tuple of str
        Things a reader should know (e.g. why the PDF was skipped, a failed chat post).
    posted_to : str or None
        The chat room the one-line summary went to.
    """

    kind: ReportKind
    status: RunStatus
    verdict: str | None
    out_dir: str
    notebook: str | None
    html: str | None
    pdf: str | None
    summary: str
    parameters: dict[str, Any] = field(default_factory=dict)
    scanners: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    period: dict[str, str | None] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0
    error: str | None = None
    notes: tuple[str, ...] = ()
    posted_to: str | None = None

    @property
    def ok(self) -> bool:
        """True when the report was made."""
        return self.status == "ok"

    def one_line(self) -> str:
        """A one-line human summary (used for the chat post and the CLI)."""
        what = ", ".join(self.scanners or self.models) or "all"
        if not self.ok:
            return f"{self.kind.upper()} report ({what}) FAILED: {self.error}"
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if isinstance(v, int))
        tail = f" ({counts})" if counts else ""
        return f"{self.kind.upper()} report ({what}): {self.verdict}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = asdict(self)
        d["scanners"] = list(self.scanners)
        d["models"] = list(self.models)
        d["notes"] = list(self.notes)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportOutput:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["scanners"] = tuple(d.get("scanners") or ())
        d["models"] = tuple(d.get("models") or ())
        d["notes"] = tuple(d.get("notes") or ())
        return cls(**d)

    @classmethod
    def read(cls, path: str | Path) -> ReportOutput:
        """Read a ``summary.json``."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def write_facts(path: str | PathLike[str] | None, facts: Mapping[str, Any]) -> None:
    """Write a report's facts for the runner (called by the report notebooks' last cell)."""
    if path is None:
        return
    Path(path).write_text(json.dumps(dict(facts), default=str), encoding="utf-8")
