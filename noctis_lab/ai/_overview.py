"""One table of every registered model's status (the dashboards' and the QA bot's view)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from noctis_lab.ai._registry import list_models
from noctis_lab.ai._status import StatusThresholds, model_status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["all_model_statuses"]

#: The columns of :func:`all_model_statuses`, in order.
COLUMNS = (
    "name",
    "version",
    "task",
    "status",
    "headline",
    "value",
    "ci_low",
    "ci_high",
    "n_issues",
    "issues",
)


def all_model_statuses(
    *,
    thresholds: StatusThresholds | None = None,
    tracking_uri: str | None = None,
    db_url: str | None = None,
) -> pd.DataFrame:
    """One row per registered model: its status, headline metric and issues.

    Parameters
    ----------
    thresholds : StatusThresholds, optional
        The status thresholds (default: :class:`StatusThresholds` ()).
    tracking_uri : str, optional
        The MLflow store (default: the project's).
    db_url : str, optional
        The analyses database (default: the project's).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``version``, ``task``, ``status``, ``headline``, ``value``,
        ``ci_low``, ``ci_high``, ``n_issues``, ``issues``; empty, with these columns,
        for an empty store.
    """
    import pandas as pd

    rows = []
    for info in list_models(tracking_uri=tracking_uri):
        st = model_status(
            info.name, thresholds=thresholds, tracking_uri=tracking_uri, db_url=db_url
        )
        head = st.headline or {}
        rows.append(
            {
                "name": st.name,
                "version": st.version,
                "task": st.task,
                "status": st.status,
                "headline": head.get("name"),
                "value": head.get("value"),
                "ci_low": head.get("ci_low"),
                "ci_high": head.get("ci_high"),
                "n_issues": len(st.issues),
                "issues": "; ".join(i.message for i in st.issues),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
