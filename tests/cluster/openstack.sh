#!/usr/bin/env bash
# Start and stop a small, real OpenStack compute cloud on this single machine (Debian 12, as root, no systemd),
# for the `backend: openstack` tests. Everything listens on 127.0.0.1 only.
#
#   bash tests/cluster/openstack.sh install|start|stop|reset|service|status|env
#
# install  Debian's rabbitmq-server and python3-venv (apt-get update first, only when one is missing), and a venv
#          made from Debian's /usr/bin/python3 in ${DAAS_OS_CACHE:-/var/cache/daas-openstack}/venv with the pinned
#          tests/cluster/openstack-requirements.txt (keystone, nova, openstack-placement, glance, gunicorn,
#          openstacksdk, python-openstackclient). The venv is stamped with that file's hash: a changed list
#          rebuilds it.
# start    install if needed, check that the ports are free, then start (each only if not running): epmd (4369)
#          and RabbitMQ (5672, dist 25672) with private data dirs and HOME; Keystone (5000), Placement (8778),
#          Glance (9292) and nova-api (8774) under gunicorn (one worker each); nova-conductor, nova-scheduler,
#          nova-compute (compute_driver fake.FakeDriverWithoutFakeNodes, host `daas-compute`); and the Neutron
#          stand-in tests/cluster/openstack_network.py (9696). The first start (cold) writes the SQLite
#          databases, runs the migrations, bootstraps Keystone and creates the service users, endpoints,
#          projects, users, images and flavors (tests/cluster/openstack_catalog.py); later starts (warm) reuse
#          them. Waits until nova-compute is up and its node is a resource provider with a VGPU child provider,
#          so a server create right after `start` works. When it (re)started nova-compute, it deletes every
#          server left in the database: the fake driver kept them in memory, so they are ghosts now. Then the
#          boot agent tests/cluster/openstack_vms.py, which plays the VMs: it boots each ACTIVE server's
#          user_data (checked by cloud-init's schema, from Debian's cloud-init package unpacked into the cache,
#          not installed) as a local process on the VM's own loopback address; each VM's root, boot record and
#          log are in ${DAAS_OS_VMS:-/var/tmp/daas-openstack-vms}/<server id> (open to the VMs' users).
# stop     stop everything `start` started (pid files; SIGKILL after 15 s) and wait until it is gone. State stays.
# reset    delete every server of every project and the projects' quota overrides: each test session starts
#          with an empty cloud. Needs a running cloud.
# service <name> stop|start
#          stop or start one API (keystone, placement, glance, nova-api, network): a test's fault at a boundary.
# status   each process (running or stopped) and whether each API answers.
# env      print the variables the tests use:
#            OS_CLIENT_CONFIG_FILE   <dir>/clouds.yaml: clouds daas-admin (admin), daas-hub (user daas-hub, member of
#                                    project daas: what the hub uses), daas-other (other-user, member of project other)
#            DAAS_OS_DIR             the cloud's directory
#            DAAS_OS_PORTS_DIR       <dir>/ports: a test's boot agent writes <server id>.json ({"ip_address": ...})
#            DAAS_OS_NOVA_ACCESS_LOG <dir>/log/nova-api-access.log
#
# Access logs (gunicorn): <dir>/log/<api>-access.log for keystone, placement, glance and nova-api, one line per
# request:  [<time>] "<method> <path?query as sent, percent-encoding kept> <protocol>" <status> <duration>ms
#   e.g.    [04/Dec/2026:19:20:01 +0000] "GET /v2.1/servers/detail?tags=daas HTTP/1.1" 200 41ms
# The Neutron stand-in logs `<time> <method> <path?query> <status>` to <dir>/log/network.log.
#
# State, configuration, logs and pid files live in ${DAAS_OS_DIR:-/var/tmp/daas-openstack} (passwords, random per
# directory, in <dir>/secrets and <dir>/clouds.yaml, mode 0600). Remove it for a cold start.
# DAAS_OS_TIMEOUT (default 120 s) limits the waits in `start`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${DAAS_OS_DIR:-/var/tmp/daas-openstack}
CACHE=${DAAS_OS_CACHE:-/var/cache/daas-openstack}
VENV=$CACHE/venv
VMS=${DAAS_OS_VMS:-/var/tmp/daas-openstack-vms}
CLOUD_INIT=$CACHE/cloud-init  # Debian's cloud-init package, unpacked: the boot agent's schema check
REQUIREMENTS=$HERE/openstack-requirements.txt
PACKAGES=(rabbitmq-server python3-venv curl)
TIMEOUT=${DAAS_OS_TIMEOUT:-120}
HOST=daas-compute
KEYSTONE_PORT=5000
PLACEMENT_PORT=8778
GLANCE_PORT=9292
NOVA_PORT=8774
NETWORK_PORT=9696
AMQP_PORT=5672
RABBIT_DIST_PORT=25672
EPMD_PORT=4369
PORTS=("$EPMD_PORT" "$AMQP_PORT" "$RABBIT_DIST_PORT" "$KEYSTONE_PORT" "$PLACEMENT_PORT" "$GLANCE_PORT" "$NOVA_PORT"
    "$NETWORK_PORT")
ALL=(vms nova-compute nova-scheduler nova-conductor nova-api glance placement keystone network rabbitmq epmd)
ACCESS_FORMAT='%(t)s "%(r)s" %(s)s %(M)sms'
AUTH_URL=http://127.0.0.1:$KEYSTONE_PORT/v3

T0=${EPOCHREALTIME/[.,]/}
elapsed() { local now=${EPOCHREALTIME/[.,]/}; printf '%d.%d' $(((now - T0) / 1000000)) $((((now - T0) / 100000) % 10)); }
say() { echo "[openstack.sh $(elapsed)s] $*"; }
die() { echo "[openstack.sh] ERROR: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
export DEBIAN_FRONTEND=noninteractive

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

venv_stamp() { { /usr/bin/python3 --version; sha256sum <"$REQUIREMENTS"; } | sha256sum | cut -c1-16; }

# Every Python of the venv loads openstack_sqlite.py (BEGIN IMMEDIATE for SQLite; see there).
install_sqlite_hook() {
    local site
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cmp -s "$HERE/openstack_sqlite.py" "$site/daas_sqlite_begin_immediate.py" ||
        cp "$HERE/openstack_sqlite.py" "$site/daas_sqlite_begin_immediate.py"
    echo "import daas_sqlite_begin_immediate" >"$site/daas_sqlite_begin_immediate.pth"
}

# Debian's cloud-init, unpacked and not installed: installing it would set up this machine's own boot.
unpack_cloud_init() {
    [[ -d $CLOUD_INIT/usr/lib/python3/dist-packages/cloudinit ]] && return 0
    local download
    download=$(mktemp -d)
    chmod 755 "$download"  # apt's download user writes there
    (cd "$download" && { apt-get download -qq cloud-init 2>/dev/null || { apt-get update -qq && apt-get download -qq cloud-init; }; })
    rm -rf "$CLOUD_INIT"
    mkdir -p "$CACHE"
    dpkg-deb -x "$download"/cloud-init_*.deb "$CLOUD_INIT"
    rm -rf "$download"
}

cmd_install() {
    apt_install "${PACKAGES[@]}"
    unpack_cloud_init
    local stamp
    stamp=$(venv_stamp)
    if [[ -x $VENV/bin/python && $(cat "$VENV/.daas-stamp" 2>/dev/null) == "$stamp" ]]; then
        install_sqlite_hook
        return 0
    fi
    say "making the OpenStack venv $VENV (a minute or a few)"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$REQUIREMENTS" >"$CACHE/pip.log" 2>&1 ||
        { tail -20 "$CACHE/pip.log" >&2; die "pip install failed ($CACHE/pip.log)"; }
    echo "$stamp" >"$VENV/.daas-stamp"
    install_sqlite_hook
    say "venv ready: $("$VENV/bin/pip" list 2>/dev/null | grep -E '^(nova|keystone|glance|openstack-placement) ' | tr -s ' ' | tr '\n' ' ')"
}

# ---------------------------------------------------------------- secrets and configuration

# Random passwords, made once per cloud directory.
write_secrets() {
    local file=$DIR/secrets name
    touch "$file"
    chmod 600 "$file"
    for name in admin nova placement glance daas-hub other-user rabbitmq; do
        grep -q "^$name=" "$file" || echo "$name=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >>"$file"
    done
}
secret() { awk -F= -v name="$1" '$1 == name {print $2}' "$DIR/secrets"; }

write_clouds() {
    local file=$DIR/clouds.yaml
    : >"$file"
    chmod 600 "$file"
    cat >>"$file" <<EOF
# The OpenStack test cloud (tests/cluster/openstack.sh). Passwords are random per cloud directory.
clouds:
EOF
    local entry cloud user project
    for entry in "daas-admin admin admin" "daas-hub daas-hub daas" "daas-other other-user other"; do
        read -r cloud user project <<<"$entry"
        cat >>"$file" <<EOF
  $cloud:
    auth:
      auth_url: $AUTH_URL
      username: $user
      password: $(secret "$user")
      project_name: $project
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
    done
}

# [keystone_authtoken] and the sections for service-to-service calls, as service user $1.
auth_section() {
    cat <<EOF
[$1]
auth_type = password
auth_url = $AUTH_URL
www_authenticate_uri = $AUTH_URL
username = $2
password = $(secret "$2")
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
valid_interfaces = public

EOF
}

# SQLite under several processes: wait up to 60 s for another writer's lock (the default 5 s made concurrent
# creates fail with "database is locked" and left servers in BUILD), and no fsync per commit.
db_url() { echo "sqlite:///$DIR/db/$1.sqlite?timeout=60"; }

write_configs() {
    local etc=$DIR/etc
    mkdir -p "$etc"/{keystone,placement,glance,nova,rabbitmq} "$DIR/wsgi"
    cat >"$etc/keystone/keystone.conf" <<EOF
[database]
connection = $(db_url keystone)
sqlite_synchronous = false
[token]
provider = fernet
[fernet_tokens]
key_repository = $DIR/keystone/fernet-keys
[fernet_receipts]
key_repository = $DIR/keystone/fernet-keys
[credential]
key_repository = $DIR/keystone/credential-keys
[identity]
password_hash_rounds = 4
EOF
    { cat <<EOF
[placement_database]
connection = $(db_url placement)
sqlite_synchronous = false
[api]
auth_strategy = keystone
EOF
        auth_section keystone_authtoken placement; } >"$etc/placement/placement.conf"
    cp "$VENV/etc/glance/glance-api-paste.ini" "$etc/glance/"
    { cat <<EOF
[DEFAULT]
enabled_backends = fs:file
[database]
connection = $(db_url glance)
sqlite_synchronous = false
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $DIR/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $DIR/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DIR/glance/tasks
[paste_deploy]
flavor = keystone
config_file = $etc/glance/glance-api-paste.ini
EOF
        auth_section keystone_authtoken glance; } >"$etc/glance/glance-api.conf"
    cp "$VENV/etc/nova/api-paste.ini" "$etc/nova/"
    { cat <<EOF
[DEFAULT]
host = $HOST
my_ip = 127.0.0.1
state_path = $DIR/nova
instances_path = $DIR/nova/instances
transport_url = rabbit://daas:$(secret rabbitmq)@127.0.0.1:$AMQP_PORT/
compute_driver = fake.FakeDriverWithoutFakeNodes
rpc_response_timeout = 15
graceful_shutdown_timeout = 5
# Heartbeats every 5 s (default 10): start sees a restarted nova-compute up sooner.
report_interval = 5
[api]
auth_strategy = keystone
[api_database]
connection = $(db_url nova_api)
sqlite_synchronous = false
[database]
connection = $(db_url nova_cell1)
sqlite_synchronous = false
[conductor]
workers = 1
[scheduler]
workers = 1
[oslo_concurrency]
lock_path = $DIR/nova/lock
[vnc]
enabled = false
[quota]
# Raised from the defaults (10 instances, 20 cores, 50 GB RAM) so ~12 test servers, a 16-core flavor and the
# 4096-vCPU flavor reach the scheduler; a test provokes "Quota exceeded" with the admin's per-project quota set.
instances = 100
cores = -1
ram = -1
EOF
        auth_section keystone_authtoken nova
        # nova-api checks every request's token with Keystone (no token cache): Keystone down is felt at once,
        # as a cloud whose cache has expired feels it (tests/integration/test_openstack_lifecycle.py).
        printf '%s\n\n' "[keystone_authtoken]" "token_cache_time = -1"
        auth_section placement nova
        auth_section glance nova
        auth_section neutron nova; } >"$etc/nova/nova.conf"
    # RabbitMQ: its own node name, addresses and files only; not Debian's /etc/rabbitmq.
    echo "[]." >"$etc/rabbitmq/enabled_plugins"
    printf '%s\n' "listeners.tcp.default = 127.0.0.1:$AMQP_PORT" "loopback_users = none" >"$etc/rabbitmq/rabbitmq.conf"
    : >"$etc/rabbitmq/rabbitmq-env.conf"
    # The OpenStack WSGI apps parse sys.argv (gunicorn's) as their own command line: clear it first.
    local api module
    for api in "keystone keystone.wsgi.api" "placement placement.wsgi.api" "glance glance.wsgi.api" \
        "nova_api nova.wsgi.osapi_compute"; do
        read -r name module <<<"$api"
        printf '%s\n' '"""gunicorn entry point of the test cloud: the app must not see gunicorn'"'"'s argv."""' \
            "import sys" "" "sys.argv = sys.argv[:1]" "from $module import application  # noqa: E402" \
            >"$DIR/wsgi/daas_$name.py"
    done
}

# ---------------------------------------------------------------- processes

running() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1") != Z* ]]; }
pid_of() { local f=$DIR/run/$1.pid; [[ -s $f ]] && running "$(<"$f")" && cat "$f"; }

# launch <name> <command...>: detached, output to log/<name>.log, pid in run/<name>.pid; nothing if it runs.
launch() {
    local name=$1
    shift
    if pid_of "$name" >/dev/null; then return 1; fi
    setsid "$@" >>"$DIR/log/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
}

wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < TIMEOUT * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    logs
    die "$what did not come up within ${TIMEOUT}s (logs in $DIR/log)"
}

logged_since() { tail -c "+$(($2 + 1))" "$1" | grep -q "$3"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
answers() { curl -s -o /dev/null --max-time 5 "$1"; }

check_ports() {
    local port busy=()
    for port in "${PORTS[@]}"; do port_open "$port" && busy+=("$port"); done
    ((!${#busy[@]})) || die "ports ${busy[*]} are in use on 127.0.0.1 (another cloud? run stop, or see ss -ltnp)"
}

api() {
    local name=$1 port=$2 module=$3
    shift 3
    launch "$name" env "$@" "$VENV/bin/gunicorn" --workers 1 --bind "127.0.0.1:$port" --no-control-socket \
        --timeout 120 --graceful-timeout 5 --pythonpath "$DIR/wsgi" \
        --access-logfile "$DIR/log/$name-access.log" --access-logformat "$ACCESS_FORMAT" "$module:application"
}

python_() { OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml DAAS_OS_SECRETS=$DIR/secrets DAAS_OS_TIMEOUT=$TIMEOUT \
    "$VENV/bin/python" "$@"; }
manage() { "$VENV/bin/$1" --config-file "$DIR/etc/$2" "${@:3}" >>"$DIR/log/setup.log" 2>&1 ||
    { tail -20 "$DIR/log/setup.log" >&2; die "$1 ${*:3} failed ($DIR/log/setup.log)"; }; }
# once <step> <command...>: a cold-start step, skipped when it succeeded before in this directory.
once() {
    local step=$1
    shift
    [[ -e $DIR/done/$step ]] && return 0
    "$@"
    touch "$DIR/done/$step"
}

start_rabbitmq() {
    local home=$DIR/rabbitmq
    mkdir -p "$home/home" "$home/mnesia" "$DIR/log/rabbitmq"
    launch epmd epmd -address 127.0.0.1 -port "$EPMD_PORT" || true
    wait_for epmd port_open "$EPMD_PORT"
    # The default user is made with the first boot's database only.
    launch rabbitmq env HOME="$home/home" RABBITMQ_CONF_ENV_FILE="$DIR/etc/rabbitmq/rabbitmq-env.conf" \
        RABBITMQ_CONFIG_FILE="$DIR/etc/rabbitmq/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/etc/rabbitmq/enabled_plugins" \
        RABBITMQ_NODENAME=daas-openstack@localhost RABBITMQ_MNESIA_BASE="$home/mnesia" \
        RABBITMQ_LOG_BASE="$DIR/log/rabbitmq" RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT ERL_EPMD_PORT=$EPMD_PORT \
        RABBITMQ_DEFAULT_USER=daas RABBITMQ_DEFAULT_PASS="$(secret rabbitmq)" \
        /usr/lib/rabbitmq/bin/rabbitmq-server || true
}

setup_keystone() {
    local conf=keystone/keystone.conf
    mkdir -p "$DIR/keystone/fernet-keys" "$DIR/keystone/credential-keys"
    manage keystone-manage "$conf" db_sync
    manage keystone-manage "$conf" fernet_setup --keystone-user root --keystone-group root
    manage keystone-manage "$conf" credential_setup --keystone-user root --keystone-group root
    manage keystone-manage "$conf" bootstrap --bootstrap-password "$(secret admin)" --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$AUTH_URL" --bootstrap-public-url "$AUTH_URL" --bootstrap-internal-url "$AUTH_URL"
}

setup_nova() {
    local conf=nova/nova.conf
    manage nova-manage "$conf" api_db sync
    manage nova-manage "$conf" cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
    manage nova-manage "$conf" cell_v2 create_cell --name cell1
    manage nova-manage "$conf" db sync
}

cmd_start() {
    cmd_install
    mkdir -p "$DIR"/{run,log,db,done,ports,nova/lock,glance}
    chmod 700 "$DIR"
    local name started=()
    for name in "${ALL[@]}"; do pid_of "$name" >/dev/null && started+=("$name"); done
    if ((${#started[@]} == ${#ALL[@]})) && [[ -e $DIR/run/ready ]]; then
        say "already running"
        return 0
    fi
    ((${#started[@]})) || check_ports
    write_secrets
    write_clouds
    write_configs
    if [[ -e $DIR/done/nova-db ]]; then say "warm start"; else say "cold start: databases, migrations, accounts, content"; fi
    start_rabbitmq
    once placement-db manage placement-manage placement/placement.conf db sync
    once glance-db manage glance-manage glance/glance-api.conf db_sync
    once nova-db setup_nova
    once keystone-db setup_keystone
    # Write-ahead logging: readers and the writer do not block each other (kept in the files).
    once wal "$VENV/bin/python" -c 'import sqlite3, sys
for path in sys.argv[1:]:
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL")' "$DIR"/db/*.sqlite
    launch network "$VENV/bin/python" "$HERE/openstack_network.py" --port "$NETWORK_PORT" --ports-dir "$DIR/ports" || true
    api keystone "$KEYSTONE_PORT" daas_keystone OS_KEYSTONE_CONFIG_DIR="$DIR/etc/keystone" || true
    api placement "$PLACEMENT_PORT" daas_placement OS_PLACEMENT_CONFIG_DIR="$DIR/etc/placement" || true
    api glance "$GLANCE_PORT" daas_glance OS_GLANCE_CONFIG_DIR="$DIR/etc/glance" || true
    api nova-api "$NOVA_PORT" daas_nova_api OS_NOVA_CONFIG_DIR="$DIR/etc/nova" \
        OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf" || true
    wait_for keystone answers "http://127.0.0.1:$KEYSTONE_PORT/v3"
    # Accounts and content again when openstack_catalog.py changed (its steps only add what is missing).
    local catalog_key
    catalog_key=$(sha256sum <"$HERE/openstack_catalog.py" | cut -c1-12)
    once "identity-$catalog_key" python_ "$HERE/openstack_catalog.py" identity
    wait_for RabbitMQ port_open "$AMQP_PORT"
    local conductor_log=$DIR/log/nova-conductor.log offset
    offset=$(stat -c %s "$conductor_log" 2>/dev/null || echo 0)
    launch nova-conductor "$VENV/bin/nova-conductor" --config-file "$DIR/etc/nova/nova.conf" || offset=0
    launch nova-scheduler "$VENV/bin/nova-scheduler" --config-file "$DIR/etc/nova/nova.conf" || true
    wait_for placement answers "http://127.0.0.1:$PLACEMENT_PORT/"
    wait_for glance answers "http://127.0.0.1:$GLANCE_PORT/"
    wait_for nova-api answers "http://127.0.0.1:$NOVA_PORT/"
    wait_for network answers "http://127.0.0.1:$NETWORK_PORT/"
    once "content-$catalog_key" python_ "$HERE/openstack_catalog.py" content
    # nova-compute pings the conductor first and waits 10 s for an answer that a starting conductor misses.
    wait_for nova-conductor logged_since "$conductor_log" "$offset" "Starting conductor node"
    # Last: it reports its node to placement and the conductor at once.
    local compute_started=0
    launch nova-compute "$VENV/bin/nova-compute" --config-file "$DIR/etc/nova/nova.conf" && compute_started=1
    say "services started; waiting for nova-compute"
    # A heartbeat newer than the process: the one before a restart says nothing.
    DAAS_OS_COMPUTE_SINCE=$(stat -c %Y "$DIR/run/nova-compute.pid") python_ "$HERE/openstack_catalog.py" compute \
        >/dev/null || { logs; die "nova-compute did not come up"; }
    once hosts manage nova-manage nova/nova.conf cell_v2 discover_hosts
    if ((compute_started)); then python_ "$HERE/openstack_catalog.py" reset >/dev/null; fi
    mkdir -p "$VMS"
    chmod 755 "$VMS"
    launch vms env OS_CLIENT_CONFIG_FILE="$DIR/clouds.yaml" "$VENV/bin/python" "$HERE/openstack_vms.py" \
        --cloud daas-admin --dir "$VMS" --ports "$DIR/ports" --cloud-init "$CLOUD_INIT" || true
    touch "$DIR/run/ready"
    say "cloud ready (OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml)"
}

# Whether any process of the session (setsid) that <pid> leads is alive: a zombie is gone (PID 1 of this VM reaps
# a daemon whose parent exited only after 1-2 s).
# shellcheck disable=SC2009  # pgrep cannot leave out zombies
session_alive() { ps -o stat= -s "$1" 2>/dev/null | grep -qv '^Z'; }

# stop_group <name...>: SIGTERM to each one's whole session (gunicorn's worker, the rabbitmq-server script's erl)
# at once, wait until all are gone, SIGKILL what is left after 15 s.
stop_group() {
    local name pid pids=() i left
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for ((i = 0; i < 150; i++)); do
        left=()
        for pid in "${pids[@]}"; do session_alive "$pid" && left+=("$pid"); done
        ((${#left[@]})) || break
        sleep 0.1
    done
    for pid in "${left[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    for name in "$@"; do rm -f "$DIR/run/$name.pid"; done
}

cmd_stop() {
    [[ -d $DIR/run ]] || return 0
    say "stopping"
    rm -f "$DIR/run/ready"
    # The broker last: the services leave it cleanly.
    stop_group vms  # first: it ends the VMs' processes
    stop_group nova-compute nova-scheduler nova-conductor nova-api glance placement keystone network
    stop_group rabbitmq
    stop_group epmd
    say "stopped"
}

cmd_reset() {
    pid_of nova-api >/dev/null || die "the cloud is not running (start it first)"
    python_ "$HERE/openstack_catalog.py" reset
}

cmd_service() {
    local name=${1:-} action=${2:-}
    case $name in
        keystone) set -- keystone "$KEYSTONE_PORT" daas_keystone OS_KEYSTONE_CONFIG_DIR="$DIR/etc/keystone" ;;
        placement) set -- placement "$PLACEMENT_PORT" daas_placement OS_PLACEMENT_CONFIG_DIR="$DIR/etc/placement" ;;
        glance) set -- glance "$GLANCE_PORT" daas_glance OS_GLANCE_CONFIG_DIR="$DIR/etc/glance" ;;
        nova-api) set -- nova-api "$NOVA_PORT" daas_nova_api OS_NOVA_CONFIG_DIR="$DIR/etc/nova" \
            OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf" ;;
        network) set -- network ;;
        *) die "usage: $0 service keystone|placement|glance|nova-api|network stop|start" ;;
    esac
    case $action in
        stop) stop_group "$name" ;;
        start)
            if [[ $name == network ]]; then
                launch network "$VENV/bin/python" "$HERE/openstack_network.py" --port "$NETWORK_PORT" \
                    --ports-dir "$DIR/ports" || true
            else
                api "$@" || true
            fi
            local port=${2:-$NETWORK_PORT}
            wait_for "$name" answers "http://127.0.0.1:$port/"
            ;;
        *) die "usage: $0 service <name> stop|start" ;;
    esac
}

cmd_status() {
    local name pid
    for name in "${ALL[@]}"; do
        if pid=$(pid_of "$name"); then echo "$name: running ($pid)"; else echo "$name: stopped"; fi
    done
    local port
    for name in "keystone $KEYSTONE_PORT" "placement $PLACEMENT_PORT" "glance $GLANCE_PORT" "nova-api $NOVA_PORT" \
        "network $NETWORK_PORT"; do
        read -r name port <<<"$name"
        if answers "http://127.0.0.1:$port/"; then echo "$name API: answers on 127.0.0.1:$port"; else echo "$name API: no answer"; fi
    done
}

logs() {
    local file
    for file in "$DIR"/log/*.log; do
        [[ $file == *-access.log ]] && continue
        echo "== $file" >&2
        tail -5 "$file" >&2
    done
}

cmd_env() {
    echo "OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml"
    echo "DAAS_OS_DIR=$DIR"
    echo "DAAS_OS_PORTS_DIR=$DIR/ports"
    echo "DAAS_OS_NOVA_ACCESS_LOG=$DIR/log/nova-api-access.log"
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    reset) cmd_reset ;;
    service) cmd_service "${@:2}" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: $0 install|start|stop|reset|service|status|env" >&2; exit 2 ;;
esac
