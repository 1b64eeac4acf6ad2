#!/usr/bin/env bash
# The package as a site gets it: build the sdist and, from it, the wheel; install the wheel with every extra
# into a fresh venv made from Debian's python3 outside the checkout; then tests/package/test_installed_wheel.py
# checks both artifacts, the entry points and commands of the installed package, and starts a real hub from
# the example site configuration (examples/slurm + examples/keycloak, copied from the sdist as the README says).
#   DAAS_PREFIX    where the venvs and node modules live (default /opt/jupyterhub-daas; tests/setup.sh ran there)
#   DAAS_PKG_VENV  the fresh venv, removed and made again each run (default $DAAS_PREFIX/pkg-venv)
# Extra arguments go to pytest.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
VENV=${DAAS_PKG_VENV:-$PREFIX/pkg-venv}
EXTRAS=data,dask,kubernetes,openstack  # every backend and service (Slurm and local need no extra)
WORK=$(mktemp -d /tmp/daas-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "check_install: building the sdist and the wheel (from the sdist) into $WORK/dist"
"$PREFIX/venv/bin/python" -m build --outdir "$WORK/dist" "$REPO" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; exit 1; }
wheels=("$WORK"/dist/*.whl)
sdists=("$WORK"/dist/*.tar.gz)

echo "check_install: a fresh venv from /usr/bin/python3 in $VENV"
rm -rf "$VENV"
/usr/bin/python3 -m venv "$VENV"
# From a directory outside the checkout, so nothing of it is on sys.path: only the wheel provides the packages.
cd "$WORK"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
echo "check_install: installing ${wheels[0]##*/}[$EXTRAS]"
"$VENV/bin/python" -m pip install -q "${wheels[0]}[$EXTRAS]" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip check

echo "check_install: smoke tests of the installed package"
DAAS_PKG_VENV=$VENV DAAS_PKG_WHEEL=${wheels[0]} DAAS_PKG_SDIST=${sdists[0]} DAAS_PKG_EXTRAS=$EXTRAS \
    "$PREFIX/venv/bin/python" -m pytest -p no:cacheprovider -p no:randomly -q --rootdir "$REPO" \
    "$REPO/tests/package/test_installed_wheel.py" "$@"
