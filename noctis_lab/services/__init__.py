"""Shared services for a team on one machine: PostgreSQL and an MLflow tracking server.

``noctis-lab services up`` starts, on 127.0.0.1 only,

* a PostgreSQL server from the system's binaries (Debian: ``/usr/lib/postgresql/<v>/bin``),
  its cluster in ``<dir>/postgres`` (``initdb`` on first run). ``initdb`` and ``postgres``
  refuse to run as root, so when this runs as root the server runs as an unprivileged user
  (``postgres`` when that account exists, else ``nobody``) through ``runuser``. Unix sockets
  are switched off: the only way in is TCP on 127.0.0.1 with a SCRAM-SHA-256 password.
  Four roles with generated passwords: an admin (superuser, only used here),
  ``noctis_owner`` (owns database ``noctis`` and its tables: the calibration history, AI
  analyses, QA bot alerts; runs the migrations, only here), ``noctis`` (what the
  application and the team connect as: ``SELECT`` and ``INSERT`` on the record tables and
  nothing else, so it can neither change a record nor alter or disable the append-only
  triggers, which only a table's owner may do) and ``mlflow`` (owns database ``mlflow``: the
  tracking server's store). Each database refuses connections from the other roles. The
  passwords are in ``<dir>/credentials.json`` (mode 0600). A cluster made before the owner
  role existed is converted on the next ``up`` (its objects are reassigned to the owner).
* an MLflow tracking server on PostgreSQL, serving (proxying) artifacts from
  ``<dir>/mlflow-artifacts``, with telemetry off and the Host header restricted to the
  loopback names. Its database URL (with the password) reaches it through the environment
  (``MLFLOW_BACKEND_STORE_URI``), never the command line that other users can read in ``ps``.

The same :class:`PostgresServer` also backs the throwaway PostgreSQL of the tests
(``tests/conftest.py``).

>>> from noctis_lab.services import services_up, services_down
>>> report = services_up()          # doctest: +SKIP
>>> report.env_lines()              # doctest: +SKIP
"""

from __future__ import annotations

from noctis_lab.services._ports import free_port
from noctis_lab.services._postgres import PostgresServer, migrate_stores, pg_url
from noctis_lab.services._stack import (
    ServicesReport,
    ServiceState,
    default_dir,
    services_down,
    services_status,
    services_up,
)

#: The public API: start, inspect and stop the services (:func:`services_up`,
#: :func:`services_status`, :func:`services_down`, each giving a :class:`ServicesReport`),
#: a throwaway or managed :class:`PostgresServer`, the stores' migration as owner
#: (:func:`migrate_stores`) and small helpers the tests and notebooks share.
__all__ = [
    "PostgresServer",
    "ServiceState",
    "ServicesReport",
    "default_dir",
    "free_port",
    "migrate_stores",
    "pg_url",
    "services_down",
    "services_status",
    "services_up",
]
