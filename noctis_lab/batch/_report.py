"""What a batch gives: one :class:`SeriesOutcome` per series, gathered in a :class:`BatchReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BatchReport", "Outcome", "SeriesOutcome"]

Outcome = Literal["recorded", "skipped", "failed"]


@dataclass(frozen=True)
class SeriesOutcome:
    """What happened to one series of the batch."""

    path: str
    outcome: Outcome
    phantom: str
    series_uid: str = ""
    scanner: str = ""
    status: str = ""
    record_id: int | None = None
    error: str = ""
    seconds: float = 0.0
    worker: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class BatchReport:
    """The outcome of every series, and the batch's wall time."""

    root: str
    outcomes: tuple[SeriesOutcome, ...]
    seconds: float
    executor: str

    def count(self, outcome: Outcome) -> int:
        """How many series ended with ``outcome``."""
        return sum(o.outcome == outcome for o in self.outcomes)

    @property
    def recorded(self) -> int:
        """Series analysed and recorded by this run."""
        return self.count("recorded")

    @property
    def skipped(self) -> int:
        """Series already in the history, left alone."""
        return self.count("skipped")

    @property
    def failed(self) -> tuple[SeriesOutcome, ...]:
        """Series that could not be analysed, with their reasons."""
        return tuple(o for o in self.outcomes if o.outcome == "failed")

    @property
    def series_per_second(self) -> float:
        """Throughput over the whole batch."""
        return len(self.outcomes) / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "root": self.root,
            "seconds": self.seconds,
            "executor": self.executor,
            "recorded": self.recorded,
            "skipped": self.skipped,
            "failed": len(self.failed),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per series."""
        import pandas as pd

        return pd.DataFrame([o.to_dict() for o in self.outcomes])

    def __str__(self) -> str:
        """One summary line, then one line per failed series."""
        lines = [
            f"{len(self.outcomes)} series in {self.seconds:.1f} s ({self.executor}): "
            f"{self.recorded} recorded, {self.skipped} already recorded, "
            f"{len(self.failed)} failed"
        ]
        lines += [f"  failed: {o.path}: {o.error}" for o in self.failed]
        return "\n".join(lines)
