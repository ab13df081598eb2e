"""The ``noctis-lab`` command line.

:func:`main` is the console entry point (``noctis-lab = noctis_lab.cli:main``) and
``python -m noctis_lab.cli`` runs it too. Each command is one private module of this
package with one function, ``register(subparsers) -> None``, that adds the command,
its options and its handler; the dispatcher (``_main``) only calls them in turn and
runs the handler the arguments chose:

======================  =====================================================
``_demo``               ``demo``: write the demo data set
``_doctor``             ``doctor``: the home, the stores, versions, the stack
``_hu``                 ``hu``: analyse, phantoms, profiles; with ``_hu_history``
                        (``history``, ``trend``) and ``_hu_batch`` (``batch``)
``_ai``                 ``ai``: register, check, evaluate, status
``_report``             ``report``: papermill reports
``_schedule``           ``schedule``: report schedules (cron, systemd)
``_dashboards``         ``dashboards``: the Voila dashboards
``_lab``                ``lab``: JupyterLab with collaboration and chat rooms
``_alerts``             ``alerts``: the QA bot
``_mlflow``             ``mlflow``: the MLflow UI
``_services``           ``services``: PostgreSQL and MLflow for a team
``_verify``             ``verify``: the record chains
======================  =====================================================

The command modules live here, not in the areas they drive (``hu``, ``ai``,
``reports``, ``records``): they import nothing heavy at module level, so building
the whole parser stays fast, and the dependencies run one way, from the command
line to the areas, never back.
"""

from __future__ import annotations

from noctis_lab.cli._main import build_parser, main

#: The entry point and the parser it builds.
__all__ = ["build_parser", "main"]
