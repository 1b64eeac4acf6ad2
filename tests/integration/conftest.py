"""Fixtures that start the real components: the Slurm test cluster and JupyterHub + proxy."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .hub import Hub
from .slurm import (
    CLUSTER_JWT_KEY,
    REST_LOG,
    REST_URL,
    CommandLog,
    RestLog,
    cluster,
    controller_up,
    rest_answers,
    wait_no_jobs,
)

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


HUB_USER = "daas-hub"  # the REST hub's account (tests/fresh.sh removes it)
TOKEN_LIFETIME = 4  # seconds: the REST hub renews its tokens every few seconds, in every test


def unprivileged_account(name: str = HUB_USER) -> str:
    """A system account with no sudo rule and no munge group (it cannot read munge.key): made if missing."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, timeout=30
        )
    return name


def rest_config(key: Path) -> str:
    """The REST transport with a key the site handed the hub: it mints alice's tokens itself."""
    return f"""
        c.SlurmBackend.transport = "rest"
        c.SlurmRest.url = "{REST_URL}"
        c.SlurmRest.token_source = "key"
        c.SlurmRest.jwt_key_file = "{key}"
        c.SlurmRest.token_lifetime = {TOKEN_LIFETIME}
    """


def slurm_hub_config(
    profiles: Path, bin_dir: Path, poll_interval: float, hub_poll_interval: float, availability_ttl: float
) -> str:
    return f"""
        from daas_spawner import load_profiles
        c.DaaSSpawner.profiles = load_profiles("{profiles}")
        c.SlurmBackend.slurm_bin_dir = "{bin_dir}"
        c.SlurmBackend.poll_interval = {poll_interval}
        c.SlurmBackend.command_timeout = 5
        c.SlurmBackend.availability_ttl = {availability_ttl}
        c.Spawner.poll_interval = {hub_poll_interval}
    """


class SlurmHub:
    """A hub on the Slurm cluster with its scheduler-command log.

    transport "cli": the hub runs as root and through the logging command wrappers (`commands`).
    transport "rest": the hub runs as HUB_USER (no sudo, no munge), talks to slurmrestd only, with
    a copy of the cluster's JWT key in its workdir; `commands` counts its requests in slurmrestd's
    log, and its slurm_bin_dir holds no scheduler command (a command it ran would fail).
    """

    def __init__(
        self,
        workdir: Path,
        poll_interval: float = POLL_INTERVAL,
        hub_poll_interval: float = 1,
        availability_ttl: float = 10,
        extra_config: str = "",
        env: dict[str, str] | None = None,
        transport: str = "cli",
        db_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.transport = transport
        self.apptainer_log = write_apptainer_standin(workdir / "apptainer-env")
        slow_start = write_slow_start_env(workdir / "slow-start-env")
        self.profiles = write_test_profiles(workdir / "profiles.yaml", workdir / "apptainer-env", slow_start)
        self.poll_interval = poll_interval
        self.availability_ttl = availability_ttl
        user = None
        self.commands: CommandLog | RestLog
        if transport == "rest":
            user = unprivileged_account()
            self.commands = RestLog()
            bin_dir = workdir / "no-slurm-bin"
            bin_dir.mkdir(mode=0o755)
            self.jwt_key = workdir / "hub" / "jwt_hs256.key"  # Hub hands it (and all in hub/) to the user
            self.jwt_key.parent.mkdir()
            shutil.copyfile(CLUSTER_JWT_KEY, self.jwt_key)
            self.jwt_key.chmod(0o400)
            extra_config = rest_config(self.jwt_key) + extra_config
        else:
            self.commands = CommandLog(workdir / "slurm-bin")
            bin_dir = self.commands.bin_dir
        config = slurm_hub_config(self.profiles, bin_dir, poll_interval, hub_poll_interval, availability_ttl)
        self.hub = Hub(workdir / "hub", textwrap.dedent(config) + textwrap.dedent(extra_config), env, user, db_url)

    def start(self, create_users: bool = True) -> Hub:
        self.hub.start()
        if create_users:
            self.hub.create_users(*TEST_USERS)
        return self.hub

    def close(self) -> None:
        self.hub.stop()
        cancel_test_jobs()


def running_slurm_hub(transport: str = "cli", **kwargs: float) -> Iterator[SlurmHub]:
    cancel_test_jobs()
    env = SlurmHub(public_tempdir("daas-it-"), transport=transport, **kwargs)
    env.start()
    yield env
    env.close()


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster: None) -> Iterator[SlurmHub]:
    """A hub whose JupyterHub poll runs every second (it must cost no scheduler query)."""
    yield from running_slurm_hub(hub_poll_interval=1)


def stop_all_servers(hub: Hub) -> None:
    hub.stop_all_servers(TEST_USERS)


@pytest.fixture
def hub(slurm_hub: SlurmHub) -> Iterator[Hub]:
    """The module's hub; every server a test started is stopped afterwards."""
    yield slurm_hub.hub
    stop_all_servers(slurm_hub.hub)


@pytest.fixture(scope="module")
def rest_slurm_hub(slurm_cluster: None) -> Iterator[SlurmHub]:
    """A hub on slurmrestd alone, run as an account that can neither sudo nor reach munge."""
    yield from running_slurm_hub(transport="rest", hub_poll_interval=1)


@pytest.fixture
def rest_hub(rest_slurm_hub: SlurmHub) -> Iterator[Hub]:
    """The module's REST hub; every server a test started is stopped afterwards."""
    yield rest_slurm_hub.hub
    died = not rest_answers()  # tests that stop it start it again in a finally
    if died:
        tail = "\n".join(REST_LOG.read_text(errors="replace").splitlines()[-10:])
        cluster("start-rest")  # for the stops below and the tests after this one
    stop_all_servers(rest_slurm_hub.hub)
    if died:
        raise AssertionError(f"slurmrestd died during this test; its log ended:\n{tail}")


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
