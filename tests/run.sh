#!/usr/bin/env bash
# The test command: set up everything on a fresh Debian 12 machine (as root), start the real Slurm,
# Kubernetes and OpenStack test clusters, run the whole suite on the newest JupyterHub and the JupyterHub-backed tests
# again on a 5.x line, and stop the clusters.  Extra arguments go to pytest (first run only).
#   DAAS_TEST_ORDER=random   the first run in a random order (pytest-randomly), its seed printed;
#   DAAS_TEST_ORDER=<seed>   that order again.  Default: the files' order (CI).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
cd "$REPO"

case ${DAAS_TEST_ORDER:=fixed} in
    fixed) order=(-p no:randomly) ;;
    random) order=("--randomly-seed=$((RANDOM * 32768 + RANDOM))") ;;
    *[!0-9]* | "") echo "DAAS_TEST_ORDER must be fixed, random or a seed (a number)" >&2; exit 2 ;;
    *) order=("--randomly-seed=$DAAS_TEST_ORDER") ;;
esac

bash tests/setup.sh
DAAS_VENV=$PREFIX/venv-jh5 DAAS_JUPYTERHUB="jupyterhub>=5,<6" bash tests/setup.sh
# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
bash tests/cluster/slurm.sh start
trap 'bash tests/cluster/slurm.sh stop' EXIT
# The Kubernetes test cluster: built from Debian's source once per machine (cached outside the tree).
bash tests/cluster/kubernetes.sh start
trap 'bash tests/cluster/kubernetes.sh stop; bash tests/cluster/slurm.sh stop' EXIT
# The OpenStack test cloud: Keystone, Placement, Glance, Nova (fake compute driver) from a cached venv.
bash tests/cluster/openstack.sh start
trap 'bash tests/cluster/openstack.sh stop; bash tests/cluster/kubernetes.sh stop; bash tests/cluster/slurm.sh stop' EXIT

"$PREFIX/venv/bin/ruff" check .
"$PREFIX/venv/bin/ruff" format --check .
"$PREFIX/venv/bin/lint-imports" --no-cache  # the package layers (pyproject.toml, [tool.importlinter])
echo "== newest JupyterHub (hub logs and browser screenshots: /tmp/daas-test-artifacts)"
echo "== test order: ${order[*]}"
"$PREFIX/venv/bin/python" -m pytest -p no:cacheprovider -q "${order[@]}" "$@"
echo "== docs (warnings are errors; reference generated from the code; screenshots from the browser tests)"
bash docs/build.sh /tmp/daas-test-artifacts/docs
echo "== JupyterHub 5.x"
"$PREFIX/venv-jh5/bin/python" -m pytest -p no:cacheprovider -p no:randomly -q tests/integration/test_slurm_spawn.py \
    tests/integration/test_local_backend.py tests/integration/test_address_endpoint.py \
    tests/integration/test_proposals_api.py tests/integration/test_hub_restart.py \
    tests/integration/test_site_roles.py tests/integration/test_oidc_admin_groups.py tests/integration/test_metrics.py
echo "== the package: sdist and wheel, the wheel in a fresh venv, a hub from the example site configuration"
bash tests/package/check_install.sh
echo "== the lowest versions pyproject.toml allows"
bash tests/package/lowest.sh
