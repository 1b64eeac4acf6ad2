"""Dask offload benchmark (issue #6): request -> 2 connected workers, through daas-dask vs plain SLURMCluster.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/dask_offload.py [--repeats N] [--json out.json]

Both paths start a scheduler with a fresh TLS key (Security.temporary) and two dask-jobqueue workers as
Slurm jobs of the user alice on the test cluster's cpu partition, 1 core and 1 GiB each, over `lo`:

- ``service``: a real JupyterHub with the daas-dask managed service; the clock runs in the client
  (`DaskOffload().new_cluster(workers=2)` -> `get_client()` -> `wait_for_workers(2)`), so it includes the
  REST call, the launcher started as alice through sudo, its imports and the TLS credentials' round trip.
- ``plain``:   what a user with a shell on a login node would run: `SLURMCluster(...)`, `scale(2)`,
  `Client(cluster).wait_for_workers(2)`, timed inside an already-running Python process as alice (its
  imports are not counted: a notebook has them loaded already).

The two alternate within each round (order flipping from round to round); ratios are per round and
summarised as median [min-max]. Between runs, every worker job has left the queue.
Needs the Slurm test cluster (``bash tests/cluster/slurm.sh start``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daas_services.dask.client import DaskOffload  # noqa: E402
from tests.integration.hub import Hub  # noqa: E402
from tests.integration.process import free_port, wait_for  # noqa: E402

USER = "alice"
LIMITS = "defaults: {max_workers: 4, memory: 1G, partitions: [cpu]}\n"

# Runs as alice: one Python process, imports done first, then one timed line per request on stdin.
PLAIN = textwrap.dedent(
    """
    import json, sys, time
    from dask_jobqueue import SLURMCluster
    from distributed import Client
    from distributed.security import Security

    for line in sys.stdin:
        start = time.perf_counter()
        cluster = SLURMCluster(cores=1, processes=1, memory="1GiB", queue="cpu", walltime="01:00:00",
                               interface="lo", security=Security.temporary(), protocol="tls://",
                               job_name="daas-bench-plain", shared_temp_directory="/tmp",
                               scheduler_options={"dashboard_address": "127.0.0.1:0"})
        cluster.scale(2)
        client = Client(cluster)
        client.wait_for_workers(2, timeout=300)
        elapsed = time.perf_counter() - start
        client.close()
        cluster.close()
        print(json.dumps({"seconds": elapsed}), flush=True)
    """
)


def jobs_left() -> bool:
    output = subprocess.run(["squeue", "--noheader", f"--user={USER}", "--format=%j"], capture_output=True, text=True)
    return any(name.startswith(("daas-dask-", "daas-bench-")) for name in output.stdout.split())


def through_service(offload: DaskOffload) -> float:
    start = time.perf_counter()
    cluster = offload.new_cluster(workers=2, cores=1, memory="1GB")
    client = cluster.get_client()
    client.wait_for_workers(2, timeout=300)
    elapsed = time.perf_counter() - start
    client.close()
    cluster.close()
    return elapsed


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "dask_offload.json")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="daas-bench-dask-"))
    workdir.chmod(0o755)
    (workdir / "dask.yaml").write_text(LIMITS)
    service_port = free_port()
    service_args = ["--records", str(workdir / "service" / "clusters.sqlite"), "--interface", "lo"]
    hub = Hub(
        workdir / "hub",
        f"""
        from daas_services.hub_setup import dask_service, service_roles
        c.JupyterHub.log_level = "INFO"
        c.JupyterHub.services.append(
            dask_service("{workdir / "dask.yaml"}", url="http://127.0.0.1:{service_port}", extra_args={service_args!r})
        )
        c.JupyterHub.load_roles += service_roles("daas-dask")
        """,
    )
    plain = subprocess.Popen(
        ["sudo", "-n", "-u", USER, "--", sys.executable, "-c", PLAIN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/tmp",
    )
    results: dict[str, list[float]] = {"service": [], "plain": []}
    ratios: list[float] = []
    try:
        hub.start()
        hub.create_users(USER)
        token = hub.token_for(USER, ["access:services!service=daas-dask"])
        offload = DaskOffload(f"{hub.url}/services/daas-dask/", token)
        wait_for(lambda: offload.http.get("api/clusters").status_code == 200, 60, "the daas-dask service")
        through_service(offload)  # warm-up of both paths (page cache, first sbatch)
        plain.stdin.write("go\n")
        plain.stdin.flush()
        json.loads(plain.stdout.readline())
        for round_number in range(args.repeats):
            order = ("service", "plain") if round_number % 2 == 0 else ("plain", "service")
            timings = {}
            for path in order:
                wait_for(lambda: not jobs_left(), 120, "the previous run's jobs to leave the queue")
                if path == "service":
                    timings[path] = through_service(offload)
                else:
                    plain.stdin.write("go\n")
                    plain.stdin.flush()
                    timings[path] = json.loads(plain.stdout.readline())["seconds"]
            for path, seconds in timings.items():
                results[path].append(seconds)
            ratios.append(timings["service"] / timings["plain"])
            print(
                f"round {round_number + 1}: service {timings['service']:.2f} s, plain {timings['plain']:.2f} s, "
                f"ratio {ratios[-1]:.2f}",
                flush=True,
            )
    finally:
        plain.stdin.close()
        plain.wait(timeout=120)
        hub.stop()

    report: dict[str, Any] = {
        "benchmark": "dask_offload",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": platform.machine(), "python": platform.python_version(), "nproc": _nproc()},
        "versions": {name: importlib.metadata.version(name) for name in ("distributed", "dask-jobqueue", "jupyterhub")},
        "seconds": results,
        "ratio_service_to_plain": ratios,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nrequest -> 2 connected workers over {args.repeats} rounds (median [min-max], seconds)")
    print(f"  through daas-dask   {summary(results['service'])}")
    print(f"  plain SLURMCluster  {summary(results['plain'])}")
    print(f"  ratio service/plain {summary(ratios)}   (goal <= 1.2)")
    print(f"JSON: {args.json}")


def _nproc() -> int:
    return int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0)


if __name__ == "__main__":
    main()
