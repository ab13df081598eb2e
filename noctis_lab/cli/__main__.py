"""``python -m noctis_lab.cli``: the ``noctis-lab`` command."""

from __future__ import annotations

from noctis_lab.cli._main import main

raise SystemExit(main())
