#!/usr/bin/env bash
# Set up what the benchmarks need beyond tests/setup.sh (as root, Debian 12):
#   - the peers in a venv of their own, with the same JupyterHub as the product's venv:
#     batchspawner (SlurmSpawner) and jupyterhub_moss; psutil for the hub meters; psycopg (scale.py --postgres);
#   - batchspawner's in-job helper (batchspawner-singleuser) for the product venv's Python, so that every
#     system's single-user servers run the same jupyterhub-singleuser from the same venv.
#   DAAS_PREFIX      install prefix       (default /opt/jupyterhub-daas)
#   DAAS_BENCH_VENV  the peers' venv      (default $DAAS_PREFIX/venv-bench)
set -euo pipefail

PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
VENV=$PREFIX/venv
BENCH_VENV=${DAAS_BENCH_VENV:-$PREFIX/venv-bench}
JOB_LIB=$PREFIX/batchspawner-job
BATCHSPAWNER=batchspawner==1.3.0
MOSS=jupyterhub-moss==10.1.0

[[ -x $VENV/bin/python ]] || { echo "benchmarks/setup.sh: run tests/setup.sh first" >&2; exit 1; }
jupyterhub_version=$("$VENV/bin/python" -c "import jupyterhub; print(jupyterhub.__version__)")
if [[ ! -x $BENCH_VENV/bin/python ]]; then
    echo "bench setup: creating $BENCH_VENV"
    /usr/bin/python3 -m venv "$BENCH_VENV"
fi
echo "bench setup: $BATCHSPAWNER and $MOSS with jupyterhub==$jupyterhub_version into $BENCH_VENV"
"$BENCH_VENV/bin/python" -m pip install -q "jupyterhub==$jupyterhub_version" "$BATCHSPAWNER" "$MOSS" psutil "psycopg[binary]>=3.2.1" 2>&1 |
    grep -v "^WARNING: Location" || true
"$VENV/bin/python" -m pip install -q psutil py-spy 2>&1 | grep -v "^WARNING: Location" || true
if [[ ! -x $JOB_LIB/bin/batchspawner-singleuser ]]; then
    echo "bench setup: batchspawner-singleuser for $VENV into $JOB_LIB"
    "$VENV/bin/python" -m pip install -q --no-deps --target "$JOB_LIB" "$BATCHSPAWNER" 2>&1 |
        grep -v "^WARNING: Location" || true
fi
chmod -R a+rX "$BENCH_VENV" "$JOB_LIB"
