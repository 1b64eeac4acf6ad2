"""The builders of a Dask cluster's Slurm jobs, and the one shape a scheduler's report may have (#14)."""

from __future__ import annotations

import shlex

import pytest

from daas_services.dask.jobs import (
    SECRET_VARIABLE,
    JobResources,
    sbatch_argv,
    scheduler_job_name,
    scheduler_script,
    worker_job_name,
    worker_script,
)
from daas_services.dask.manager import ClusterError, check_report

RESOURCES = JobResources(
    job_name="daas-dask-0123456789abcdef",
    partition="cpu",
    account="20231234",
    qos=None,
    cores=2,
    memory_mb=4096,
    walltime_seconds=5400,
    workdir="/home/alice/.daas-dask/0123456789abcdef",
    output="/home/alice/.daas-dask/0123456789abcdef/worker-%j.log",
)


def test_sbatch_argv_holds_every_resource_and_reads_the_script_from_stdin() -> None:
    assert sbatch_argv("/usr/bin/sbatch", RESOURCES) == [
        "/usr/bin/sbatch",
        "--parsable",
        "--job-name=daas-dask-0123456789abcdef",
        "--partition=cpu",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=2",
        "--mem=4096M",
        "--time=1:30:00",
        "--chdir=/home/alice/.daas-dask/0123456789abcdef",
        "--output=/home/alice/.daas-dask/0123456789abcdef/worker-%j.log",
        "--account=20231234",
    ]


def test_sbatch_argv_with_a_qos_and_no_account() -> None:
    argv = sbatch_argv("sbatch", JobResources(**{**RESOURCES.__dict__, "account": None, "qos": "dask-scheduler"}))
    assert "--qos=dask-scheduler" in argv and not any(part.startswith("--account") for part in argv)


def test_job_names_tell_scheduler_and_workers_apart() -> None:
    assert scheduler_job_name("0123456789abcdef") == "daas-dask-0123456789abcdef-scheduler"
    assert worker_job_name("0123456789abcdef") == "daas-dask-0123456789abcdef"


def test_the_scheduler_script_has_no_sbatch_directives_and_quotes_every_value() -> None:
    script = scheduler_script(
        "/opt/py/bin/python", "0123456789abcdef", "/home/a b/x", "http://hub/daas-dask/", "s'x", 60, "/p/", "lo"
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh" and not any(line.startswith("#SBATCH") for line in lines)
    assert shlex.split(lines[1]) == ["export", f"{SECRET_VARIABLE}=s'x"]
    argv = shlex.split(lines[3])
    assert argv[:5] == ["exec", "/opt/py/bin/python", "-I", "-m", "daas_services.dask.scheduler"]
    assert argv[argv.index("--workdir") + 1] == "/home/a b/x"
    assert argv[-2:] == ["--interface", "lo"]
    assert "s'x" not in argv  # the secret is never on a command line (`ps` shows those to everyone)


def test_the_worker_script_names_the_worker_after_its_job_and_uses_the_clusters_credentials() -> None:
    script = worker_script("/py", "tls://10.0.0.5:40000", "/home/alice/.daas-dask/c", 2, 4096, 60, None)
    argv = shlex.split(script.splitlines()[1])
    assert argv[:6] == ["exec", "/py", "-I", "-m", "distributed.cli.dask_worker", "tls://10.0.0.5:40000"]
    assert argv[argv.index("--tls-key") + 1] == "/home/alice/.daas-dask/c/tls/key.pem"
    assert argv[argv.index("--memory-limit") + 1] == "4096MiB"
    assert script.splitlines()[1].endswith('--name "$SLURM_JOB_ID"')
    assert "--interface" not in argv
    assert "--no-dashboard" in argv  # a worker's own page would be plain HTTP, open to the node


def test_a_report_is_two_ports() -> None:
    report = check_report({"port": 40000, "dashboard_port": 40001})
    assert (report.port, report.dashboard_port) == (40000, 40001)


@pytest.mark.parametrize(
    "raw",
    [
        {"port": 40000},
        {"port": 40000, "dashboard_port": 40001, "host": "10.0.0.1"},
        {"port": 40000, "dashboard_port": 40001, "tls": {"ca": "/etc/shadow"}},
        {"port": 0, "dashboard_port": 40001},
        {"port": 65536, "dashboard_port": 40001},
        {"port": "40000", "dashboard_port": 40001},
        {"port": True, "dashboard_port": 40001},
        [40000, 40001],
        None,
    ],
)
def test_anything_else_in_a_report_is_refused(raw) -> None:
    with pytest.raises(ClusterError) as refused:
        check_report(raw)
    assert refused.value.status == 400
