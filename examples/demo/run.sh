#!/usr/bin/env bash
# Demo: install everything and start a JupyterHub with the DaaS spawner on http://127.0.0.1:8000.
#   bash examples/demo/run.sh           local backend: JupyterLab as local processes
#   bash examples/demo/run.sh --slurm   the same hub on the local Slurm test cluster
#   ... --oidc                          log in through a local OpenID provider (alice, bob, carol)
#                                       with proposals from examples/demo/proposals.yaml
# As root (from a user account: sudo bash ...). Log in with any user name and the password printed
# below (local), or as alice / bob / carol (Slurm: servers run as those Unix users).
# Ctrl-C stops the hub, its servers, the proxy, the services and the provider within seconds; so
# does a failed start. Ports: each part has its own, counted up from the public one.
#   DAAS_DEMO_PORT            public port (default 8000): the proxy
#   DAAS_DEMO_PROXY_API_PORT  the proxy's API (default DAAS_DEMO_PORT + 1)
#   DAAS_DEMO_DATA_PORT       the data service, with --oidc (default DAAS_DEMO_PORT + 2)
#   DAAS_DEMO_OIDC_PORT       the identity provider, with --oidc (default DAAS_DEMO_PORT + 3)
#   DAAS_DEMO_HUB_PORT        the hub itself, behind the proxy (default DAAS_DEMO_PORT + 4)
#   DAAS_DEMO_PASSWORD        the shared demo password (default daas-demo)
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
export DAAS_DEMO_PROXY_API_PORT=${DAAS_DEMO_PROXY_API_PORT:-$((DAAS_DEMO_PORT + 1))}
export DAAS_DEMO_DATA_PORT=${DAAS_DEMO_DATA_PORT:-$((DAAS_DEMO_PORT + 2))}
export DAAS_DEMO_OIDC_PORT=${DAAS_DEMO_OIDC_PORT:-$((DAAS_DEMO_PORT + 3))}
export DAAS_DEMO_HUB_PORT=${DAAS_DEMO_HUB_PORT:-$((DAAS_DEMO_PORT + 4))}
export DAAS_DEMO_PASSWORD=${DAAS_DEMO_PASSWORD:-daas-demo}
export DAAS_DEMO_MODE=$MODE
export DAAS_DEMO_REPO=$REPO
export DAAS_DEMO_CHP=$PREFIX/node/node_modules/.bin/configurable-http-proxy
export PATH=$PREFIX/venv/bin:$PATH

if [[ $(id -u) -ne 0 ]]; then
    echo "run as root (it installs packages and creates the demo's service user)" >&2
    exit 1
fi

# Each part of the demo gets its own port, and each must be free now: a part that cannot bind
# would otherwise leave another talking to the wrong server.
ports=("public:$DAAS_DEMO_PORT" "proxy API:$DAAS_DEMO_PROXY_API_PORT" "hub:$DAAS_DEMO_HUB_PORT")
[[ $AUTH == oidc ]] && ports+=("data service:$DAAS_DEMO_DATA_PORT" "identity provider:$DAAS_DEMO_OIDC_PORT")
declare -A port_user=()
for entry in "${ports[@]}"; do
    what=${entry%:*} port=${entry##*:}
    [[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || { echo "demo: bad $what port '$port'" >&2; exit 2; }
    if [[ -n ${port_user[$port]:-} ]]; then
        echo "demo: the $what and the ${port_user[$port]} would share port $port: set their ports apart" >&2
        exit 2
    fi
    port_user[$port]=$what
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "demo: port $port (for the $what) is in use; stop what listens there or choose DAAS_DEMO_PORT" >&2
        exit 1
    fi
done

# Everything the demo starts stops with it: on Ctrl-C, on a failed start, on any exit.
hub_pid=
oidc_pid=
oidc_dir=
stop_all() {
    local status=$? i
    trap - EXIT INT TERM
    if [[ -n $hub_pid ]] && kill -0 "$hub_pid" 2>/dev/null; then
        echo "demo: stopping the hub and its servers"
        kill -TERM "$hub_pid" 2>/dev/null || true  # one signal: the hub stops servers, services, proxy
        for ((i = 0; i < 300; i++)); do
            kill -0 "$hub_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # Whatever did not stop with the hub: its session, the proxy it started, the data service.
    [[ -n $hub_pid ]] && kill -KILL -- "-$hub_pid" 2>/dev/null || true
    local proxy_pid
    proxy_pid=$(cat "${DAAS_DEMO_STATE:-/nonexistent}/jupyterhub-proxy.pid" 2>/dev/null || true)
    [[ $proxy_pid =~ ^[0-9]+$ ]] && kill -KILL "$proxy_pid" 2>/dev/null || true
    pkill -KILL -f -- "--config $REPO/examples/demo/daas_config.py" 2>/dev/null || true
    [[ $MODE == local ]] && pkill -KILL -u daas-demo 2>/dev/null || true
    [[ -n $oidc_pid ]] && kill -TERM "$oidc_pid" 2>/dev/null || true
    [[ -n $oidc_dir ]] && rm -rf "$oidc_dir"
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs the hub in a session of its own (a terminal's Ctrl-C reaches this script, which stops the
# hub with one signal) and waits for it. Background commands of a script ignore SIGINT, and the
# hub's services would inherit that (the hub then waits for each): give the hub the default back.
run_hub() {
    (
        trap - INT
        exec setsid "$@"
    ) &
    hub_pid=$!
    local status=0
    wait "$hub_pid" || status=$?
    hub_pid=
    return "$status"
}

bash "$REPO/tests/setup.sh"

if [[ $AUTH == oidc ]]; then
    # The identity provider the tests use (npm oidc-provider), with three facility-style accounts.
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
    for _ in $(seq 100); do
        curl -sf "$DAAS_DEMO_ISSUER/.well-known/openid-configuration" >/dev/null && break
        kill -0 $oidc_pid 2>/dev/null || { cat "$oidc_dir/provider.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "demo: identity provider at $DAAS_DEMO_ISSUER (alice, bob, carol; password: $DAAS_DEMO_PASSWORD)"
fi

# With --oidc, the proposals' data (browse it at /services/daas-data/): a group per proposal whose
# members are the people (Slurm demo) or the one account that runs every server (local demo).
make_demo_data() {
    [[ $AUTH == oidc ]] || return 0
    "$PREFIX/venv/bin/python" "$REPO/examples/demo/make_data.py" "$REPO/examples/demo/proposals.yaml" "$@"
}

if [[ $MODE == slurm ]]; then
    bash "$REPO/tests/cluster/slurm.sh" start
    make_demo_data --members-from-file  # the test cluster has GroupUpdateTime=0: jobs see new groups at once
    # sbatch runs as each user through sudo: the hub runs as root here (see README, "Security").
    export DAAS_DEMO_STATE=/var/lib/jupyterhub-daas-demo/slurm
    mkdir -p "$DAAS_DEMO_STATE"
    cd "$DAAS_DEMO_STATE"
    echo "demo: http://127.0.0.1:$DAAS_DEMO_PORT  (log in as alice, bob or carol; password: $DAAS_DEMO_PASSWORD)"
    run_hub jupyterhub -f "$REPO/examples/demo/jupyterhub_config.py"
    exit
fi

# Local mode: an unprivileged service user runs the hub and every demo server (setpriv execs the hub
# itself, so the stop signal reaches it; runuser would kill it 2 s after forwarding one).
id daas-demo >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/jupyterhub-daas-demo daas-demo
make_demo_data --member daas-demo
export DAAS_DEMO_STATE=/var/lib/jupyterhub-daas-demo/local
install -d -o daas-demo -g daas-demo -m 0700 "$DAAS_DEMO_STATE" "$DAAS_DEMO_STATE/users"
cd "$DAAS_DEMO_STATE"
echo "demo: http://127.0.0.1:$DAAS_DEMO_PORT  (any user name; password: $DAAS_DEMO_PASSWORD)"
run_hub setpriv --reuid=daas-demo --regid=daas-demo --init-groups \
    env PATH="$PATH" HOME=/var/lib/jupyterhub-daas-demo USER=daas-demo LOGNAME=daas-demo \
    DAAS_DEMO_PORT="$DAAS_DEMO_PORT" DAAS_DEMO_PROXY_API_PORT="$DAAS_DEMO_PROXY_API_PORT" \
    DAAS_DEMO_HUB_PORT="$DAAS_DEMO_HUB_PORT" DAAS_DEMO_DATA_PORT="$DAAS_DEMO_DATA_PORT" \
    DAAS_DEMO_PASSWORD="$DAAS_DEMO_PASSWORD" DAAS_DEMO_MODE="$MODE" \
    DAAS_DEMO_REPO="$REPO" DAAS_DEMO_CHP="$DAAS_DEMO_CHP" DAAS_DEMO_STATE="$DAAS_DEMO_STATE" \
    DAAS_DEMO_ISSUER="${DAAS_DEMO_ISSUER:-}" DAAS_DEMO_CLIENT_SECRET="${DAAS_DEMO_CLIENT_SECRET:-}" \
    JUPYTERHUB_CRYPT_KEY="${JUPYTERHUB_CRYPT_KEY:-}" \
    jupyterhub -f "$REPO/examples/demo/jupyterhub_config.py"
