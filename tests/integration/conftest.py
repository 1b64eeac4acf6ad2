"""Fixtures that start the real components: the Slurm test cluster and JupyterHub + proxy."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .hub import Hub
from .slurm import CommandLog, cluster, controller_up, wait_no_jobs

REPO = Path(__file__).resolve().parents[2]
TEST_USERS = ("alice", "bob", "carol")
POLL_INTERVAL = 5.0  # the hub's batched squeue interval in these tests


ARTIFACTS = Path(os.environ.get("DAAS_TEST_ARTIFACTS", "/tmp/daas-test-artifacts"))


def public_tempdir(prefix: str) -> Path:
    """A directory the test users can enter (pytest's tmp_path is root-only); kept for the logs."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ARTIFACTS.chmod(0o755)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=ARTIFACTS))
    path.chmod(0o755)
    return path


APPTAINER_STANDIN = """#!/bin/sh
# Stand-in for Apptainer (not installable here): log and check the argv shape, then run the
# inner command the way the image would, with the image's Python (here: the test venv) first.
printf '%s\\n' "$(printf '%s ' "$@" | tr '\\n' ' ')" >> {log}
[ "$1" = exec ] || {{ echo "apptainer stand-in: expected 'exec'" >&2; exit 64; }}
shift
while [ "${{1#-}}" != "$1" ]; do shift; done
case "$1" in /*.sif) shift ;; *) echo "apptainer stand-in: no image path" >&2; exit 64 ;; esac
PATH={venv_bin}:$PATH exec "$@"
"""


def write_apptainer_standin(prefix: Path) -> Path:
    """A Python-environment prefix whose bin/ holds only the stand-in `apptainer`; returns its log."""
    (prefix / "bin").mkdir(parents=True)
    log = prefix / "apptainer.log"
    log.touch()
    log.chmod(0o666)
    standin = prefix / "bin" / "apptainer"
    standin.write_text(APPTAINER_STANDIN.format(log=log, venv_bin=Path(sys.executable).parent))
    standin.chmod(0o755)
    prefix.chmod(0o755)
    return log


SLOW_START_SECONDS = 5


def write_slow_start_env(prefix: Path) -> Path:
    """An environment whose jupyterhub-singleuser takes SLOW_START_SECONDS before it binds (slow imports)."""
    (prefix / "bin").mkdir(parents=True)
    server = prefix / "bin" / "jupyterhub-singleuser"
    server.write_text(
        f'#!/bin/sh\nsleep {SLOW_START_SECONDS}\nexec {Path(sys.executable).parent}/jupyterhub-singleuser "$@"\n'
    )
    server.chmod(0o755)
    prefix.chmod(0o755)
    return prefix


def write_test_profiles(path: Path, apptainer_prefix: Path, slow_start_prefix: Path) -> Path:
    """The facility example pointed at this venv, an Apptainer and a slow-starting environment, a staff-only profile."""
    data = yaml.safe_load((REPO / "profiles" / "facility.yaml").read_text())
    for profile in data["profiles"]:
        for env in profile.get("environments", []):
            env["prefix"] = sys.prefix
    data["profiles"][0]["environments"].append(
        {
            "id": "container",
            "display_name": "Container",
            "prefix": str(apptainer_prefix),
            "image": "/images/daas.sif",
            "apptainer_args": ["--bind=/tmp:/scratch:ro"],
        }
    )
    data["profiles"][0]["environments"].append(
        {"id": "slow-start", "display_name": "Slow start", "prefix": str(slow_start_prefix)}
    )
    restricted = dict(data["profiles"][0], id="staff-only", display_name="Staff only", allowed_groups=["staff"])
    data["profiles"].append(restricted)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    started_here = not controller_up_safe()
    if started_here:
        cluster("start")
    yield
    if not controller_up_safe():
        cluster("start-controller")
    if started_here:
        cluster("stop")


def controller_up_safe() -> bool:
    try:
        return controller_up()
    except (OSError, subprocess.SubprocessError):
        return False


def cancel_test_jobs() -> None:
    for user in TEST_USERS:
        subprocess.run(["scancel", "-u", user], check=False, timeout=30)
    for user in TEST_USERS:
        wait_no_jobs(user)


def slurm_hub_config(
    profiles: Path, commands: CommandLog, poll_interval: float, hub_poll_interval: float, availability_ttl: float
) -> str:
    return f"""
        from daas_spawner import load_profiles
        c.DaaSSpawner.profiles = load_profiles("{profiles}")
        c.SlurmBackend.slurm_bin_dir = "{commands.bin_dir}"
        c.SlurmBackend.poll_interval = {poll_interval}
        c.SlurmBackend.command_timeout = 5
        c.SlurmBackend.availability_ttl = {availability_ttl}
        c.Spawner.poll_interval = {hub_poll_interval}
    """


class SlurmHub:
    """A hub on the Slurm cluster with its scheduler-command log."""

    def __init__(
        self,
        workdir: Path,
        poll_interval: float = POLL_INTERVAL,
        hub_poll_interval: float = 1,
        availability_ttl: float = 10,
        extra_config: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.commands = CommandLog(workdir / "slurm-bin")
        self.apptainer_log = write_apptainer_standin(workdir / "apptainer-env")
        slow_start = write_slow_start_env(workdir / "slow-start-env")
        self.profiles = write_test_profiles(workdir / "profiles.yaml", workdir / "apptainer-env", slow_start)
        self.poll_interval = poll_interval
        self.availability_ttl = availability_ttl
        config = slurm_hub_config(self.profiles, self.commands, poll_interval, hub_poll_interval, availability_ttl)
        self.hub = Hub(workdir / "hub", textwrap.dedent(config) + textwrap.dedent(extra_config), env)

    def start(self, create_users: bool = True) -> Hub:
        self.hub.start()
        if create_users:
            self.hub.create_users(*TEST_USERS)
        return self.hub

    def close(self) -> None:
        self.hub.stop()
        cancel_test_jobs()


def running_slurm_hub(**kwargs: float) -> Iterator[SlurmHub]:
    cancel_test_jobs()
    env = SlurmHub(public_tempdir("daas-it-"), **kwargs)
    env.start()
    yield env
    env.close()


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster: None) -> Iterator[SlurmHub]:
    """A hub whose JupyterHub poll runs every second (it must cost no scheduler query)."""
    yield from running_slurm_hub(hub_poll_interval=1)


@pytest.fixture
def hub(slurm_hub: SlurmHub) -> Iterator[Hub]:
    """The module's hub; every server a test started is stopped afterwards."""
    yield slurm_hub.hub
    for name in TEST_USERS:
        for server in list(slurm_hub.hub.user_model(name)["servers"]):
            slurm_hub.hub.stop_server(name, server)


def running_local_hub(prefix: str, server: str) -> Iterator[Hub]:
    """A hub on the local backend whose servers (the command `server`) run as the Unix user via sudo; alice exists."""
    workdir = public_tempdir(prefix)
    hub = Hub(
        workdir / "hub",
        f"""
        c.LocalBackend.user_prefix = ["sudo", "-E", "-H", "-n", "-u", "{{username}}", "--"]
        c.LocalBackend.working_dir = "/home/{{username}}"
        c.Spawner.cmd = ["{server}"]
        """,
    )
    hub.start()
    hub.create_users("alice")
    yield hub
    hub.stop()
    subprocess.run(["pkill", "-u", "alice", "-f", "jupyterhub-singleuser"], check=False)
