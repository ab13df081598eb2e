#!/usr/bin/env bash
# Create the pylinac virtual environment used as an independent reference for the HU engine
# (bench/bench_hu_pylinac.py, bench/realdata_pylinac.py). pylinac 3.49 needs pydicom<3 while
# noctis_lab uses pydicom 3, so it lives in its own venv, never inside .venv.
#
# Usage: bash bench/make_pylinac_env.sh [ENV_DIR]   (default: <repo>/.pylinac-env)
# Idempotent: an existing env with the pinned versions is left as it is.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_DIR="${1:-$HERE/../.pylinac-env}"
PY="${PYTHON:-python3}"

# Pinned: pylinac 3.49.0 and the exact dependency set it installed on 2026-12-01 (Python 3.11),
# the versions the references in tests/realdata_reference/ were measured with.
PINS=(
  "annotated-types==0.8.0"
  "argue==0.3.1"
  "charset-normalizer==3.5.3"
  "contourpy==1.3.3"
  "cycler==0.12.1"
  "dnspython==2.9.2"
  "email-validator==2.4.0"
  "fonttools==4.68.0"
  "future==0.18.3"
  "idna==3.20"
  "ImageIO==2.38.1"
  "kiwisolver==1.5.1"
  "lazy-loader==0.6"
  "matplotlib==3.11.2"
  "narwhals==2.29.0"
  "networkx==3.6.1"
  "numpy==2.4.6"
  "packaging==26.4"
  "pillow==13.0.0"
  "plotly==7.1.0"
  "py-linq==1.4.0"
  "pydantic==2.14.4"
  "pydantic_core==2.50.5"
  "pydicom==2.4.5"
  "pylinac==3.49.0"
  "pyparsing==3.3.3"
  "python-dateutil==4.0.0"
  "PyYAML==6.0.4"
  "quaac==1.0.2"
  "reportlab==5.1.0"
  "scikit-image==0.26.0"
  "scipy==1.17.1"
  "six==1.17.0"
  "tabulate==0.9.0"
  "tifffile==2026.3.3"
  "tqdm==4.70.1"
  "typing-inspection==0.4.5"
  "typing_extensions==4.16.0"
  "tzdata==2026.6"
)

if [ -x "$ENV_DIR/bin/python" ] && "$ENV_DIR/bin/python" - <<'PYEOF' 2>/dev/null
import pylinac, pydicom, sys
sys.exit(0 if (pylinac.__version__, pydicom.__version__) == ("3.49.0", "2.4.5") else 1)
PYEOF
then
  echo "pylinac env ready: $ENV_DIR"
  exit 0
fi
"$PY" -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install -q --no-deps "${PINS[@]}"
"$ENV_DIR/bin/python" -m pip check
"$ENV_DIR/bin/python" -c "import pylinac, pydicom, numpy; print('pylinac', pylinac.__version__, 'pydicom', pydicom.__version__, 'numpy', numpy.__version__)"
echo "pylinac env ready: $ENV_DIR"
