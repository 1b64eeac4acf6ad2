"""Every backend keeps the contract (tests/contract.py) on the real system (#15, item 6).

Slurm: jobs of alice on the test cluster, through the real sbatch, squeue and scancel, and
again through slurmrestd with tokens the backend mints from the cluster's key (#16) (the
server is `sleep`: the checks need a job, not a notebook; the report is the one check_report
accepts). Local: processes run as alice through sudo, as a site with servers per account has them.
Kubernetes: pods of alice on the Kubernetes test cluster (tests/cluster/kubernetes.sh), made with a
service account's token and the Role a site grants the hub; the pod's command is a small HTTP server
(the backend routes to the pod's IP once the server redeemed its bootstrap secret: the checks say it has,
and test_kubernetes_routes_only_after_the_redemption checks the wait itself).
OpenStack: VMs of the hub's project on the OpenStack test cloud (tests/cluster/openstack.sh), which its boot
agent boots; the report is the one the VM's launcher would make (the VM's address, which check_report checks
against the cloud's port of the VM).
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from traitlets.config import Config

from daas_spawner import load_profiles
from daas_spawner.backends.base import Backend, BackendState, Launch, NotRunningYet, ServerAddress
from daas_spawner.backends.kubernetes.backend import KubernetesBackend
from daas_spawner.backends.local.backend import LocalBackend
from daas_spawner.backends.openstack.backend import OpenStackBackend, OpenStackState
from daas_spawner.backends.slurm.backend import SlurmBackend, SlurmState
from daas_spawner.options import UserAccess, resolve_options
from daas_spawner.profiles import ProfileSet, local_demo

from ..contract import CHECKS, Harness
from ..fake_backend import SERVE
from .conftest import REPO, cancel_test_jobs, public_tempdir
from .kube_site import CPU, VENV
from .kube_site import profile as kubernetes_profile
from .kubernetes import admin, cluster, grant_hub, write_kubeconfig
from .openstack import CLOUDS, DIR, Admin
from .openstack import cloud as openstack_cloud
from .os_site import profile as openstack_profile
from .slurm import CLUSTER_JWT_KEY, REST_URL, user_jobs

USER = "alice"
MARK = "DAAS_CONTRACT_LAUNCH"


def slurm_launch() -> Launch:
    options = resolve_options(
        {"profile": "cpu", "cores": 1, "memory": "1G"}, load_profiles(REPO / "profiles" / "facility.yaml"), UserAccess()
    )
    return Launch(
        username=USER,
        server=f"{USER}/contract",
        options=options,
        env={"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api", MARK: secrets.token_hex(8)},
        command=["sleep", "600"],  # holds no port: the launcher's watcher waits, and reports nothing
        secret_env={"JUPYTERHUB_API_TOKEN": secrets.token_hex(16)},
    )


async def slurm_report(backend: Backend, state: BackendState) -> ServerAddress:
    """What the job's launcher would report once the job runs: its node, a port."""
    assert isinstance(backend, SlurmBackend) and isinstance(state, SlurmState)
    while True:
        info = backend.queue.status(state.job).info
        if info is not None and info.nodes:
            try:
                return await backend.check_report(state, ServerAddress(info.nodes, 8888))
            except NotRunningYet:
                pass
        await asyncio.sleep(0.5)


async def slurm_jobs(launch: Launch) -> int:
    return len(await asyncio.to_thread(user_jobs, USER))


def local_launch() -> Launch:
    return Launch(
        username=USER,
        server=f"{USER}/contract",
        options=resolve_options({}, local_demo(), UserAccess()),
        env={"PATH": os.environ.get("PATH", os.defpath), MARK: secrets.token_hex(8)},
        command=[sys.executable, "-c", SERVE],
        secret_env={"JUPYTERHUB_API_TOKEN": secrets.token_hex(16)},
    )


KUBE_NAMESPACE = "daas-contract"


def kubernetes_launch() -> Launch:
    profiles = ProfileSet.model_validate({"profiles": [kubernetes_profile(CPU)]})
    options = resolve_options({"profile": CPU}, profiles, UserAccess())
    return Launch(
        username=USER,
        server=f"{USER}/contract",
        options=options,
        env={"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api", MARK: secrets.token_hex(8)},
        command=["python3", "-c", SERVE],  # listens on the pod's port
    )


async def kubernetes_pods(launch: Launch) -> int:
    """Pods of this launch in the namespace, also one being deleted (it still runs until it is gone)."""
    pods = await asyncio.to_thread(admin().pods, KUBE_NAMESPACE)
    return sum({"name": MARK, "value": launch.env[MARK]} in pod["spec"]["containers"][0].get("env", []) for pod in pods)


def clear_pods() -> None:
    """No pod of the contract's namespace left (one a failed check or an earlier run left would hold its name)."""
    kube = admin()
    kube.delete(f"/api/v1/namespaces/{KUBE_NAMESPACE}/pods", gracePeriodSeconds=0)
    kube.wait("the contract's pods to go", lambda: not kube.pods(KUBE_NAMESPACE), 60)


@pytest.fixture(scope="module")
def kubeconfig() -> str:
    """A service account in the contract's namespace with the Role a site grants the hub."""
    cluster("start")
    token = grant_hub(admin(), KUBE_NAMESPACE)
    return str(write_kubeconfig(public_tempdir("daas-contract-") / "hub.kubeconfig", token))


@pytest.fixture
def kube_clean(kubeconfig: str) -> Iterator[str]:
    clear_pods()
    yield kubeconfig
    clear_pods()


def openstack_launch() -> Launch:
    profiles = ProfileSet.model_validate({"profiles": [openstack_profile("vm", [{"name": "daas.small"}])]})
    return Launch(
        username=USER,
        server=f"{USER}/contract-{secrets.token_hex(4)}",  # the VM's daas-server metadata: what `count` looks for
        options=resolve_options({"profile": "vm"}, profiles, UserAccess()),
        env={"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api"},
        command=["sleep", "600"],  # holds no port: the launcher reports nothing (a unit takes no multi-line -c)
    )


async def openstack_vms(launch: Launch) -> int:
    """VMs of this launch in the hub's project, also one being deleted (it is there until it is gone)."""
    servers = await asyncio.to_thread(Admin().servers)
    return sum(server["metadata"].get("daas-server") == launch.server for server in servers)


async def openstack_report(backend: Backend, state: BackendState) -> ServerAddress:
    """What the VM's launcher reports once it boots: the address the cloud gives its port, a port."""
    assert isinstance(backend, OpenStackBackend) and isinstance(state, OpenStackState)
    while True:
        server = backend._server(state)
        port_file = DIR / "ports" / f"{server['id']}.json" if server is not None else None
        if port_file is not None and port_file.exists():
            address = json.loads(port_file.read_text())["ip_address"]
            try:
                return await backend.check_report(state, ServerAddress(address, 8888))
            except NotRunningYet:
                pass
        await asyncio.sleep(0.5)


@pytest.fixture
def openstack_clean() -> Iterator[None]:
    openstack_cloud("start")
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(CLOUDS)
    openstack_cloud("reset")
    yield
    openstack_cloud("reset")


def users_processes(wanted: bytes, uid: int) -> int:
    """Live processes of `uid` with this environment entry (sudo, root's, carries it too: not counted)."""
    found = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                found += wanted in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
    return found


async def local_processes(launch: Launch) -> int:
    return users_processes(f"{MARK}={launch.env[MARK]}".encode(), pwd.getpwnam(USER).pw_uid)


async def no_report(backend: Backend, state: BackendState) -> ServerAddress:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def harness(kind: str, made: list[Backend], kubeconfig: str = "") -> Harness:
    """The kind's harness; every backend it makes is appended to `made` (the test shuts them down)."""
    config = Config()
    config.SlurmBackend.poll_interval = 2
    config.SlurmBackend.busy_interval = 0.5
    config.SlurmBackend.command_timeout = 10
    config.SlurmBackend.stop_timeout = 30
    if kind == "slurm-rest":
        config.SlurmBackend.transport = "rest"
        config.SlurmRest.url = REST_URL
        config.SlurmRest.token_source = "key"
        config.SlurmRest.jwt_key_file = str(CLUSTER_JWT_KEY)
    config.LocalBackend.user_prefix = ["sudo", "-E", "-H", "-n", "-u", "{username}", "--"]
    config.LocalBackend.working_dir = "/home/{username}"
    config.LocalBackend.stop_timeout = 5
    config.KubernetesBackend.kubeconfig = kubeconfig
    config.KubernetesBackend.namespace = KUBE_NAMESPACE
    config.KubernetesBackend.extra_volumes = [{"name": "venv", "hostPath": {"path": str(VENV), "type": "Directory"}}]
    config.KubernetesBackend.extra_volume_mounts = [{"name": "venv", "mountPath": str(VENV), "readOnly": True}]
    config.KubernetesBackend.stop_grace = 0  # the server is the pod's first process, with no SIGTERM handler
    config.OpenStackBackend.cloud = "daas-hub"
    config.OpenStackBackend.interval = 2
    config.OpenStackBackend.busy_interval = 0.5
    config.OpenStackBackend.stop_timeout = 60
    classes = {"local": LocalBackend, "kubernetes": KubernetesBackend, "openstack": OpenStackBackend}

    def new_backend() -> Backend:
        backend = classes.get(kind, SlurmBackend)(config=config)
        made.append(backend)
        return backend

    if kind == "kubernetes":
        return Harness(new_backend, kubernetes_launch, no_report, kubernetes_pods, timeout=90)
    if kind == "local":
        return Harness(new_backend, local_launch, no_report, local_processes, timeout=30)
    if kind == "openstack":
        return Harness(new_backend, openstack_launch, openstack_report, openstack_vms, timeout=90)
    return Harness(new_backend, slurm_launch, slurm_report, slurm_jobs, timeout=60)


@pytest.fixture
def clean(slurm_cluster: None) -> Iterator[None]:
    cancel_test_jobs()
    yield
    cancel_test_jobs()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("kind", ["slurm", "slurm-rest", "local", "kubernetes", "openstack"])
async def test_backend_keeps_the_contract(
    kind: str, check: Callable, clean: None, request: pytest.FixtureRequest
) -> None:
    made: list[Backend] = []
    kubeconfig = request.getfixturevalue("kube_clean") if kind == "kubernetes" else ""
    if kind == "openstack":
        request.getfixturevalue("openstack_clean")
    try:
        await check(harness(kind, made, kubeconfig))
    finally:
        for backend in made:  # as the hub's shutdown would: a REST backend's connections close in the loop
            await backend.shutdown()


async def test_kubernetes_routes_only_after_the_redemption(kube_clean: str) -> None:
    """A running pod whose launcher has not redeemed its bootstrap secret gets no address yet: the start would
    end and withdraw the secret the server still needs (under load, a pod runs seconds before its launcher asks)."""
    made: list[Backend] = []
    backend = harness("kubernetes", made, kube_clean).new_backend()
    kube = admin()
    try:
        await backend.ready()
        state = [checkpoint async for checkpoint in backend.start(kubernetes_launch())][-1]
        redeemed = asyncio.Event()
        reported = asyncio.get_running_loop().create_future()  # a pod reports nothing
        waiting = asyncio.ensure_future(backend.wait_for_address(state, reported, redeemed))

        def running() -> bool:
            return any(pod["status"].get("phase") == "Running" for pod in kube.pods(KUBE_NAMESPACE))

        await asyncio.to_thread(kube.wait, "the pod to run", running, 90)
        await asyncio.sleep(2)  # the shared view has seen it run by now (it ticks every second)
        assert not waiting.done(), "an address before the server holds its tokens"
        redeemed.set()
        address = await asyncio.wait_for(waiting, 10)
        (pod,) = kube.pods(KUBE_NAMESPACE)
        assert address == ServerAddress(pod["status"]["podIP"], backend.port)
        await backend.stop(state)
    finally:
        for made_backend in made:
            await made_backend.shutdown()
