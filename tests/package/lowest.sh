#!/usr/bin/env bash
# The lowest versions pyproject.toml allows: every `>=` floor of the dependencies and of the extras a site
# installs (data, dask, kubernetes, openstack) pinned exactly in a fresh venv made from Debian's python3, the
# package installed from the checkout on top, then the unit tests and one real-hub integration test run on it.
# A floor that fails here is raised in pyproject.toml to the lowest version that passes.
#   DAAS_PREFIX       where the venvs and node modules live (default /opt/jupyterhub-daas; tests/setup.sh ran there)
#   DAAS_LOWEST_VENV  the fresh venv, removed and made again each run (default $DAAS_PREFIX/lowest-venv)
# Extra arguments go to pytest (in place of the default selection).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
VENV=${DAAS_LOWEST_VENV:-$PREFIX/lowest-venv}
EXTRAS=data,dask,kubernetes,openstack,postgresql
# What the tests themselves need (not floors of this package: their newest versions).
TEST_TOOLS=(pytest pytest-asyncio hypothesis jsonschema kubernetes-validate helm-python-sdk)
WORK=$(mktemp -d /tmp/daas-lowest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# name==floor for every `name>=floor` requirement of the core and of these extras (markers and caps dropped).
/usr/bin/python3 - "$REPO/pyproject.toml" "$EXTRAS" >"$WORK/floors.txt" <<'EOF'
import re
import sys
import tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[2].split(","):
    requirements += project["optional-dependencies"][extra]
floors = {}
for requirement in requirements:
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?\s*([^;]*)", requirement)
    name, specifiers = found.group(1).lower().replace("_", "-"), found.group(2)
    floor = re.search(r">=\s*([0-9][^,\s]*)", specifiers)
    if floor:
        floors[name] = floor.group(1)
for name, version in sorted(floors.items()):
    print(f"{name}=={version}")
EOF
echo "lowest: the floors"
sed 's/^/    /' "$WORK/floors.txt"

echo "lowest: a fresh venv from /usr/bin/python3 in $VENV"
rm -rf "$VENV"
/usr/bin/python3 -m venv "$VENV"
cd "$WORK"  # pip and the build run outside the checkout
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
echo "lowest: installing jupyterhub-daas[$EXTRAS] with its floors pinned, and the test tools"
"$VENV/bin/python" -m pip install -q -c "$WORK/floors.txt" "${REPO}[$EXTRAS]" "${TEST_TOOLS[@]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip check
# Every floor is what got installed (pip would have failed on a conflict, but say it plainly).
"$VENV/bin/python" - "$WORK/floors.txt" <<'EOF'
import importlib.metadata
import sys



def release(version: str) -> list[int]:
    """3.1 and 3.1.0 are one version (the floors are plain release numbers)."""
    parts = [int(part) for part in version.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return parts


wrong = []
for line in open(sys.argv[1]):
    name, version = line.strip().split("==")
    installed = importlib.metadata.version(name)
    if release(installed) != release(version):
        wrong.append(f"{name}: {installed} installed, floor {version}")
if wrong:
    sys.exit("lowest: not at the floor: " + "; ".join(wrong))
print("lowest: every floor installed as pinned")
EOF

echo "lowest: tests on the floors"
cd "$REPO"
if (($#)); then
    selection=("$@")
else
    # The unit tests, and a real JupyterHub (the oldest allowed) with the services' roles and scopes. Not the
    # checks that the committed JSON Schemas in profiles/ are current: older pydantic writes the same rules in
    # another form (extra defaults, a $ref where newer ones inline), which the schemas' other tests accept.
    selection=(tests/unit tests/integration/test_proposals_api.py -k "not test_the_committed_schema_is_current")
fi
"$VENV/bin/python" -m pytest -p no:cacheprovider -q "${selection[@]}"
