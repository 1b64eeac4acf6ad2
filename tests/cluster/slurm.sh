#!/usr/bin/env bash
# Start and stop a small, real Slurm cluster on this single machine (Debian 12, as root, no systemd).
#
#   bash tests/cluster/slurm.sh install|start|stop|restart|stop-controller|start-controller|stop-rest|start-rest|status|users
#
# Layout (all nodes are slurmd processes on this host, NodeAddr=127.0.0.1):
#   cpu01, cpu02  partition cpu (default)  8 CPUs, 16000 MB
#   gpu01         partition gpu            8 CPUs, 16000 MB, Gres=gpu:tesla:2 (fake device files)
#   p9-01         partition power9         8 CPUs, 16000 MB, Features=ppc64le,power9
# Config goes to /etc/slurm (so plain `sudo -u alice sbatch` works); state, spool, logs and pid files go
# to ${DAAS_SLURM_DIR:-/var/tmp/daas-slurm}. See tests/cluster/README.md.
# Benchmarks (benchmarks/README.md) pose a larger cluster, taking effect when slurmctld (re)starts:
#   DAAS_SLURM_CPUS=N         CPUs per node instead of 8 (slurmd trusts the configuration)
#   DAAS_SLURM_MEMORY=MB      memory per node instead of 16000 MB (posed too: no cgroup enforces it)
#   DAAS_SLURM_JOB_STARTS=F   a Prolog appends "<job id> <epoch seconds>" to F when a job starts on a node
# The controller also takes JWTs (AuthAltTypes=auth/jwt, key $CONF_DIR/jwt_hs256.key), and slurmrestd
# (REST API v0.0.38) listens on 127.0.0.1:${DAAS_SLURMRESTD_PORT:-6830} as the system user slurmrest.
set -euo pipefail

DIR=${DAAS_SLURM_DIR:-/var/tmp/daas-slurm}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES_CONF=$CONF_DIR/gres.conf
CLUSTER=daas-test
CTLD_PORT=6817
NODES=(cpu01 cpu02 gpu01 p9-01)
declare -A NODE_PORT=([cpu01]=6818 [cpu02]=6819 [gpu01]=6820 [p9-01]=6821)
PACKAGES=(slurmctld slurmd slurm-client slurmrestd slurm-wlm-jwt-plugin munge sudo procps)
TEST_USERS=(alice bob carol)
TIMEOUT=${DAAS_SLURM_TIMEOUT:-60}
NODE_CPUS=${DAAS_SLURM_CPUS:-8}
JOB_STARTS=${DAAS_SLURM_JOB_STARTS:-}
NODE_MEMORY=${DAAS_SLURM_MEMORY:-16000}
[[ $NODE_CPUS =~ ^[1-9][0-9]{0,3}$ ]] || { echo "[slurm.sh] ERROR: DAAS_SLURM_CPUS must be a number" >&2; exit 2; }
[[ $NODE_MEMORY =~ ^[1-9][0-9]{3,6}$ ]] || { echo "[slurm.sh] ERROR: DAAS_SLURM_MEMORY must be MB, 1000 or more" >&2; exit 2; }

REST_PORT=${DAAS_SLURMRESTD_PORT:-6830}
REST_USER=slurmrest  # slurmrestd refuses to run as root or SlurmUser
JWT_KEY=$CONF_DIR/jwt_hs256.key

MUNGE_PID=/run/munge/munged.pid
REST_PID=$DIR/run/slurmrestd.pid
REST_LOG=$DIR/log/slurmrestd.log
CTLD_PID=$DIR/run/slurmctld.pid
CTLD_LOG=$DIR/log/slurmctld.log
slurmd_pid() { echo "$DIR/run/slurmd-$1.pid"; }
slurmd_log() { echo "$DIR/log/slurmd-$1.log"; }

T0=${EPOCHREALTIME/[.,]/}
elapsed() { local now=${EPOCHREALTIME/[.,]/}; printf '%d.%d' $(((now - T0) / 1000000)) $((((now - T0) / 100000) % 10)); }
say() { echo "[slurm.sh $(elapsed)s] $*"; }
die() { echo "[slurm.sh] ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"

# ---------------------------------------------------------------- helpers

# process exists and is not a zombie (PID 1 of a container may reap late)
running() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# pid from a pid file if that process is alive and is the daemon the file is named after
# (munged.pid, slurmctld.pid, slurmd-<node>.pid), else nothing (exit 1)
alive_pid() {
    local f=$1 pid name
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    name=$(basename "$f" .pid)
    name=${name%%-*}
    [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    echo "$pid"
}

# wait until a pid is gone; SIGKILL after $2 seconds
wait_gone() {
    local pid=$1 secs=${2:-20} name=${3:-process} i
    for ((i = 0; i < secs * 10; i++)); do
        running "$pid" || return 0
        sleep 0.1
    done
    say "$name (pid $pid) did not exit after ${secs}s, sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        running "$pid" || return 0
        sleep 0.1
    done
    die "$name (pid $pid) survived SIGKILL"
}

# stop the daemon whose pid file is $1 (SIGTERM, then wait)
stop_pidfile() {
    local f=$1 name=$2 secs=${3:-20} pid
    if pid=$(alive_pid "$f"); then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" "$secs" "$name"
        say "stopped $name (pid $pid)"
    fi
    rm -f "$f"
}

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

show_logs() {
    local f
    for f in "$CTLD_LOG" "$REST_LOG" "$DIR"/log/slurmd-*.log /var/log/munge/munged.log; do
        [[ -f $f ]] || continue
        echo "----- tail $f" >&2
        tail -n 25 "$f" >&2
    done
}

start_failed() {
    echo "[slurm.sh] ERROR: $*" >&2
    show_logs
    exit 1
}

# ---------------------------------------------------------------- install / users

cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    # Without systemd the packages' postinst would try to start the daemons via init scripts (and fail
    # without a config): forbid that with a temporary policy-rc.d unless one exists already.
    local policy=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    { apt-get update -q && apt-get install -y -q "${missing[@]}"; } || rc=$?
    ((created)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get failed (exit $rc)"
}

cmd_users() {
    local u
    for u in "${TEST_USERS[@]}"; do
        if ! id "$u" >/dev/null 2>&1; then
            useradd -m -s /bin/bash "$u"
            say "created user $u"
        fi
    done
    if ! id "$REST_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$REST_USER"
        say "created system user $REST_USER (runs slurmrestd)"
    fi
}

# ---------------------------------------------------------------- configuration

write_conf() {
    local host tmp n slurm_user=slurm
    host=${HOSTNAME%%.*}   # short host name, as slurmd and slurmctld see it
    id slurm >/dev/null 2>&1 || slurm_user=root
    mkdir -p "$CONF_DIR"
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by tests/cluster/slurm.sh (jupyterhub-daas test cluster). Do not edit: rewritten on start.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=$slurm_user
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none

StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info

# No systemd / cgroups here
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none

SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
SlurmdParameters=config_overrides
ReturnToService=2
# Jobs get a person's groups as they are now: tests create proposal groups while slurmd runs, and
# Slurm would otherwise use the group list it cached at that person's last job for 600 s.
GroupUpdateTime=0

# Timers suited to tests
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0

EOF
    if [[ -n $JOB_STARTS ]]; then
        write_prolog "$JOB_STARTS"
        echo "Prolog=$DIR/prolog.sh" >>"$tmp"
    fi
    for n in "${NODES[@]}"; do
        local extra=""
        case $n in
            gpu01) extra=" Gres=gpu:tesla:2" ;;
            p9-01) extra=" Features=ppc64le,power9" ;;
        esac
        echo "NodeName=$n NodeHostname=$host NodeAddr=127.0.0.1 Port=${NODE_PORT[$n]} CPUs=$NODE_CPUS Sockets=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEMORY$extra State=UNKNOWN" >>"$tmp"
    done
    cat >>"$tmp" <<EOF

PartitionName=cpu Nodes=cpu01,cpu02 Default=YES MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=gpu Nodes=gpu01 MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=power9 Nodes=p9-01 MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP
EOF
    install -m 0644 "$tmp" "$CONF"
    rm -f "$tmp"

    cat >"$GRES_CONF" <<EOF
# Written by tests/cluster/slurm.sh: fake GPUs (device files are copies of /dev/null)
AutoDetect=off
NodeName=gpu01 Name=gpu Type=tesla File=$DIR/dev/nvidia[0-1]
EOF
    chmod 0644 "$GRES_CONF"
}

# The job-start log of DAAS_SLURM_JOB_STARTS: slurmd runs the Prolog as root just before the batch script.
write_prolog() {
    local starts=$1
    touch "$starts"
    chmod 0644 "$starts"
    printf '#!/bin/sh\necho "$SLURM_JOB_ID $(date +%%s.%%N)" >> %q\n' "$starts" >"$DIR/prolog.sh"
    chmod 0755 "$DIR/prolog.sh"
}

# The HS256 key of the JWTs slurmctld and slurmrestd accept: 32 random bytes, SlurmUser's alone.
write_jwt_key() {
    local owner=slurm
    id slurm >/dev/null 2>&1 || owner=root
    if [[ ! -s $JWT_KEY ]]; then
        (umask 077 && head -c 32 /dev/urandom >"$JWT_KEY")
        say "created JWT key $JWT_KEY"
    fi
    chown "$owner:" "$JWT_KEY"
    chmod 0600 "$JWT_KEY"
}

prepare_dirs() {
    local n i
    mkdir -p "$DIR"/{state,spool,run,log,dev}
    chmod 0755 "$DIR" "$DIR"/{spool,run,log,dev}
    local owner=slurm:slurm
    id slurm >/dev/null 2>&1 || owner=root:root
    chown "$owner" "$DIR/state" "$DIR/run" "$DIR/log"
    chmod 0700 "$DIR/state"
    for n in "${NODES[@]}"; do
        mkdir -p "$DIR/spool/$n"
        chmod 0755 "$DIR/spool/$n"
    done
    for i in 0 1; do
        [[ -c $DIR/dev/nvidia$i ]] || { rm -f "$DIR/dev/nvidia$i"; mknod -m 0666 "$DIR/dev/nvidia$i" c 1 3; }
    done
}

# ---------------------------------------------------------------- munge

start_munge() {
    if pid=$(alive_pid "$MUNGE_PID"); then
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "creating munge key"
        mkdir -p /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/munge/munge.key
    chmod 0755 /run/munge
    chmod 0700 /var/log/munge /etc/munge
    chmod 0711 /var/lib/munge
    chmod 0400 /etc/munge/munge.key
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock "$MUNGE_PID"
    runuser -u munge -- /usr/sbin/munged || start_failed "munged failed to start"
    local i
    for ((i = 0; i < 50; i++)); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && { say "munged started (pid $(<"$MUNGE_PID"))"; return 0; }
        sleep 0.1
    done
    start_failed "munged does not answer"
}

# ---------------------------------------------------------------- slurm daemons

start_ctld() {
    local pid i
    if pid=$(alive_pid "$CTLD_PID"); then
        return 0
    fi
    rm -f "$CTLD_PID"
    CTLD_LOG_OFFSET=$(stat -c %s "$CTLD_LOG" 2>/dev/null || echo 0)
    # -i: ignore unreadable state; no -c: keep job state (and the job id counter) across restarts
    slurmctld -i || start_failed "slurmctld failed to start"
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        ctld_up && { say "slurmctld up (pid $(alive_pid "$CTLD_PID" || echo '?'))"; return 0; }
        alive_pid "$CTLD_PID" >/dev/null || ((i < 30)) || start_failed "slurmctld exited"
        sleep 0.1
    done
    start_failed "slurmctld not UP after ${TIMEOUT}s"
}

# A fresh slurmctld runs its first scheduling pass ~3 s after start; jobs submitted before wait for it.
# Wait for that pass (its log line) so that the first test job starts at once.
CTLD_LOG_OFFSET=
wait_first_sched() {
    [[ -n $CTLD_LOG_OFFSET ]] || return 0
    local i
    for ((i = 0; i < 100; i++)); do
        tail -c +$((CTLD_LOG_OFFSET + 1)) "$CTLD_LOG" 2>/dev/null | grep -q 'SchedulerParameters=' && return 0
        sleep 0.1
    done
    say "note: no scheduling pass logged within 10 s"
}

start_slurmds() {
    local n pid
    for n in "${NODES[@]}"; do
        if pid=$(alive_pid "$(slurmd_pid "$n")"); then
            continue
        fi
        rm -f "$(slurmd_pid "$n")"
        slurmd -N "$n" || start_failed "slurmd -N $n failed to start"
    done
}

rest_up() { (exec 3<>"/dev/tcp/127.0.0.1/$REST_PORT") 2>/dev/null; }

# slurmrestd in the foreground of its own user, JWT auth only. setsid and setpriv exec, so the pid is
# slurmrestd's; its own session keeps it out of the caller's process group (a test runner's signals).
start_rest() {
    local i
    alive_pid "$REST_PID" >/dev/null && return 0
    rm -f "$REST_PID"
    setsid setpriv --reuid="$REST_USER" --regid="$REST_USER" --init-groups -- \
        env SLURM_JWT=daemon slurmrestd -a rest_auth/jwt -s openapi/v0.0.38 "127.0.0.1:$REST_PORT" \
        </dev/null >>"$REST_LOG" 2>&1 &
    echo $! >"$REST_PID"
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        rest_up && { say "slurmrestd up on 127.0.0.1:$REST_PORT (pid $(<"$REST_PID"))"; return 0; }
        alive_pid "$REST_PID" >/dev/null || ((i < 10)) || start_failed "slurmrestd exited"
        sleep 0.1
    done
    start_failed "slurmrestd does not answer on 127.0.0.1:$REST_PORT"
}

cmd_stop_rest() {
    stop_pidfile "$REST_PID" slurmrestd
}

# all nodes idle/mixed/allocated (i.e. responding); resume nodes that came back DOWN/DRAINED from saved state
wait_nodes() {
    local i states bad resumed=0
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        # %N node name, %T state
        states=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u) || true
        bad=$(awk '$2 !~ /^(idle|mixed|allocated)$/ {print $1}' <<<"$states" | sort -u)
        if [[ -n $states && -z $bad ]] && (($(wc -l <<<"$states") == ${#NODES[@]})); then
            return 0
        fi
        # after 3 s, nodes still down or drained (remembered from an earlier run) are resumed once
        if ((i == 30 && !resumed)) && [[ -n $bad ]]; then
            local n
            for n in $(awk '$2 ~ /down|drain|fail/ {print $1}' <<<"$states"); do
                say "resuming node $n ($(awk -v n="$n" '$1==n {print $2}' <<<"$states"))"
                scontrol update NodeName="$n" State=RESUME 2>/dev/null || true
            done
            resumed=1
        fi
        sleep 0.1
    done
    echo "$states" >&2
    start_failed "nodes not idle after ${TIMEOUT}s"
}

all_running() {
    local n
    alive_pid "$MUNGE_PID" >/dev/null || return 1
    alive_pid "$CTLD_PID" >/dev/null || return 1
    alive_pid "$REST_PID" >/dev/null || return 1
    for n in "${NODES[@]}"; do
        alive_pid "$(slurmd_pid "$n")" >/dev/null || return 1
    done
}

cmd_start() {
    cmd_install
    cmd_users
    if all_running && ctld_up; then
        say "cluster $CLUSTER already running"
        return 0
    fi
    prepare_dirs
    if ! alive_pid "$CTLD_PID" >/dev/null; then
        write_conf
        write_jwt_key
    fi
    start_munge
    start_ctld
    start_slurmds
    start_rest
    wait_nodes
    wait_first_sched
    say "cluster $CLUSTER ready: $(sinfo -h -o '%P:%D' | tr '\n' ' ')"
}

# ids of jobs that are not finished yet (a cancelled job that is still being killed shows as COMPLETING)
active_jobs() {
    squeue -h -t all -o '%A %T' 2>/dev/null |
        awk '$2 !~ /^(COMPLETED|CANCELLED|FAILED|TIMEOUT|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY|REVOKED)$/ {print $1}'
}

cancel_jobs() {
    ctld_up || return 0
    local ids i
    ids=$(active_jobs) || true
    if [[ -n $ids ]]; then
        say "cancelling $(wc -w <<<"$ids") job(s)"
        # shellcheck disable=SC2086
        scancel $ids 2>/dev/null || true
    fi
    # wait until the controller knows no active job and no job step process is left on the nodes
    for ((i = 0; i < 300; i++)); do
        ids=$(active_jobs) || true
        if [[ -z $ids ]] && ! pgrep -x slurmstepd >/dev/null; then
            return 0
        fi
        # jobs submitted meanwhile get cancelled too
        # shellcheck disable=SC2086
        if ((i % 20 == 19)) && [[ -n $ids ]]; then scancel $ids 2>/dev/null || true; fi
        sleep 0.1
    done
    say "after 30 s still active: jobs $(tr '\n' ' ' <<<"$ids") slurmstepd $(pgrep -x slurmstepd | tr '\n' ' ')"
}

# slurmstepd processes ignore SIGTERM and outlive slurmd: kill any left over (by pid)
kill_stepds() {
    local pids p i
    pids=$(pgrep -x slurmstepd || true)
    [[ -n $pids ]] || return 0
    say "killing leftover slurmstepd: $(tr '\n' ' ' <<<"$pids")"
    for p in $pids; do
        # also the job processes below it (their parent is the stepd)
        pkill -9 -P "$p" 2>/dev/null || true
        kill -9 "$p" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
        pgrep -x slurmstepd >/dev/null || return 0
        sleep 0.1
    done
}

cmd_stop() {
    cancel_jobs
    local n pid i pids=() names=()
    # SIGTERM all slurmd at once, then wait for each
    for n in "${NODES[@]}"; do
        if pid=$(alive_pid "$(slurmd_pid "$n")"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$n")
        fi
    done
    for i in "${!pids[@]}"; do
        wait_gone "${pids[$i]}" 20 "slurmd ${names[$i]}"
    done
    ((${#pids[@]})) && say "stopped slurmd ${names[*]}"
    rm -f "$DIR"/run/slurmd-*.pid
    kill_stepds
    stop_pidfile "$REST_PID" slurmrestd
    stop_pidfile "$CTLD_PID" slurmctld 30
    stop_pidfile "$MUNGE_PID" munged
    # Exited daemons stay zombies until PID 1 reaps them (inside containers that can take ~2 s):
    # wait, so that `pgrep slurm` is empty when we return.
    for ((i = 0; i < 100; i++)); do
        pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || pgrep -x slurmstepd >/dev/null ||
            pgrep -x slurmrestd >/dev/null ||
            pgrep -x munged >/dev/null || break
        sleep 0.1
    done
    say "cluster $CLUSTER stopped"
}

cmd_stop_controller() {
    if ! alive_pid "$CTLD_PID" >/dev/null; then
        say "slurmctld is not running"
        return 0
    fi
    stop_pidfile "$CTLD_PID" slurmctld 30
}

cmd_start_controller() {
    local before i
    alive_pid "$MUNGE_PID" >/dev/null || start_munge
    start_ctld
    wait_first_sched
    # the recovered job list must be readable again (state was saved on SIGTERM)
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        squeue -h >/dev/null 2>&1 && break
        sleep 0.1
    done
    before=$(active_jobs | wc -l)
    say "slurmctld back, $before active job(s) known"
}

cmd_status() {
    scontrol ping || true
    sinfo || true
}

case ${1:-} in
    install) cmd_install ;;
    users) cmd_users ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    stop-controller) cmd_stop_controller ;;
    stop-rest) cmd_stop_rest ;;
    start-rest) start_rest ;;
    start-controller) cmd_start_controller ;;
    status) cmd_status ;;
    logs) show_logs 2>&1 ;;
    *)
        echo "usage: $0 install|start|stop|restart|stop-controller|start-controller|stop-rest|start-rest|status|users|logs" >&2
        exit 2
        ;;
esac
