#!/bin/sh
# Make a THROWAWAY JupyterHub environment for tests/services/test_jupyterhub.py (and for
# trying docs/jupyterhub/jupyterhub_config.py on one machine), outside the project venv:
#   DIR/venv  a venv with jupyterhub (pinned below) that also sees the project venv's
#             packages (a .pth file), so its jupyterhub-singleuser runs Noctis Lab's
#             JupyterLab, collaboration and noctis_rooms
#   DIR/chp   configurable-http-proxy from npm (needs node and npm)
# Usage: sh docs/jupyterhub/make_test_env.sh [DIR]   (default /tmp/noctis-hub-env)
# then run the export lines it prints, and the test: .venv/bin/pytest tests/services
set -eu
DIR=${1:-/tmp/noctis-hub-env}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY="$ROOT/.venv/bin/python"
JUPYTERHUB_VERSION=6.1.1
CHP_VERSION=5.3.0
mkdir -p "$DIR/chp"
"$PY" -m venv "$DIR/venv"
# uv (installed in the project venv by make setup) fetches and unpacks in parallel.
"$ROOT/.venv/bin/uv" pip install --python "$DIR/venv/bin/python" -q "jupyterhub==$JUPYTERHUB_VERSION"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
OWN=$("$DIR/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# an `import` line in a .pth runs at start-up; addsitedir also reads the project venv's own
# .pth files (the editable installs of noctis_lab and noctis_rooms)
echo "import site; site.addsitedir('$SITE')" > "$OWN/noctis-project-venv.pth"
(cd "$DIR/chp" && npm install --no-audit --no-fund --silent "configurable-http-proxy@$CHP_VERSION" >/dev/null)
echo "export NOCTIS_JUPYTERHUB=$DIR/venv/bin/jupyterhub"
echo "export NOCTIS_CHP=$DIR/chp/node_modules/.bin/configurable-http-proxy"
