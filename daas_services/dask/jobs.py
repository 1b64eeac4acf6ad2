"""The Slurm jobs of a Dask cluster, as pure builders: the service's `sbatch` argv and batch scripts.

The service submits every job of a cluster itself, as the owner (`sudo -n -u <user> -- sbatch`),
so partition, account, QOS, cores, memory and wall time are arguments the service chose from
the site's limits: nothing the owner controls (~/.config/dask, dask-jobqueue settings, the
environment) reaches `sbatch`. The scripts hold only values the service made, quoted for sh;
the scheduler's carries one secret that is worthless once the scheduler has reported.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from daas_core.quantities import format_walltime

SECRET_VARIABLE = "DAAS_DASK_SECRET"  # noqa: S105 (a name: the one-time secret is in the job's environment only)
URL_VARIABLE = "DAAS_DASK_URL"  # where the scheduler job reaches the service
TLS_FILES = {"ca": "tls/ca.pem", "cert": "tls/cert.pem", "key": "tls/key.pem"}  # under the cluster's folder


@dataclass(frozen=True)
class JobResources:
    """What one job of a cluster may use; every field comes from the service's resolved limits."""

    job_name: str
    partition: str
    account: str | None
    qos: str | None
    cores: int
    memory_mb: int
    walltime_seconds: int
    workdir: str  # the cluster's folder in the owner's home: the job's working directory and log
    output: str


def scheduler_job_name(cluster_id: str) -> str:
    return f"daas-dask-{cluster_id}-scheduler"


def worker_job_name(cluster_id: str) -> str:
    return f"daas-dask-{cluster_id}"


def tls_paths(workdir: str) -> dict[str, str]:
    return {name: f"{workdir.rstrip('/')}/{path}" for name, path in TLS_FILES.items()}


def sbatch_argv(sbatch: str, resources: JobResources) -> list[str]:
    """`sbatch` reading the script from stdin; the job id comes back on stdout (--parsable)."""
    argv = [
        sbatch,
        "--parsable",
        f"--job-name={resources.job_name}",
        f"--partition={resources.partition}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={resources.cores}",
        f"--mem={resources.memory_mb}M",
        f"--time={format_walltime(resources.walltime_seconds)}",
        f"--chdir={resources.workdir}",
        f"--output={resources.output}",
    ]
    argv += [f"--account={resources.account}"] if resources.account else []
    argv += [f"--qos={resources.qos}"] if resources.qos else []
    return argv


def scheduler_script(
    python: str,
    cluster_id: str,
    workdir: str,
    service_url: str,
    secret: str,
    idle_timeout: int,
    dashboard_prefix: str,
    interface: str | None,
) -> str:
    """The scheduler job: `daas_services.dask.scheduler` fetches its TLS credentials, serves, reports."""
    argv = [python, "-I", "-m", "daas_services.dask.scheduler", "--cluster", cluster_id, "--workdir", workdir]
    argv += ["--idle-timeout", str(idle_timeout), "--dashboard-prefix", dashboard_prefix]
    argv += ["--interface", interface] if interface else []
    return "\n".join(
        [
            "#!/bin/sh",
            f"export {SECRET_VARIABLE}={shlex.quote(secret)}",
            f"export {URL_VARIABLE}={shlex.quote(service_url)}",
            f"exec {shlex.join(argv)}",
            "",
        ]
    )


def worker_script(
    python: str,
    scheduler_address: str,
    workdir: str,
    cores: int,
    memory_mb: int,
    death_timeout: int,
    interface: str | None,
) -> str:
    """One worker job: a dask worker named after its Slurm job, with the cluster's TLS credentials.

    Without its own dashboard: a worker's plain-HTTP page would be open to everyone on the node.
    """
    tls = tls_paths(workdir)
    argv = [python, "-I", "-m", "distributed.cli.dask_worker", scheduler_address]
    argv += ["--nthreads", str(cores), "--nworkers", "1", "--memory-limit", f"{memory_mb}MiB"]
    argv += ["--death-timeout", str(death_timeout), "--local-directory", workdir, "--no-dashboard"]
    argv += ["--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
    argv += ["--interface", interface] if interface else []
    return "\n".join(["#!/bin/sh", f'exec {shlex.join(argv)} --name "$SLURM_JOB_ID"', ""])
