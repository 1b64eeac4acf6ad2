"""Dask offload benchmark (issue #6): request -> 2 connected workers, through daas-dask vs plain SLURMCluster.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/dask_offload.py [--repeats N] [--json out.json]

Both paths start a scheduler with a fresh TLS key (Security.temporary) and two workers as Slurm jobs of
the user alice on the test cluster's cpu partition, 1 core and 1 GiB each, over `lo`:

- ``service``: a real JupyterHub with the daas-dask managed service; the clock runs in the client
  (`DaskOffload().new_cluster(workers=2)` -> `get_client()` -> `wait_for_workers(2)`), so it includes the
  REST call, the scheduler's own Slurm job (submitted as alice through sudo: queue wait, imports, fetching
  its credentials, the service checking its report) and the worker jobs the service submits.
- ``plain``:   what a user with a shell on a login node would run: `SLURMCluster(...)`, `scale(2)`,
  `Client(cluster).wait_for_workers(2)`, timed inside a Python process running as alice, after
  `import dask_jobqueue, distributed` (a notebook has those loaded). Two variants:
  ``plain-first``, a new process per run: the notebook's first cluster (the dashboard's imports count);
  ``plain-again``, one long-lived process: a notebook's second and later clusters.

The three alternate within each round (order rotating from round to round); ratios are per round and
summarised as median [min-max]. Between runs, every worker job has left the queue.

The cost of the scheduler as a Slurm job (issue #14) is printed apart: "scheduler up" is the time until a
client could connect — `new_cluster` returning (service: the scheduler job has started and reported) against
`SLURMCluster(...)` returning (plain: the scheduler started inside the process, as the old launcher did).
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

from benchmarks.common import require_fresh_install  # noqa: E402
from daas_services.dask.client import DaskOffload  # noqa: E402
from tests.integration.hub import Hub  # noqa: E402
from tests.integration.process import free_port, wait_for  # noqa: E402

USER = "alice"
LIMITS = "defaults: {max_workers: 4, memory: 1G, partitions: [cpu]}\n"

# Runs as alice: imports done first, then one timed run per line on stdin.
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
        scheduler_up = time.perf_counter() - start
        cluster.scale(2)
        client = Client(cluster)
        client.wait_for_workers(2, timeout=300)
        elapsed = time.perf_counter() - start
        client.close()
        cluster.close()
        print(json.dumps({"seconds": elapsed, "scheduler_up": scheduler_up}), flush=True)
    """
)


def jobs_left() -> bool:
    output = subprocess.run(["squeue", "--noheader", f"--user={USER}", "--format=%j"], capture_output=True, text=True)
    return any(name.startswith(("daas-dask-", "daas-bench-")) for name in output.stdout.split())


def plain_process() -> subprocess.Popen[str]:
    argv = ["sudo", "-n", "-u", USER, "--", sys.executable, "-c", PLAIN]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/tmp")


def plain_run(process: subprocess.Popen[str]) -> tuple[float, float]:
    """(request -> 2 workers, request -> scheduler up), in seconds."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    timing = json.loads(process.stdout.readline())
    return timing["seconds"], timing["scheduler_up"]


def through_service(offload: DaskOffload) -> tuple[float, float]:
    """(request -> 2 workers, request -> scheduler up), in seconds."""
    start = time.perf_counter()
    cluster = offload.new_cluster(workers=2, cores=1, memory="1GB")
    scheduler_up = time.perf_counter() - start
    client = cluster.get_client()
    client.wait_for_workers(2, timeout=300)
    elapsed = time.perf_counter() - start
    client.close()
    cluster.close()
    return elapsed, scheduler_up


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "dask_offload.json")
    args = parser.parse_args()
    require_fresh_install()

    workdir = Path(tempfile.mkdtemp(prefix="daas-bench-dask-"))
    workdir.chmod(0o755)
    (workdir / "dask.yaml").write_text(LIMITS)
    service_port = free_port()
    (workdir / "daas_config.py").write_text(
        f"c.DaskService.limits_file = {str(workdir / 'dask.yaml')!r}\n"
        f"c.DaskService.db_url = 'sqlite:///{workdir / 'service' / 'clusters.sqlite'}'\n"
        'c.DaskService.interface = "lo"\n'
    )
    hub = Hub(
        workdir / "hub",
        f"""
        from daas_hub import add_service_roles, dask_service
        c.JupyterHub.log_level = "INFO"
        c.JupyterHub.services.append(
            dask_service("{workdir / "daas_config.py"}", url="http://127.0.0.1:{service_port}")
        )
        add_service_roles(c, "daas-dask")
        """,
    )
    again = plain_process()
    paths = ("service", "plain-first", "plain-again")
    results: dict[str, list[float]] = {path: [] for path in paths}
    scheduler_up: dict[str, list[float]] = {path: [] for path in paths}
    ratios: dict[str, list[float]] = {"plain-first": [], "plain-again": []}
    try:
        hub.start()
        hub.create_users(USER)
        token = hub.token_for(USER, ["access:services!service=daas-dask"])
        offload = DaskOffload(f"{hub.url}/services/daas-dask/", token)
        wait_for(lambda: offload.http.get("api/clusters").status_code == 200, 60, "the daas-dask service")
        through_service(offload)  # warm-up of every path (page cache, first sbatch)
        plain_run(again)
        for round_number in range(args.repeats):
            order = paths[round_number % 3 :] + paths[: round_number % 3]
            timings = {}
            for path in order:
                wait_for(lambda: not jobs_left(), 120, "the previous run's jobs to leave the queue")
                if path == "service":
                    timings[path] = through_service(offload)
                elif path == "plain-again":
                    timings[path] = plain_run(again)
                else:
                    first = plain_process()
                    timings[path] = plain_run(first)
                    first.stdin.close()
                    first.wait(timeout=120)
            for path, (seconds, up) in timings.items():
                results[path].append(seconds)
                scheduler_up[path].append(up)
            for plain in ratios:
                ratios[plain].append(timings["service"][0] / timings[plain][0])
            shown = ", ".join(f"{path} {timings[path][0]:.2f} s (scheduler {timings[path][1]:.2f} s)" for path in paths)
            print(f"round {round_number + 1}: {shown}", flush=True)
    finally:
        again.stdin.close()
        again.wait(timeout=120)
        hub.stop()

    report: dict[str, Any] = {
        "benchmark": "dask_offload",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": platform.machine(), "python": platform.python_version(), "nproc": _nproc()},
        "versions": {name: importlib.metadata.version(name) for name in ("distributed", "dask-jobqueue", "jupyterhub")},
        "seconds": results,
        "scheduler_up_seconds": scheduler_up,
        "ratio_service_to": ratios,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nrequest -> 2 connected workers over {args.repeats} rounds (median [min-max], seconds)")
    for path in paths:
        print(f"  {path:<12} {summary(results[path])}")
    for plain, values in ratios.items():
        print(f"  ratio service/{plain:<12} {summary(values)}   (goal <= 1.2)")
    print("request -> scheduler up (service: its own Slurm job; plain: in the notebook's process)")
    for path in paths:
        print(f"  {path:<12} {summary(scheduler_up[path])}")
    cost = [job - local for job, local in zip(scheduler_up["service"], scheduler_up["plain-first"], strict=True)]
    print(f"  scheduler job cost (service - plain-first, per round) {summary(cost)}")
    print(f"JSON: {args.json}")


def _nproc() -> int:
    return int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0)


if __name__ == "__main__":
    main()
