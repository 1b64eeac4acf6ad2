#!/usr/bin/env bash
# Build the JupyterLab part of jupyterhub-daas (the session's time left, the warning before the end) and install it
# with its server extension into a servers' environment:
#     bash lab/install.sh /opt/conda/envs/daas     # an environment that has JupyterLab 4
# Needs node and npm (packages from the npm registry). The build happens outside the checkout, in
# DAAS_LAB_BUILD (default $TMPDIR/daas-lab-build), against the environment's own JupyterLab, so its shared
# modules are the ones that JupyterLab loads.
set -euo pipefail

ENV_PREFIX=${1:?usage: $0 ENVIRONMENT_PREFIX}
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${DAAS_LAB_BUILD:-${TMPDIR:-/tmp}/daas-lab-build}
PYTHON=$ENV_PREFIX/bin/python

mkdir -p "$BUILD"
# The sources over the last build; node_modules stays, so a rebuild installs nothing new.
rm -rf "$BUILD/src" "$BUILD/style" "$BUILD/daas_lab" "$BUILD/jupyter-config"
cp -r "$SOURCE/package.json" "$SOURCE/pyproject.toml" "$SOURCE/src" "$SOURCE/style" "$SOURCE/daas_lab" \
    "$SOURCE/jupyter-config" "$BUILD/"
npm install --prefix "$BUILD" --silent --no-audit --no-fund >/dev/null
core=$("$PYTHON" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')
(cd "$BUILD" && node node_modules/@jupyterlab/builder/lib/build-labextension.js --core-path "$core" . \
    >"$BUILD/build.log" 2>&1) || { cat "$BUILD/build.log" >&2; exit 1; }
"$PYTHON" -m pip install -q "$BUILD" 2>&1 | grep -v "^WARNING: Location" || true
"$ENV_PREFIX/bin/jupyter" labextension list 2>&1 | grep -q "@jupyterhub-daas/lab.*enabled" \
    || { echo "lab/install.sh: the extension is not enabled in $ENV_PREFIX" >&2; exit 1; }
echo "lab/install.sh: @jupyterhub-daas/lab installed into $ENV_PREFIX"
