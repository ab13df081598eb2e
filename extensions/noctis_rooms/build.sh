#!/bin/sh
# Rebuild the prebuilt Room panel into noctis_rooms/labextension/ (needs node >= 18 and npm).
# PYTHON: the interpreter whose jupyterlab gives the shared-package versions
# (default: the repository's .venv).
set -eu
cd "$(dirname "$0")"
PY="${PYTHON:-../../.venv/bin/python}"
npm install --no-audit --no-fund
npx tsc -p .
CORE="$("$PY" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')"
rm -rf noctis_rooms/labextension
node node_modules/@jupyterlab/builder/lib/build-labextension.js --core-path "$CORE" .
find noctis_rooms/labextension -name '*.map' -delete
# Record what this bundle was built from: tests/test_lint.py checks it against the sources.
{ find src style -type f; echo package.json; echo tsconfig.json; find noctis_rooms/labextension -type f ! -name built-from.sha256; } | LC_ALL=C sort | xargs sha256sum > noctis_rooms/labextension/built-from.sha256
