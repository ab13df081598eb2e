"""The calibration history: an append-only store of HU calibrations, with trends and drift.

>>> from noctis_lab.hu.history import CalibrationHistory
>>> history = CalibrationHistory()            # data/noctis.db, or $NOCTIS_DB_URL
>>> rid = history.record(result, operator="A. Physicist")
>>> history.review(rid, reviewer="B. Lead", decision="approved")
>>> history.scanners()                        # status, overdue, drift per scanner
>>> history.trend("GE/Revolution/123", material="Teflon")
>>> history.drift("GE/Revolution/123")        # DriftResult per material
>>> history.plot_trend("GE/Revolution/123")   # matplotlib Figure

Storage is SQLAlchemy: a SQLite file by default (``data/noctis.db`` under
``NOCTIS_HOME`` or the current directory), any SQLAlchemy URL (PostgreSQL) through
``url=`` or the ``NOCTIS_DB_URL`` variable. The schema is migrated with Alembic
when the history is opened; nobody runs ``alembic`` by hand.

Nothing is changed or deleted: a correction is a new record that ``supersedes``
the old one (trends then show the correction in its place, the old row stays),
and a review is a row that ``reviews`` a record. Both the ORM (event hooks) and
the database (triggers) refuse ``UPDATE`` and ``DELETE``.

A scanner counts as **overdue** when its latest calibration is older than
``overdue_after_days`` (default 35: monthly CatPhan-style QA, AAPM TG-66's
monthly check of several materials, with a few days' grace). Set it to 1 for
daily water checks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import String, Table, func, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from noctis_lab._errors import HistoryError
from noctis_lab.dicom import parse_datetime
from noctis_lab.hu._drift import DriftResult, detect_drift
from noctis_lab.hu._history_db import default_url, open_engine, retrying, upgrade, write_transaction
from noctis_lab.hu._history_schema import Base, CalibrationRow, CheckRow, ReviewRow, RoiRow
from noctis_lab.quality import Status
from noctis_lab.records import append
from noctis_lab.records._chain import chain_lock

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from noctis_lab.hu._result import CalibrationResult

__all__ = [
    "DECISIONS",
    "DEFAULT_OVERDUE_DAYS",
    "AlreadyRecordedWarning",
    "CalibrationHistory",
    "DriftResult",
    "HistoryRecord",
    "Review",
    "default_url",
    "detect_drift",
    "plot_trend",
]

#: Days after the latest calibration before a scanner is flagged overdue (monthly QA + grace).
DEFAULT_OVERDUE_DAYS = 35.0
#: The decisions a review may record.
DECISIONS: tuple[str, ...] = ("approved", "rejected", "needs-repeat")

Decision = Literal["approved", "rejected", "needs-repeat"]
TimeLike = datetime | date | str


# --------------------------------------------------------------------------- times
def _naive_utc(dt: datetime) -> datetime:
    """Naive UTC (how times are stored): aware times are converted, naive ones kept."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=UTC)


def _parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 or DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) string as naive UTC."""
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    try:
        return _naive_utc(datetime.fromisoformat(s.replace("Z", "+00:00")))
    except ValueError:
        pass
    dt = parse_datetime(s)
    return None if dt is None else _naive_utc(dt)


def _as_time(value: TimeLike, what: str) -> datetime:
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    parsed = _parse_time(value)
    if parsed is None:
        raise HistoryError(
            f"{what}={value!r} is not a date or time (use ISO 8601, e.g. 2026-01-31)"
        )
    return parsed


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Review:
    """A review of a recorded calibration."""

    id: int
    record_id: int
    reviewer: str
    decision: str
    comment: str
    reviewed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = dataclasses.asdict(self)
        d["reviewed_at"] = self.reviewed_at.isoformat()
        return d


@dataclass(frozen=True)
class HistoryRecord:
    """One stored calibration (or correction), with its reviews and the full result.

    Attributes
    ----------
    id : int
        Record id.
    kind : str
        ``calibration`` or ``correction``.
    scanner : str
        The scanner key (``manufacturer/model/serial``).
    phantom, profile, profile_version : str
        As in the result.
    status : Status
        As in the result (an enum member; ``to_dict`` gives its value).
    operator, notes : str
        Who recorded it, and their notes.
    reason : str
        Why a correction was made (empty for a calibration).
    baseline : bool
        Marked as the scanner's commissioning/baseline record.
    recorded_at : datetime
        When it was stored (UTC).
    acquired_at : datetime or None
        When the series was acquired (UTC as stored; from the DICOM).
    series_uid, source : str
        SeriesInstanceUID and where the images came from.
    supersedes : int or None
        The record a correction replaces.
    superseded_by : int or None
        The correction that replaces this record, if any.
    reviews : tuple of Review
        Oldest first.
    result : CalibrationResult
        The full result, rebuilt from the stored JSON.
    """

    id: int
    kind: str
    scanner: str
    phantom: str
    profile: str
    profile_version: str
    status: Status
    operator: str
    notes: str
    reason: str
    baseline: bool
    recorded_at: datetime
    acquired_at: datetime | None
    series_uid: str
    source: str
    supersedes: int | None
    superseded_by: int | None
    reviews: tuple[Review, ...]
    result: CalibrationResult

    @property
    def current(self) -> bool:
        """True unless a correction replaced this record."""
        return self.superseded_by is None

    @property
    def decision(self) -> str | None:
        """The latest review decision, or None if never reviewed."""
        return self.reviews[-1].decision if self.reviews else None

    @property
    def time(self) -> datetime:
        """Acquisition time when known, else the time it was recorded."""
        return self.acquired_at if self.acquired_at is not None else self.recorded_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the result nested under ``result``)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["status"] = self.status.value
        d["recorded_at"] = self.recorded_at.isoformat()
        d["acquired_at"] = None if self.acquired_at is None else self.acquired_at.isoformat()
        d["reviews"] = [r.to_dict() for r in self.reviews]
        d["result"] = self.result.to_dict()
        d["decision"] = self.decision
        return d

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str)


# --------------------------------------------------------------------------- helpers
def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HistoryError(f"{what} must be a non-empty text, got {value!r}")
    return value.strip()


def _roi_tolerance(roi: Any, checks: Sequence[Any]) -> tuple[float | None, float | None, str]:
    """The HU interval of the check that judged ``roi`` (kind ``hu``, else ``constancy_hu``).

    Only CT-number checks count: a uniformity check's interval is a difference
    from the centre, not an interval of the ROI's own HU.
    """
    key = f"{roi.module}/{roi.name}"
    best: Any = None
    for c in checks:
        if c.kind not in ("hu", "constancy_hu"):
            continue
        target = str(c.target)
        if not (target == key or target.startswith(key + " ")):
            continue
        if str(c.unit) != "HU" or (c.low is None and c.high is None):
            continue
        if best is None or (c.kind == "hu" and best.kind != "hu"):
            best = c
    if best is None:
        return None, None, ""
    return _finite(best.low), _finite(best.high), str(best.id)


def _require_result(result: Any) -> CalibrationResult:
    from noctis_lab.hu._result import CalibrationResult

    if not isinstance(result, CalibrationResult):
        raise HistoryError(
            f"the calibration history stores CalibrationResult objects, got {type(result).__name__}"
        )
    return result


def _calibration_values(
    result: CalibrationResult,
    *,
    kind: str,
    operator: str,
    notes: str,
    reason: str,
    baseline: bool,
    supersedes: int | None,
) -> dict[str, Any]:
    sc = result.scanner
    acquired = _parse_time(result.acquisition_datetime) or _parse_time(sc.acquisition_datetime)
    return {
        "kind": kind,
        "supersedes": supersedes,
        "reason": reason,
        "result_uid": result.id,
        "scanner_key": sc.key,
        "manufacturer": sc.manufacturer,
        "model": sc.model,
        "station": sc.station,
        "serial": sc.serial,
        "institution": sc.institution,
        "kvp": _finite(sc.kvp),
        "convolution_kernel": sc.convolution_kernel,
        "phantom": result.phantom,
        "phantom_title": result.phantom_title,
        "profile": result.profile,
        "profile_version": result.profile_version,
        "status": result.status,
        "operator": operator,
        "notes": notes,
        "baseline": bool(baseline),
        "recorded_at": _utcnow(),
        "acquired_at": acquired,
        "analysed_at": _parse_time(result.analysed_at),
        "series_uid": result.series_uid,
        "source": result.source,
        "result_json": result.to_json(indent=None),
    }


def _child_rows(result: CalibrationResult, cal_id: int) -> tuple[list[dict[str, Any]], ...]:
    rois = []
    for i, r in enumerate(result.rois):
        low, high, check_id = _roi_tolerance(r, result.checks)
        rois.append(
            {
                "calibration_id": cal_id,
                "position": i,
                "module": r.module,
                "name": r.name,
                "material": r.material,
                "role": r.role.value,
                "nominal": _finite(r.nominal_hu),
                "mean": _finite(r.mean),
                "median": _finite(r.median),
                "sd": _finite(r.sd),
                "sem": _finite(r.sem),
                "n_pixels": int(r.n_pixels),
                "deviation": _finite(r.deviation),
                "status": r.status,
                "low": low,
                "high": high,
                "check_id": check_id,
            }
        )
    checks = [
        {
            "calibration_id": cal_id,
            "position": i,
            "check_id": c.id,
            "kind": c.kind.value,
            "target": c.target,
            "measured": _finite(c.measured),
            "expected": _finite(c.expected),
            "low": _finite(c.low),
            "high": _finite(c.high),
            "deviation": _finite(c.deviation),
            "unit": c.unit,
            "status": c.status,
            "tolerance": c.tolerance,
            "source": c.source,
        }
        for i, c in enumerate(result.checks)
    ]
    return rois, checks


_CAL: Table = Base.metadata.tables[CalibrationRow.__tablename__]
_ROI: Table = Base.metadata.tables[RoiRow.__tablename__]
_CHK: Table = Base.metadata.tables[CheckRow.__tablename__]
_REV: Table = Base.metadata.tables[ReviewRow.__tablename__]


def _new_id(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """Append one row to its hash chain and return its id."""
    return append(conn, table, [values])[0]


class AlreadyRecordedWarning(UserWarning):
    """:meth:`CalibrationHistory.record` stored nothing: the series is already recorded."""


def _same_series(conn: Connection, values: dict[str, Any]) -> int | None:
    """The calibration record of the same series, phantom, profile and version, if any."""
    if not values["series_uid"]:
        return None
    hit = conn.execute(
        select(_CAL.c.id)
        .where(
            _CAL.c.kind == "calibration",
            _CAL.c.series_uid == values["series_uid"],
            _CAL.c.phantom == values["phantom"],
            _CAL.c.profile == values["profile"],
            _CAL.c.profile_version == values["profile_version"],
        )
        .order_by(_CAL.c.id)
        .limit(1)
    ).scalar()
    return None if hit is None else int(hit)


def _already_message(result: CalibrationResult, rid: int) -> str:
    version = f" {result.profile_version}" if result.profile_version else ""
    return (
        f"series {result.series_uid} ({result.phantom}, profile {result.profile}{version}) "
        f"is already recorded as record {rid}: nothing stored "
        f"(use correct({rid}, ...) to replace it, review({rid}, ...) to judge it)"
    )


_RECORD_COLUMNS = [
    "id",
    "time",
    "scanner",
    "phantom",
    "status",
    "decision",
    "kind",
    "supersedes",
    "superseded_by",
    "current",
    "baseline",
    "operator",
    "notes",
    "reason",
    "profile",
    "profile_version",
    "manufacturer",
    "model",
    "station",
    "serial",
    "recorded_at",
    "acquired_at",
    "series_uid",
    "source",
    "result_uid",
]

_TREND_COLUMNS = [
    "time",
    "record_id",
    "scanner",
    "phantom",
    "module",
    "roi",
    "material",
    "role",
    "nominal",
    "mean",
    "median",
    "sd",
    "sem",
    "n_pixels",
    "deviation",
    "status",
    "low",
    "high",
    "check_id",
    "record_status",
    "decision",
    "baseline",
    "profile",
    "profile_version",
]


# --------------------------------------------------------------------------- the store
class CalibrationHistory:
    """An append-only calibration history in a SQL database.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL. Default: ``NOCTIS_DB_URL``, else
        ``sqlite:///<NOCTIS_HOME or cwd>/data/noctis.db``.
    overdue_after_days : float
        Age of the latest calibration beyond which :meth:`scanners` flags a scanner
        overdue (default :data:`DEFAULT_OVERDUE_DAYS`, monthly QA).

    Raises
    ------
    HistoryError
        When the database cannot be opened or migrated.
    """

    def __init__(self, url: str | None = None, *, overdue_after_days: float = DEFAULT_OVERDUE_DAYS):
        if not overdue_after_days > 0:
            raise HistoryError(f"overdue_after_days must be positive, got {overdue_after_days}")
        self.overdue_after_days = float(overdue_after_days)
        self._engine = open_engine(url)
        self.url = self._engine.url.render_as_string(hide_password=True)
        try:
            self.revision = upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> CalibrationHistory:
        """Use as a context manager: the connections are released on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Release the database connections."""
        self.close()

    def __repr__(self) -> str:
        """The database URL (without password) and the schema revision."""
        return f"CalibrationHistory({self.url!r}, revision={self.revision!r})"

    # -- writing -------------------------------------------------------------------
    def _insert(
        self, values: dict[str, Any], result: CalibrationResult, what: str
    ) -> tuple[int, bool]:
        """Store a calibration or correction: (its id, True), or (the existing id, False)."""

        def write() -> tuple[int, bool]:
            with write_transaction(self._engine) as conn:
                chain_lock(conn, _CAL)  # the duplicate checks and the append see one state
                if values["kind"] == "calibration":
                    same = _same_series(conn, values)
                    if same is not None:
                        return same, False
                    dup = conn.execute(
                        select(_CAL.c.id).where(
                            _CAL.c.result_uid == values["result_uid"], _CAL.c.kind == "calibration"
                        )
                    ).first()
                    if dup is not None:
                        raise HistoryError(
                            f"result {values['result_uid']} is already recorded as record "
                            f"{dup[0]}; use correct({dup[0]}, ...) to replace it"
                        )
                cal_id = _new_id(conn, _CAL, values)
                rois, checks = _child_rows(result, cal_id)
                append(conn, _ROI, rois)
                append(conn, _CHK, checks)
                return cal_id, True

        try:
            return retrying(write, what=what)
        except IntegrityError as exc:
            raise HistoryError(f"cannot {what}: {exc.orig}") from exc

    def record(
        self, result: CalibrationResult, operator: str, notes: str = "", *, baseline: bool = False
    ) -> int:
        """Store a calibration result; returns its record id.

        Parameters
        ----------
        result : CalibrationResult
            The analysis to store (with every ROI and check).
        operator : str
            Who performed/recorded it.
        notes : str
            Free text.
        baseline : bool
            Mark it as the scanner's commissioning/baseline record (drift detection
            then judges later records against the marked ones).

        Returns
        -------
        int
            The new record's id; or, when this series is already recorded with the same
            phantom, profile and profile version, that record's id: nothing is stored
            and an :class:`AlreadyRecordedWarning` says so (a re-run notebook or batch
            never duplicates a calibration; use :meth:`correct` to replace one).

        Raises
        ------
        HistoryError
            For a missing operator, a result already recorded, or a database failure.
        """
        result = _require_result(result)
        operator = _check_text(operator, "operator")
        values = _calibration_values(
            result,
            kind="calibration",
            operator=operator,
            notes=str(notes or ""),
            reason="",
            baseline=baseline,
            supersedes=None,
        )
        rid, stored = self._insert(
            values, result, f"record result {result.id} of {result.scanner.key}"
        )
        if not stored:  # the same series, phantom and profile: a no-op
            warnings.warn(_already_message(result, rid), AlreadyRecordedWarning, stacklevel=2)
        return rid

    def recorded_as(self, result: CalibrationResult) -> int | None:
        """The record that already holds this series with this phantom and profile, if any.

        The same SeriesInstanceUID analysed with the same phantom, profile and profile
        version is one calibration: :meth:`record` stores it once and afterwards
        returns this id (with an :class:`AlreadyRecordedWarning`).
        """
        result = _require_result(result)
        values = _calibration_values(
            result,
            kind="calibration",
            operator="-",
            notes="",
            reason="",
            baseline=False,
            supersedes=None,
        )
        with self._engine.connect() as conn:
            return _same_series(conn, values)

    def correct(self, record_id: int, result: CalibrationResult, operator: str, reason: str) -> int:
        """Store ``result`` as a correction of record ``record_id``; returns the new id.

        The old record stays in the table; trends and :meth:`latest` show the
        correction in its place. Only the newest version may be corrected.

        Parameters
        ----------
        record_id : int
            The record corrected (its newest version).
        result : CalibrationResult
            The corrected result.
        operator : str
            Who corrects it.
        reason : str
            Why (required).

        Raises
        ------
        HistoryError
            When the record does not exist, was already corrected, or the reason is empty.
        """
        result = _require_result(result)
        operator = _check_text(operator, "operator")
        reason = _check_text(reason, "reason")
        with self._engine.connect() as conn:
            old = self._row(conn, record_id)
            newer = conn.execute(select(_CAL.c.id).where(_CAL.c.supersedes == record_id)).first()
        if newer is not None:
            raise HistoryError(
                f"record {record_id} was already corrected by record {newer[0]}; "
                f"correct record {newer[0]} instead"
            )
        values = _calibration_values(
            result,
            kind="correction",
            operator=operator,
            notes="",
            reason=reason,
            baseline=bool(old["baseline"]),
            supersedes=int(record_id),
        )
        return self._insert(values, result, f"record a correction of record {record_id}")[0]

    def review(self, record_id: int, reviewer: str, decision: Decision, comment: str = "") -> int:
        """Record a review of record ``record_id``; returns the review id.

        Parameters
        ----------
        decision : {"approved", "rejected", "needs-repeat"}
            Rejected records are left out of drift detection (still shown in trends).
        """
        reviewer = _check_text(reviewer, "reviewer")
        if decision not in DECISIONS:
            raise HistoryError(
                f"review decision must be one of {list(DECISIONS)}, got {decision!r}"
            )
        with self._engine.connect() as conn:
            self._row(conn, record_id)
        values = {
            "reviews": int(record_id),
            "reviewer": reviewer,
            "decision": decision,
            "comment": str(comment or ""),
            "reviewed_at": _utcnow(),
        }

        def write() -> int:
            with write_transaction(self._engine) as conn:
                return _new_id(conn, _REV, values)

        return retrying(write, what=f"record a review of record {record_id}")

    # -- reading -------------------------------------------------------------------
    def _row(self, conn: Connection, record_id: int) -> dict[str, Any]:
        if isinstance(record_id, bool) or not isinstance(record_id, int):
            raise HistoryError(f"record id must be an integer, got {record_id!r}")
        row = conn.execute(select(_CAL).where(_CAL.c.id == record_id)).mappings().first()
        if row is None:
            last = conn.execute(select(func.max(_CAL.c.id))).scalar()
            raise HistoryError(
                f"no calibration record {record_id} in {self.url} "
                f"(records go from 1 to {last or 0})"
            )
        return dict(row)

    def get(self, record_id: int) -> HistoryRecord:
        """The record ``record_id`` with its reviews and the rebuilt result.

        Raises
        ------
        HistoryError
            When there is no such record.
        """
        from noctis_lab.hu._result import CalibrationResult

        with self._engine.connect() as conn:
            row = self._row(conn, record_id)
            newer = conn.execute(select(_CAL.c.id).where(_CAL.c.supersedes == record_id)).first()
            reviews = conn.execute(
                select(_REV).where(_REV.c.reviews == record_id).order_by(_REV.c.id)
            ).mappings()
            review_objs = tuple(
                Review(
                    id=int(r["id"]),
                    record_id=int(r["reviews"]),
                    reviewer=str(r["reviewer"]),
                    decision=str(r["decision"]),
                    comment=str(r["comment"]),
                    reviewed_at=_aware(r["reviewed_at"]) or r["reviewed_at"],
                )
                for r in reviews
            )
        try:
            result = CalibrationResult.from_json(row["result_json"])
        except (KeyError, TypeError, ValueError) as exc:
            raise HistoryError(
                f"record {record_id}: the stored result cannot be read: {exc}"
            ) from exc
        return HistoryRecord(
            id=int(row["id"]),
            kind=str(row["kind"]),
            scanner=str(row["scanner_key"]),
            phantom=str(row["phantom"]),
            profile=str(row["profile"]),
            profile_version=str(row["profile_version"]),
            status=Status.parse(row["status"]),
            operator=str(row["operator"]),
            notes=str(row["notes"]),
            reason=str(row["reason"]),
            baseline=bool(row["baseline"]),
            recorded_at=_aware(row["recorded_at"]) or row["recorded_at"],
            acquired_at=_aware(row["acquired_at"]),
            series_uid=str(row["series_uid"]),
            source=str(row["source"]),
            supersedes=None if row["supersedes"] is None else int(row["supersedes"]),
            superseded_by=None if newer is None else int(newer[0]),
            reviews=review_objs,
            result=result,
        )

    def __len__(self) -> int:
        """Number of calibration records (corrections included)."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_CAL)).scalar() or 0)

    def _known_scanner(self, conn: Connection, scanner: str) -> None:
        hit = conn.execute(select(_CAL.c.id).where(_CAL.c.scanner_key == scanner).limit(1)).first()
        if hit is None:
            known = conn.execute(select(_CAL.c.scanner_key).distinct().limit(11)).scalars().all()
            listing = ", ".join(map(repr, known[:10])) + (" ..." if len(known) > 10 else "")
            raise HistoryError(
                f"no calibration of scanner {scanner!r} in {self.url}; "
                f"scanners recorded: {listing or 'none'}"
            )

    def records(
        self,
        scanner: str | None = None,
        phantom: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        *,
        current_only: bool = False,
    ) -> pd.DataFrame:
        """One row per stored record (corrections included), oldest first.

        ``time`` is the acquisition time when known, else the recording time;
        ``decision`` is the latest review; ``current`` is False for a record that a
        correction replaced.

        Parameters
        ----------
        scanner : str, optional
            One scanner (its key, serial or station name).
        phantom : str, optional
            One phantom.
        since, until : datetime, date or str, optional
            The period, on ``time`` (inclusive).
        current_only : bool
            Leave out the records that a correction replaced.
        """
        import pandas as pd

        time_col = func.coalesce(_CAL.c.acquired_at, _CAL.c.recorded_at)
        stmt = select(_CAL).order_by(time_col, _CAL.c.id)
        if scanner is not None:
            stmt = stmt.where(_CAL.c.scanner_key == scanner)
        if phantom is not None:
            stmt = stmt.where(_CAL.c.phantom == phantom)
        if since is not None:
            stmt = stmt.where(time_col >= _as_time(since, "since"))
        if until is not None:
            stmt = stmt.where(time_col <= _as_time(until, "until"))
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
            succ = {
                int(old): int(new)
                for old, new in conn.execute(
                    select(_CAL.c.supersedes, _CAL.c.id).where(_CAL.c.supersedes.is_not(None))
                )
            }
            decisions = self._decisions(conn)
        out = []
        for r in rows:
            rid = int(r["id"])
            nxt = succ.get(rid)
            if current_only and nxt is not None:
                continue
            out.append(
                {
                    "id": rid,
                    "time": r["acquired_at"] or r["recorded_at"],
                    "scanner": r["scanner_key"],
                    "phantom": r["phantom"],
                    "status": r["status"],
                    "decision": decisions.get(rid),
                    "kind": r["kind"],
                    "supersedes": r["supersedes"],
                    "superseded_by": nxt,
                    "current": nxt is None,
                    "baseline": bool(r["baseline"]),
                    "operator": r["operator"],
                    "notes": r["notes"],
                    "reason": r["reason"],
                    "profile": r["profile"],
                    "profile_version": r["profile_version"],
                    "manufacturer": r["manufacturer"],
                    "model": r["model"],
                    "station": r["station"],
                    "serial": r["serial"],
                    "recorded_at": r["recorded_at"],
                    "acquired_at": r["acquired_at"],
                    "series_uid": r["series_uid"],
                    "source": r["source"],
                    "result_uid": r["result_uid"],
                }
            )
        df = pd.DataFrame(out, columns=_RECORD_COLUMNS)
        for col in ("time", "recorded_at", "acquired_at"):
            df[col] = pd.to_datetime(df[col], utc=True)
        for col in ("supersedes", "superseded_by"):
            df[col] = df[col].astype("Int64")
        return df

    def find_series(
        self, series_uid: str, phantom: str | None = None, profile: str | None = None
    ) -> list[int]:
        """Ids of the calibration records of one series (oldest first).

        Batch runs use it to record a series once only, so a resumed or retried
        batch never records the same series twice.
        """
        stmt = (
            select(_CAL.c.id)
            .where(_CAL.c.series_uid == series_uid, _CAL.c.kind == "calibration")
            .order_by(_CAL.c.id)
        )
        if phantom is not None:
            stmt = stmt.where(_CAL.c.phantom == phantom)
        if profile is not None:
            stmt = stmt.where(_CAL.c.profile == profile)
        with self._engine.connect() as conn:
            return [int(i) for i in conn.execute(stmt).scalars()]

    @staticmethod
    def _decisions(conn: Connection, ids: Iterable[int] | None = None) -> dict[int, str]:
        stmt = select(_REV.c.reviews, _REV.c.decision).order_by(_REV.c.id)
        if ids is not None:
            stmt = stmt.where(_REV.c.reviews.in_(list(ids)))
        return {int(rid): str(dec) for rid, dec in conn.execute(stmt)}

    def latest(self, scanner: str, phantom: str | None = None) -> HistoryRecord:
        """The newest current (not superseded) record of ``scanner``.

        Raises
        ------
        HistoryError
            When the scanner has no record (the message lists the recorded scanners).
        """
        time_col = func.coalesce(_CAL.c.acquired_at, _CAL.c.recorded_at)
        superseded = select(_CAL.c.supersedes).where(_CAL.c.supersedes.is_not(None))
        stmt = (
            select(_CAL.c.id)
            .where(_CAL.c.scanner_key == scanner, _CAL.c.id.not_in(superseded))
            .order_by(time_col.desc(), _CAL.c.id.desc())
            .limit(1)
        )
        if phantom is not None:
            stmt = stmt.where(_CAL.c.phantom == phantom)
        with self._engine.connect() as conn:
            self._known_scanner(conn, scanner)
            rid = conn.execute(stmt).scalar()
        if rid is None:
            raise HistoryError(f"scanner {scanner!r} has no record of phantom {phantom!r}")
        return self.get(int(rid))

    def trend(
        self, scanner: str, material: str | None = None, phantom: str | None = None
    ) -> pd.DataFrame:
        """Per-ROI time series of one scanner, oldest first.

        One row per ROI per current record (a correction replaces the record it
        supersedes): ``time, record_id, scanner, phantom, module, roi, material,
        role, nominal, mean, median, sd, sem, n_pixels, deviation, status, low,
        high`` (the tolerance of the HU check that judged the ROI), ``check_id,
        record_status, decision, baseline, profile, profile_version``.

        Raises
        ------
        HistoryError
            When the scanner has no record, or no ROI of ``material``.
        """
        import pandas as pd

        time_col = func.coalesce(_CAL.c.acquired_at, _CAL.c.recorded_at)
        superseded = select(_CAL.c.supersedes).where(_CAL.c.supersedes.is_not(None))
        stmt = (
            select(
                # raw text on SQLite: pandas parses the column at once, faster than per row
                type_coerce(time_col, String).label("time"),
                _ROI.c.calibration_id.label("record_id"),
                _CAL.c.scanner_key.label("scanner"),
                _CAL.c.phantom,
                _ROI.c.module,
                _ROI.c.name.label("roi"),
                _ROI.c.material,
                _ROI.c.role,
                _ROI.c.nominal,
                _ROI.c.mean,
                _ROI.c.median,
                _ROI.c.sd,
                _ROI.c.sem,
                _ROI.c.n_pixels,
                _ROI.c.deviation,
                _ROI.c.status,
                _ROI.c.low,
                _ROI.c.high,
                _ROI.c.check_id,
                _CAL.c.status.label("record_status"),
                _CAL.c.baseline,
                _CAL.c.profile,
                _CAL.c.profile_version,
            )
            .join(_CAL, _CAL.c.id == _ROI.c.calibration_id)
            .where(_CAL.c.scanner_key == scanner, _CAL.c.id.not_in(superseded))
            .order_by(time_col, _CAL.c.id, _ROI.c.position)
        )
        if material is not None:
            stmt = stmt.where(_ROI.c.material == material)
        if phantom is not None:
            stmt = stmt.where(_CAL.c.phantom == phantom)
        with self._engine.connect() as conn:
            self._known_scanner(conn, scanner)
            res = conn.execute(stmt)
            keys = list(res.keys())
            df = pd.DataFrame.from_records([tuple(r) for r in res], columns=keys)
            ids = {int(i) for i in df["record_id"].unique()}
            decisions = self._decisions(conn, ids) if ids else {}
            if df.empty and material is not None:
                mats = conn.execute(
                    select(_ROI.c.material)
                    .distinct()
                    .join(_CAL, _CAL.c.id == _ROI.c.calibration_id)
                    .where(_CAL.c.scanner_key == scanner)
                ).scalars()
                raise HistoryError(
                    f"scanner {scanner!r} has no ROI of material {material!r}"
                    + (f" on phantom {phantom!r}" if phantom is not None else "")
                    + f"; materials recorded: {sorted(mats)}"
                )
        df["decision"] = [decisions.get(int(i)) for i in df["record_id"]]
        df["baseline"] = df["baseline"].astype(bool)
        df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
        for col in ("nominal", "mean", "median", "sd", "sem", "deviation", "low", "high"):
            df[col] = df[col].astype(float)
        return df[_TREND_COLUMNS]

    def drift(
        self,
        scanner: str,
        material: str | None = None,
        phantom: str | None = None,
        **params: Any,
    ) -> list[DriftResult]:
        """Drift detection per (phantom, module, material) of one scanner.

        Records whose latest review rejected them are left out.

        Parameters
        ----------
        scanner : str
            The scanner.
        material : str, optional
            One material only.
        phantom : str, optional
            One phantom only.
        **params
            For :func:`noctis_lab.hu._drift.detect_drift` (``method``, ``baseline_n``,
            ``k``, ``h``, ``lam``, ``limit``, ``min_shift_hu`` ...).
        """
        from noctis_lab.hu._drift import drift_from_trend

        return drift_from_trend(self.trend(scanner, material, phantom), **params)

    def scanners(
        self, *, now: TimeLike | None = None, drift: bool = True, **drift_params: Any
    ) -> pd.DataFrame:
        """One row per scanner: its latest status, last calibration, overdue flag, drift.

        Columns: ``scanner, manufacturer, model, station, serial, phantoms,
        n_records, last_record_id, last_calibration, latest_status, decision,
        days_since, overdue, drift_alarm, drift`` (the alarming materials' messages).
        ``now`` defaults to the current time; ``overdue`` compares ``days_since``
        with :attr:`overdue_after_days`.
        """
        import pandas as pd

        ref = _utcnow() if now is None else _as_time(now, "now")
        recs = self.records(current_only=True)
        cols = [
            "scanner",
            "manufacturer",
            "model",
            "station",
            "serial",
            "phantoms",
            "n_records",
            "last_record_id",
            "last_calibration",
            "latest_status",
            "decision",
            "days_since",
            "overdue",
            "drift_alarm",
            "drift",
        ]
        out = []
        for key, grp in recs.groupby("scanner", sort=True):
            last = grp.sort_values(["time", "id"]).iloc[-1]
            last_time = last["time"].to_pydatetime().replace(tzinfo=None)
            days = (ref - last_time).total_seconds() / 86400.0
            alarm = False
            text = ""
            if drift:
                results = self.drift(str(key), **drift_params)
                alarms = [d for d in results if d.alarm]
                alarm = bool(alarms)
                text = " | ".join(d.message for d in alarms)
            out.append(
                {
                    "scanner": key,
                    "manufacturer": last["manufacturer"],
                    "model": last["model"],
                    "station": last["station"],
                    "serial": last["serial"],
                    "phantoms": ", ".join(sorted(set(grp["phantom"]))),
                    "n_records": len(grp),
                    "last_record_id": int(last["id"]),
                    "last_calibration": last["time"],
                    "latest_status": last["status"],
                    "decision": last["decision"],
                    "days_since": round(days, 2),
                    "overdue": days > self.overdue_after_days,
                    "drift_alarm": alarm,
                    "drift": text,
                }
            )
        df = pd.DataFrame(out, columns=cols)
        df["last_calibration"] = pd.to_datetime(df["last_calibration"], utc=True)
        return df

    def plot_trend(
        self,
        scanner: str,
        material: str | None = None,
        phantom: str | None = None,
        **kwargs: Any,
    ) -> Figure:
        """Measured HU over time per material with nominal, tolerance band and drift alarms.

        Parameters
        ----------
        scanner : str
            The scanner.
        material, phantom : str, optional
            One material, one phantom.
        **kwargs
            For :func:`plot_trend`.
        """
        return plot_trend(self, scanner, material=material, phantom=phantom, **kwargs)


def plot_trend(
    source: CalibrationHistory | pd.DataFrame,
    scanner: str | None = None,
    *,
    material: str | None = None,
    phantom: str | None = None,
    drift: bool = True,
    **kwargs: Any,
) -> Figure:
    """Plot a trend: one panel per material (see :mod:`noctis_lab.hu._history_plot`).

    Parameters
    ----------
    source : CalibrationHistory or pandas.DataFrame
        The history (then ``scanner`` is required) or a DataFrame from
        :meth:`CalibrationHistory.trend`.
    scanner : str, optional
        The scanner.
    material, phantom : str, optional
        One material, one phantom.
    drift : bool
        Mark the drift alarms.
    **kwargs
        For :func:`noctis_lab.hu._history_plot.plot_trend_frame`.
    """
    from noctis_lab.hu._history_plot import plot_trend_frame

    if isinstance(source, CalibrationHistory):
        if scanner is None:
            raise HistoryError("plot_trend(history, scanner): name the scanner to plot")
        df = source.trend(scanner, material, phantom)
    else:
        df = source
        if material is not None:
            df = df[df["material"] == material]
        if phantom is not None:
            df = df[df["phantom"] == phantom]
    return plot_trend_frame(df, drift=drift, **kwargs)
