"""One Dask cluster, run as its owner: a scheduler here, workers as Slurm jobs (dask-jobqueue).

The daas-dask service starts this through its user prefix (`sudo -n -u <user> --`, argv,
no shell) with a JSON spec on stdin, so `sbatch`, the scheduler and every worker run with
the user's identity and their proposal's account. It makes the cluster's own TLS
credentials (a fresh CA per cluster: only holders of this cluster's key can connect),
prints one JSON line (scheduler address, dashboard port, credentials) and then logs to a
file in the cluster's folder.

It imports only what a cluster needs (no hub, no spawner): its start-up is part of the
time a scientist waits for workers.

The service (and the owner's client) steer it through handlers on the scheduler's own,
TLS-authenticated comm: `daas_info`, `daas_scale`, `daas_adapt`, `daas_close`. They
enforce the worker limit the service resolved, so even a direct call cannot exceed it.
The cluster ends when asked, when the scheduler has been idle for `idle_timeout`, or on
SIGTERM; in every case its worker jobs are cancelled by name before this process exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import signal
import subprocess
import sys
from typing import Any

from dask_jobqueue import SLURMCluster
from distributed.security import Security

log = logging.getLogger("daas-dask-launcher")


def cluster_kwargs(spec: dict[str, Any], security: Security) -> dict[str, Any]:
    """SLURMCluster's arguments: every value from the service's resolved, bounded request."""
    resolved = spec["resolved"]
    workdir = spec["workdir"]
    scheduler = {
        "dashboard_address": "127.0.0.1:0",  # reached only through the service, which checks the owner
        "http_prefix": spec["dashboard_prefix"],
        "idle_timeout": resolved["idle_timeout"],
    }
    scheduler |= {"interface": spec["interface"]} if spec.get("interface") else {"host": spec["scheduler_host"]}
    return {
        "cores": resolved["cores"],
        "processes": 1,
        "memory": f"{resolved['memory_mb']}MiB",
        "queue": resolved["partition"],
        "account": resolved["account"],
        "walltime": spec["walltime"],
        "job_name": spec["job_name"],
        "python": spec["worker_python"],
        "interface": spec.get("interface"),
        "death_timeout": spec.get("death_timeout", 60),
        "security": security,
        "protocol": "tls://",
        "shared_temp_directory": workdir,
        "log_directory": os.path.join(workdir, "logs"),
        "local_directory": workdir,
        "scheduler_options": scheduler,
        "asynchronous": True,
    }


def cancel_jobs(scancel: str, job_name: str) -> None:
    """Cancel every job of this cluster, whatever the cluster object still knows (no orphans)."""
    user = pwd.getpwuid(os.getuid()).pw_name
    subprocess.run([scancel, f"--name={job_name}", f"--user={user}"], check=False, timeout=60)


class Steering:
    """The scheduler handlers the service calls; the worker limit is enforced here as well."""

    def __init__(self, cluster: SLURMCluster, max_workers: int) -> None:
        self.cluster = cluster
        self.max_workers = max_workers
        self.requested: dict[str, Any] = {"workers": 0, "adapt": None}
        self.closing = asyncio.Event()

    def install(self) -> None:
        handlers = self.cluster.scheduler.handlers
        handlers.update(daas_info=self.info, daas_scale=self.scale, daas_adapt=self.adapt, daas_close=self.close)

    def _check(self, count: int) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= self.max_workers:
            raise ValueError(f"workers must be 0..{self.max_workers}")

    def info(self) -> dict[str, Any]:
        scheduler = self.cluster.scheduler
        return {
            "workers": len(scheduler.workers),
            "cores": sum(ws.nthreads for ws in scheduler.workers.values()),
            "memory": sum(ws.memory_limit or 0 for ws in scheduler.workers.values()),
            "jobs": len(self.cluster.worker_spec),
            "requested": self.requested,
            "idle_since": scheduler.idle_since,
        }

    def scale(self, workers: int) -> dict[str, Any]:
        self._check(workers)
        if self.cluster._adaptive is not None:
            self.cluster._adaptive.stop()
        self.cluster.scale(workers)
        self.requested = {"workers": workers, "adapt": None}
        return self.info()

    def adapt(self, minimum: int, maximum: int) -> dict[str, Any]:
        self._check(minimum)
        self._check(maximum)
        if minimum > maximum:
            raise ValueError("minimum is above maximum")
        self.cluster.adapt(minimum=minimum, maximum=maximum)
        self.requested = {"workers": None, "adapt": {"minimum": minimum, "maximum": maximum}}
        return self.info()

    def close(self) -> str:
        self.closing.set()
        return "closing"


def start_initial(steering: Steering, resolved: dict[str, Any]) -> None:
    if resolved.get("adapt"):
        steering.adapt(resolved["adapt"]["minimum"], resolved["adapt"]["maximum"])
    else:
        steering.scale(resolved["workers"])


def ready_line(cluster: SLURMCluster, security: Security) -> str:
    dashboard = cluster.scheduler.services.get("dashboard")
    return json.dumps(
        {
            "scheduler_address": cluster.scheduler_address,
            "dashboard_port": dashboard.port if dashboard else None,
            "tls": {"ca": security.tls_ca_file, "cert": security.tls_client_cert, "key": security.tls_client_key},
            "pid": os.getpid(),
        }
    )


def log_to_file(workdir: str) -> None:
    """After the ready line, stdout/stderr go to the cluster's log: the service has stopped reading."""
    sys.stdout.flush()
    fd = os.open(os.path.join(workdir, "launcher.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


async def run(spec: dict[str, Any]) -> None:
    workdir = spec["workdir"]
    os.makedirs(os.path.join(workdir, "logs"), mode=0o700, exist_ok=True)
    security = Security.temporary()
    try:
        async with SLURMCluster(**cluster_kwargs(spec, security)) as cluster:
            steering = Steering(cluster, spec["resolved"]["max_workers"])
            steering.install()
            start_initial(steering, spec["resolved"])
            print(ready_line(cluster, security), flush=True)
            log_to_file(workdir)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, steering.closing.set)
            finished = asyncio.ensure_future(cluster.scheduler.finished())  # idle timeout closes it
            asked = asyncio.ensure_future(steering.closing.wait())
            await asyncio.wait({finished, asked}, return_when=asyncio.FIRST_COMPLETED)
            log.info("closing: %s", "asked to" if asked.done() else "scheduler finished (idle)")
    finally:
        cancel_jobs(spec["scancel"], spec["job_name"])


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    os.umask(0o077)  # credentials and logs are the owner's alone
    spec = json.loads(sys.stdin.read(1 << 16))
    try:
        asyncio.run(run(spec))
    except Exception as err:
        # Before the ready line this is the service's answer; afterwards it goes to the log.
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
