#!/usr/bin/env bash
# Demo: install everything and start a JupyterHub with the DaaS spawner on http://127.0.0.1:8000.
#   sudo bash examples/demo/run.sh           local backend: JupyterLab as local processes
#   sudo bash examples/demo/run.sh --slurm   the same hub on the local Slurm test cluster
#   ... --oidc                               log in through a local OpenID provider (alice, bob, carol)
#                                            with proposals from examples/demo/proposals.yaml
# Log in with any user name and the password printed below (local), or as alice / bob / carol
# (Slurm: servers run as those Unix users). Ctrl-C stops the hub; servers stop with it.
#   DAAS_DEMO_PORT       public port (default 8000)
#   DAAS_DEMO_OIDC_PORT  the identity provider's port with --oidc (default 8001)
#   DAAS_DEMO_DATA_PORT  the data service's own port with --oidc (default 8002)
#   DAAS_DEMO_PASSWORD   the shared demo password (default daas-demo)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
MODE=local
AUTH=password
for arg in "$@"; do
    case $arg in
        --slurm) MODE=slurm ;;
        --oidc) AUTH=oidc ;;
        *) echo "unknown option $arg (use --slurm, --oidc)" >&2; exit 2 ;;
    esac
done
export DAAS_DEMO_PORT=${DAAS_DEMO_PORT:-8000}
export DAAS_DEMO_PASSWORD=${DAAS_DEMO_PASSWORD:-daas-demo}
export DAAS_DEMO_MODE=$MODE
export DAAS_DEMO_REPO=$REPO
export DAAS_DEMO_CHP=$PREFIX/node/node_modules/.bin/configurable-http-proxy
export PATH=$PREFIX/venv/bin:$PATH

if [[ $(id -u) -ne 0 ]]; then
    echo "run as root (it installs packages and creates the demo's service user)" >&2
    exit 1
fi
bash "$REPO/tests/setup.sh"

if [[ $AUTH == oidc ]]; then
    # The identity provider the tests use (npm oidc-provider), with three facility-style accounts.
    export DAAS_DEMO_OIDC_PORT=${DAAS_DEMO_OIDC_PORT:-8001}
    export DAAS_DEMO_ISSUER=http://127.0.0.1:$DAAS_DEMO_OIDC_PORT
    DAAS_DEMO_CLIENT_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    export DAAS_DEMO_CLIENT_SECRET
    # auth_state (tokens, proposals) is stored encrypted; a fresh key per run is fine for a demo.
    JUPYTERHUB_CRYPT_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    export JUPYTERHUB_CRYPT_KEY
    oidc_dir=$(mktemp -d /tmp/daas-demo-oidc.XXXXXX)
    "$PREFIX/venv/bin/python" "$REPO/examples/demo/oidc_provider_config.py" >"$oidc_dir/provider.json"
    DAAS_NODE_MODULES=$PREFIX/node/node_modules node "$REPO/tests/oidc/provider.mjs" "$oidc_dir/provider.json" \
        >"$oidc_dir/provider.log" 2>&1 &
    oidc_pid=$!
    trap 'kill $oidc_pid 2>/dev/null || true; rm -rf "$oidc_dir"' EXIT
    for _ in $(seq 100); do
        curl -sf "$DAAS_DEMO_ISSUER/.well-known/openid-configuration" >/dev/null && break
        kill -0 $oidc_pid 2>/dev/null || { cat "$oidc_dir/provider.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "demo: identity provider at $DAAS_DEMO_ISSUER (alice, bob, carol; password: $DAAS_DEMO_PASSWORD)"
    export DAAS_DEMO_DATA_PORT=${DAAS_DEMO_DATA_PORT:-8002}
fi

# With --oidc, the proposals' data (browse it at /services/daas-data/): a group per proposal whose
# members are the people (Slurm demo) or the one account that runs every server (local demo).
make_demo_data() {
    [[ $AUTH == oidc ]] || return 0
    "$PREFIX/venv/bin/python" "$REPO/examples/demo/make_data.py" "$REPO/examples/demo/proposals.yaml" "$@"
}

if [[ $MODE == slurm ]]; then
    bash "$REPO/tests/cluster/slurm.sh" start
    make_demo_data --members-from-file
    scontrol reconfigure  # slurmd caches a user's groups: make it see the proposal groups
    # sbatch runs as each user through sudo: the hub runs as root here (see README, "Security").
    export DAAS_DEMO_STATE=/var/lib/jupyterhub-daas-demo/slurm
    mkdir -p "$DAAS_DEMO_STATE"
    cd "$DAAS_DEMO_STATE"
    echo "demo: http://127.0.0.1:$DAAS_DEMO_PORT  (log in as alice, bob or carol; password: $DAAS_DEMO_PASSWORD)"
    jupyterhub -f "$REPO/examples/demo/jupyterhub_config.py"
    exit
fi

# Local mode: an unprivileged service user runs the hub and every demo server.
id daas-demo >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/jupyterhub-daas-demo daas-demo
make_demo_data --member daas-demo
export DAAS_DEMO_STATE=/var/lib/jupyterhub-daas-demo/local
install -d -o daas-demo -g daas-demo -m 0700 "$DAAS_DEMO_STATE" "$DAAS_DEMO_STATE/users"
cd "$DAAS_DEMO_STATE"
echo "demo: http://127.0.0.1:$DAAS_DEMO_PORT  (any user name; password: $DAAS_DEMO_PASSWORD)"
runuser -u daas-demo -- env PATH="$PATH" HOME=/var/lib/jupyterhub-daas-demo \
    DAAS_DEMO_PORT="$DAAS_DEMO_PORT" DAAS_DEMO_PASSWORD="$DAAS_DEMO_PASSWORD" DAAS_DEMO_MODE="$MODE" \
    DAAS_DEMO_REPO="$REPO" DAAS_DEMO_CHP="$DAAS_DEMO_CHP" DAAS_DEMO_STATE="$DAAS_DEMO_STATE" \
    DAAS_DEMO_ISSUER="${DAAS_DEMO_ISSUER:-}" DAAS_DEMO_CLIENT_SECRET="${DAAS_DEMO_CLIENT_SECRET:-}" \
    DAAS_DEMO_DATA_PORT="${DAAS_DEMO_DATA_PORT:-8002}" \
    JUPYTERHUB_CRYPT_KEY="${JUPYTERHUB_CRYPT_KEY:-}" \
    jupyterhub -f "$REPO/examples/demo/jupyterhub_config.py"
