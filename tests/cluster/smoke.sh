#!/usr/bin/env bash
# Smoke test of the cluster started by tests/cluster/slurm.sh (run as root while it runs):
#   bash tests/cluster/slurm.sh start && bash tests/cluster/smoke.sh
# Submits a few short jobs as the test users and checks the layout, GPUs, features, accounts,
# squeue --json and a controller restart with running jobs. Cancels its jobs at the end.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d /tmp/daas-smoke.XXXXXX)
chmod 1777 "$OUT"
JOBS=()
fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
cleanup() {
    ((${#JOBS[@]})) && scancel "${JOBS[@]}" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT

# submit as user $1, remaining args to sbatch; prints the job id
submit() {
    local u=$1 id
    shift
    id=$(sudo -u "$u" /usr/bin/sbatch --parsable -D "$OUT" -o "$OUT/%j.out" "$@")
    JOBS+=("$id")
    echo "$id"
}
field() { scontrol show job "$1" | grep -oE "(^| )$2=[^ ]*" | head -1 | cut -d= -f2; }
wait_state() { # job state [timeout]
    local i
    for ((i = 0; i < ${3:-20} * 10; i++)); do
        [[ $(field "$1" JobState) == "$2" ]] && return 0
        sleep 0.1
    done
    fail "job $1 not $2 (is $(field "$1" JobState), reason $(field "$1" Reason))"
}

# layout
[[ $(sinfo -h -o '%R' | sort | tr '\n' ' ') == "cpu gpu power9 " ]] || fail "partitions: $(sinfo -h -o %R)"
[[ $(sinfo -h -N -o '%N %T' | sort -u | grep -c ' idle$') == 4 ]] || fail "not 4 idle nodes: $(sinfo -N)"
ok "3 partitions, 4 idle nodes"

# GPUs
g1=$(submit alice -p gpu --gres=gpu:tesla:1 --wrap 'echo "CVD=$CUDA_VISIBLE_DEVICES node=$SLURMD_NODENAME"; sleep 30')
g2=$(submit bob -p gpu --gres=gpu:tesla:1 --wrap 'sleep 30')
wait_state "$g1" RUNNING
wait_state "$g2" RUNNING
g3=$(submit carol -p gpu --gres=gpu:tesla:1 --wrap 'sleep 1')
sleep 2
[[ $(field "$g3" JobState) == PENDING && $(field "$g3" Reason) == Resources ]] ||
    fail "third GPU job: $(field "$g3" JobState) $(field "$g3" Reason)"
grep -q '^CVD=[01] node=gpu01$' "$OUT/$g1.out" || fail "gpu job output: $(cat "$OUT/$g1.out")"
ok "GPU jobs on gpu01 ($(cat "$OUT/$g1.out")), third pends with Resources"

# features and accounts
p9=$(submit alice -p power9 -C power9 --wrap 'echo $SLURMD_NODENAME; sleep 5')
wait_state "$p9" RUNNING
[[ $(field "$p9" NodeList) == p9-01 ]] || fail "power9 job on $(field "$p9" NodeList)"
ok "power9 job on p9-01"
acc=$(submit bob --account=foo --wrap 'sleep 1')
[[ $(field "$acc" Account) == foo ]] || fail "account $(field "$acc" Account)"
ok "Account=foo"

# JSON
squeue --json | python3 -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
assert any(j["partition"] == "gpu" and j["job_state"] == "RUNNING" for j in jobs), jobs
' || fail "squeue --json"
ok "squeue --json"

# controller outage
bash "$HERE/slurm.sh" stop-controller
squeue -h >/dev/null 2>&1 && fail "squeue works without controller"
sleep 2
bash "$HERE/slurm.sh" start-controller
[[ $(field "$g1" JobState) == RUNNING ]] || fail "job $g1 after controller restart: $(field "$g1" JobState)"
ok "job $g1 still RUNNING after controller restart"

# a finished job stays visible with -t all (MinJobAge=300)
wait_state "$acc" COMPLETED 10
[[ $(squeue -h -t all -j "$acc" -o %T) == COMPLETED ]] || fail "finished job not in squeue -t all"
ok "finished job visible in squeue -t all"
echo "SMOKE OK"
