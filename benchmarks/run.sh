#!/usr/bin/env bash
# Every benchmark in one run, then benchmarks/RESULTS.md (as root, on the test VM; about 100 minutes):
#   bash benchmarks/run.sh
# Installs what is missing (tests/setup.sh, benchmarks/setup.sh), starts the Slurm and Kubernetes test
# clusters and the OpenStack test cloud, runs each benchmark against the real components with the DaaS spawner and its peer alternately,
# writes each one's JSON into benchmarks/results/ and the report from them. BENCH_QUICK=1: fewer rounds and
# smaller N, to try the machinery (its figures are not for RESULTS.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
PY=$PREFIX/venv/bin/python
export CI=${CI:-}

bash tests/setup.sh
bash benchmarks/setup.sh
bash tests/cluster/slurm.sh start
bash tests/cluster/kubernetes.sh start
bash tests/cluster/openstack.sh start

if [[ -n ${BENCH_QUICK:-} ]]; then
    spawns=(--counts 1,5 --repeats 1 --steady 10)
    kubernetes=(--counts 1,5 --repeats 1 --steady 10)
    openstack=(--counts 1,2 --repeats 1 --steady 20)
    form=(--repeats 1 --viewers 1,10 --views 50)
    dask=(--repeats 1)
    fuzz=(--rest 50 --form 20)
    hardening=(--servers 5 --running 3 --outage 20)
    scale=(--counts 20,40 --steady 10 --batchspawner-max 20)
else
    spawns=() kubernetes=() openstack=() form=() dask=() fuzz=() hardening=() scale=(--profile --postgres)
fi

run() {
    echo "=== $*"
    "$PY" "$@"
}
run benchmarks/spawns.py "${spawns[@]}"
run benchmarks/kubernetes_spawns.py "${kubernetes[@]}"
run benchmarks/openstack_spawns.py "${openstack[@]}"
run benchmarks/form_render.py "${form[@]}"
run benchmarks/dask_offload.py "${dask[@]}"
run benchmarks/fuzz_options.py "${fuzz[@]}"
run benchmarks/hardening.py "${hardening[@]}"
run benchmarks/scale.py "${scale[@]}"
run benchmarks/attack_matrix.py || echo "attack matrix: some case failed (see above)"
run benchmarks/report.py
