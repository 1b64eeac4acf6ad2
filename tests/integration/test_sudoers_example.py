"""The documented sudo rules (examples/sudoers/jupyterhub-daas) admit exactly the commands the suite runs as people.

The rules are installed for an unprivileged account standing for the hub's, acting as alice; real
sudo then answers, for each argv the code builds (`sudo -l <command>`: allowed or not, nothing
runs), whether an unprivileged hub and its services could run it. Commands the suite never runs
as people must be refused.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daas_core.accounts import UserAccounts, as_user
from daas_services.dask.jobs import JobResources, scheduler_job_name, worker_job_name
from daas_services.dask.jobs import sbatch_argv as dask_sbatch_argv
from daas_services.data.as_user import UserReader
from daas_spawner.backends.slurm.commands import JobSpec, sbatch_argv, scancel_argv
from daas_spawner.options import UserAccess, resolve_options
from daas_spawner.profiles import load_profiles

ROOT = Path(__file__).resolve().parents[2]
HUB = "daas-sudo-check"  # stands for the hub's account `jupyterhub`
RULES = Path("/etc/sudoers.d/zz-daas-sudo-check")
PREFIX = UserAccounts().user_prefix  # the default, sudo -n -u {username} --
PERSON = "alice"


@pytest.fixture(scope="module")
def hub_account() -> Iterator[str]:
    """The example's rules for HUB acting as alice, with this venv's Python in place of /opt/jupyterhub's."""
    created = subprocess.run(["id", HUB], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", HUB], check=True)
    text = (ROOT / "examples" / "sudoers" / "jupyterhub-daas").read_text()
    text = text.replace("%facility-users", PERSON).replace("\njupyterhub ALL", f"\n{HUB} ALL")
    text = text.replace("/opt/jupyterhub/bin/python", sys.executable)
    candidate = RULES.with_name("zz-daas-sudo-check.new")  # sudo skips names with a dot: checked first
    candidate.write_text(text)
    candidate.chmod(0o440)
    subprocess.run(["visudo", "-c", "-q", "-f", str(candidate)], check=True)
    candidate.rename(RULES)
    yield HUB
    RULES.unlink()
    if created:
        subprocess.run(["userdel", HUB], check=True)


def allowed(hub: str, argv: list[str]) -> bool:
    """Whether sudo lets `hub` run `argv` (a prefix + command built by the suite); nothing is run."""
    assert argv[:3] == ["sudo", "-n", "-u"] and argv[4] == "--", argv
    check = ["sudo", "-n", "-u", hub, "--", "sudo", "-n", "-l", "-u", argv[3], "--", *argv[5:]]
    return subprocess.run(check, capture_output=True, timeout=30).returncode == 0


def spawner_argv() -> list[list[str]]:
    """The Slurm backend's sbatch for each shipped profile's defaults, and its scancel."""
    profiles = load_profiles(ROOT / "profiles" / "facility.yaml")
    spec = JobSpec(PERSON, "jupyterhub-daas", "/home/alice", "jupyterhub-daas-%j.log", "20231234", {}, ["x"])
    prefix = as_user(PREFIX, PERSON, [])
    argv = []
    for profile in profiles.profiles:
        options = resolve_options({"profile": profile.id}, profiles, UserAccess())
        argv.append(
            [*sbatch_argv(prefix, "/usr/bin/sbatch", options, spec), "--comment=jupyterhub-daas-0123456789abcdef"]
        )
    return [*argv, scancel_argv(prefix, "/usr/bin/scancel", "4711")]


def dask_argv() -> list[list[str]]:
    """daas-dask's commands as the owner: sbatch from its builder; mkdir and scancel as manager.py runs them."""
    workdir = "/home/alice/.daas-dask/c0ffee"
    resources = JobResources(worker_job_name("c0ffee"), "cpu", "20231234", None, 2, 4096, 3600, workdir, "w.log")
    commands = [
        dask_sbatch_argv("/usr/bin/sbatch", resources),
        ["mkdir", "-p", "-m", "0700", workdir],
        ["/usr/bin/scancel", "4711", "4712"],
        ["/usr/bin/scancel", f"--name={worker_job_name('c0ffee')}"],
        ["/usr/bin/scancel", f"--name={scheduler_job_name('c0ffee')}"],
    ]
    return [as_user(PREFIX, PERSON, command) for command in commands]


def test_every_command_the_suite_runs_as_a_person_is_allowed(hub_account: str) -> None:
    reader = UserReader(prefix=PREFIX).argv(PERSON)
    refused = [argv for argv in [*spawner_argv(), reader, *dask_argv()] if not allowed(hub_account, argv)]
    assert not refused, f"the example sudo rules refuse: {refused}"


@pytest.mark.parametrize(
    "command",
    [
        ["/usr/bin/id"],
        ["/usr/bin/sbatch", "--wrap=id"],  # sbatch without the suite's --parsable first
        ["/usr/bin/scancel", "--user=alice"],  # every job of the person, not one the suite names
        [sys.executable, "-I", "-c", "import os"],
        [sys.executable, "-I", "-m", "daas_services.data.reader", "--extra"],
        ["mkdir", "-p", "/home/alice/elsewhere"],
    ],
)
def test_anything_else_is_refused(hub_account: str, command: list[str]) -> None:
    assert not allowed(hub_account, as_user(PREFIX, PERSON, command))


def test_no_command_runs_as_root(hub_account: str) -> None:
    assert not allowed(hub_account, ["sudo", "-n", "-u", "root", "--", "/usr/bin/scancel", "4711"])
