"""The QA bot: post HU calibration failures, drift alarms and AI status changes to chat rooms.

>>> from noctis_lab.alerts import check_and_post, load_config
>>> run = check_and_post()            # what is new since the last run, posted once
>>> run.to_dataframe()                # one row per alert: posted, already posted, failed ...

Configuration is a JSON file, ``$NOCTIS_ALERTS`` or ``<NOCTIS_HOME>/alerts.json``
(:class:`AlertConfig`; every field is optional)::

    {"chat_root": ".",
     "rooms": {"hu": "rooms/qa-hu.chat", "drift": "rooms/qa-hu.chat", "ai": "rooms/qa-ai.chat"},
     "notify_on": ["fail", "warning"],
     "lookback_days": 14}

``chat_root`` is the Jupyter server root the rooms are relative to (relative paths are
relative to the project home, the root of ``noctis-lab lab``); a room set to ``null``
switches that kind of alert off. ``notify_on`` lists the calibration statuses that are
announced (``fail``, ``warning``, ``pass``); for AI models ``fail`` stands for the status
``error`` and ``warning`` for ``warning`` (``pass``: every change of status).

What is announced, once each:

* **calibration**: every current history record with a status in ``notify_on``,
  recorded within ``lookback_days`` (so switching alerts on does not flood a room with
  last year's failures);
* **drift**: every drift alarm (per scanner, phantom, module and material; see
  :meth:`noctis_lab.hu.history.CalibrationHistory.drift`) whose series has a record
  within ``lookback_days``; alarms of one scanner found in one run share a message;
* **ai_status**: a registered model whose status differs from the last one seen (the
  first sighting of a model is announced only when it is at an alert level).

Each message is posted as the QA bot with :func:`noctis_rooms.post_system_message`
(into the live room when the server runs, else appended to the ``.chat`` file), with a
study link to the series and, where ``hu_calibration.ipynb`` exists under the chat root,
a link that opens it.

What was announced is kept in the append-only table ``alerts_posted`` of the history
database (:func:`noctis_lab._paths.db_url`), unique on ``(kind, key)``. A message is
posted inside the transaction that inserts its rows, so a failed post leaves no row
(it is retried by the next run) and of two runs at once only one posts: the other finds
the rows (SQLite: the write lock serialises them; PostgreSQL: the unique key).
"""

from __future__ import annotations

from noctis_lab.alerts._config import (
    CONFIG_ENV,
    CONFIG_NAME,
    AlertConfig,
    AlertRooms,
    config_path,
    configured,
    load_config,
)
from noctis_lab.alerts._links import HU_NOTEBOOK
from noctis_lab.alerts._results import ALERT_KINDS, OUTCOMES, Alert, AlertRun
from noctis_lab.alerts._run import check_and_post, notify_calibration
from noctis_lab.alerts._store import alerts_table
from noctis_lab.alerts._wording import ai_change, calibration_text

#: The public API. Run the bot: :func:`check_and_post` (a sweep, each alert posted once;
#: an :class:`AlertRun` of :class:`Alert`), :func:`notify_calibration` (one result, at
#: once). Configure it: :class:`AlertConfig` / :class:`AlertRooms`, :func:`load_config`,
#: :func:`config_path`, :func:`configured` and the names of the file and variable. Its
#: record: :data:`alerts_table`. Its words: :func:`calibration_text`, :func:`ai_change`.
__all__ = [
    "ALERT_KINDS",
    "CONFIG_ENV",
    "CONFIG_NAME",
    "HU_NOTEBOOK",
    "OUTCOMES",
    "Alert",
    "AlertConfig",
    "AlertRooms",
    "AlertRun",
    "ai_change",
    "alerts_table",
    "calibration_text",
    "check_and_post",
    "config_path",
    "configured",
    "load_config",
    "notify_calibration",
]
