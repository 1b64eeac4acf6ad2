#!/usr/bin/env bash
# Install what jupyterhub-daas needs to run its demo and tests on a fresh Debian 12 machine (as root):
# Debian packages, a venv built from Debian's python3 outside root's home (job users must be able
# to run it), this package with its test extras, and configurable-http-proxy and oidc-provider from npm.
#   DAAS_PREFIX      install prefix            (default /opt/jupyterhub-daas)
#   DAAS_VENV        the venv to create/update (default $DAAS_PREFIX/venv)
#   DAAS_JUPYTERHUB  pip requirement for JupyterHub (default "jupyterhub", e.g. "jupyterhub>=5,<6")
set -euo pipefail

PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
VENV=${DAAS_VENV:-$PREFIX/venv}
JUPYTERHUB_REQ=${DAAS_JUPYTERHUB:-jupyterhub}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

# install_missing [apt-get option ...] -- PACKAGE ...: install those of the packages that are not installed yet.
install_missing() {
    local options=() missing=() pkg
    while [[ $1 != -- ]]; do options+=("$1"); shift; done
    shift
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq "${options[@]}" "${missing[@]}" >/dev/null
    fi
}

packages=(python3 python3-venv sudo procps curl systemd)  # systemd: its offline unit check (systemd-analyze)
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
install_missing -- "${packages[@]}"
# What `desktop` environments serve (through jupyter-remote-desktop-proxy, in the venv): a TigerVNC server running a
# light Xfce session, without the recommended extras.
install_missing --no-install-recommends -- tigervnc-standalone-server dbus-x11 xfce4-session xfwm4 xfce4-panel xfdesktop4
# Environment Modules (`module use` / `module load` in a login shell), as on a facility's nodes: the Slurm prologue test.
install_missing -- environment-modules
# PostgreSQL (Debian's server): the hub's database and the Dask service's records in tests (tests/cluster/postgres.sh).
install_missing -- postgresql postgresql-client

mkdir -p "$PREFIX"
chmod 755 "$PREFIX"
if [[ ! -x $VENV/bin/python ]]; then
    echo "setup: creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
echo "setup: installing jupyterhub-daas[test,demo] with $JUPYTERHUB_REQ into $VENV"
"$VENV/bin/python" -m pip install -q "$REPO[test,demo]" "$JUPYTERHUB_REQ" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c "import jupyterhub, daas_spawner; print('setup: JupyterHub', jupyterhub.__version__)"

# The servers' JupyterLab part (lab/: the session's time left), built from npm beside the venv, kept between runs.
echo "setup: building and installing the JupyterLab extension into $VENV"
DAAS_LAB_BUILD=$PREFIX/lab-build bash "$REPO/lab/install.sh" "$VENV"

if [[ ! -x $PREFIX/node/node_modules/.bin/configurable-http-proxy ]]; then
    echo "setup: installing configurable-http-proxy"
    mkdir -p "$PREFIX/node"
    npm install --silent --no-audit --no-fund --prefix "$PREFIX/node" configurable-http-proxy >/dev/null
fi
# A real OpenID Connect provider for the integration tests (tests/oidc/provider.mjs imports it by path).
if [[ ! -f $PREFIX/node/node_modules/oidc-provider/package.json ]]; then
    echo "setup: installing oidc-provider"
    mkdir -p "$PREFIX/node"
    npm install --silent --no-audit --no-fund --prefix "$PREFIX/node" oidc-provider@9 >/dev/null
fi
chmod -R a+rX "$PREFIX"
