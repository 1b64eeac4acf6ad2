"""Dask offload and the data service from a notebook in a pod: the Kubernetes site of kube_site.py (namespace
daas-dask-k8s) with the daas-dask and daas-data services, and Dask clusters on the real Slurm test cluster.

The code runs in the pod's kernel, as alice's notebook would, with the pod's environment (its token, its
DAAS_DASK_URL, which `c.KubernetesBackend.environment` sets for pods) and the pod's network (10.88.0.0/16):
the services are reached through the hub's proxy at the host's bridge address, the scheduler at the address
`c.DaskService.client_hosts` names for its node (the test nodes' Slurm address is 127.0.0.1, which in a pod
is the pod itself).
"""

from __future__ import annotations

import json
import pwd
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import cancel_test_jobs
from .hub import Hub
from .kernel import run_in_kernel
from .kube_site import CPU, KubeSite
from .kubernetes import HOST_IP
from .process import free_port, wait_for

pytestmark = pytest.mark.slurm

NAMESPACE = "daas-dask-k8s"
LIMITS = """
defaults:
  max_workers: 2
  max_cores: 1
  max_memory: 1G
  memory: 1G
  partitions: [cpu]
  max_clusters: 1
"""

# In alice's pod: the same client a Slurm job's notebook uses, found through $DAAS_DASK_URL.
DASK_NOTEBOOK = """
import json, os, socket
import dask.array as da
from daas_services.dask import DaskOffload

cluster = DaskOffload().new_cluster(workers=2, cores=1, memory="1GB")
address = cluster.model["scheduler_address"]
try:
    client = cluster.get_client()
    client.wait_for_workers(2, timeout=120)
    total = float(da.ones((1000, 1000), chunks=(250, 250)).sum().compute())
    uids = sorted(set(client.run(os.getuid).values()))
    client.close()
finally:
    cluster.close()
print(json.dumps({"id": cluster.id, "address": address, "total": total, "uids": uids, "status": cluster.status,
                  "me": os.getuid(), "host": socket.gethostname()}))
"""

# In alice's pod: the data service with the server's own token, her proposal and bob's.
DATA_NOTEBOOK = """
import json, os, urllib.error, urllib.request

def get(path):
    request = urllib.request.Request({url!r} + path,
                                     headers={{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()

mounts = get("api/mounts")
print(json.dumps({{"mounts": [mounts[0], json.loads(mounts[1])], "notes": get("api/files/20231234/raw/notes.txt"),
                  "bobs": get("api/files/20230042/raw/notes.txt")[0]}}))
"""


class DaskPodSite:
    """kube_site's site with both services as hub-managed services, reached from pods through the proxy."""

    def __init__(self) -> None:
        self.data_port, self.dask_port = free_port(), free_port()
        self.site = KubeSite(NAMESPACE, homes=False, extra_config=self._config)

    def _config(self, site: KubeSite) -> str:
        """The services' config files in the site's workdir, and the hub's settings for them."""
        limits = site.workdir / "dask.yaml"
        limits.write_text(LIMITS)
        dask_config = site.workdir / "dask_config.py"
        dask_config.write_text(
            f"c.DaskService.limits_file = {str(limits)!r}\n"
            f"c.DaskService.db_url = 'sqlite:///{site.workdir / 'dask' / 'clusters.sqlite'}'\n"
            "c.DaskService.check_interval = 2\n"
            # The nodes' Slurm address is 127.0.0.1; pods reach this host at its bridge address.
            f"c.DaskService.client_hosts = {{'127.0.0.1': {HOST_IP!r}}}\n"
        )
        data_config = site.workdir / "data_config.py"
        data_config.write_text(f"c.DataService.data_locations = {str(site.data_file)!r}\n")
        return f"""
            from daas_hub import add_service_roles, custom_scopes, dask_service, data_service
            c.JupyterHub.ip = "0.0.0.0"  # the proxy: pods reach the services through it, at {HOST_IP}
            c.JupyterHub.custom_scopes.update(custom_scopes())
            c.JupyterHub.services += [
                data_service("{data_config}", url="http://127.0.0.1:{self.data_port}"),
                dask_service("{dask_config}", url="http://127.0.0.1:{self.dask_port}"),
            ]
            add_service_roles(c, "daas-data", "daas-dask")
            # Slurm jobs (on this host) use the public URL; pods the same proxy at the bridge address.
            c.DaaSSpawner.environment = {{"DAAS_DASK_URL": f"http://127.0.0.1:{{c.JupyterHub.port}}/services/daas-dask/"}}
            c.KubernetesBackend.environment = {{
                "DAAS_DASK_URL": f"http://{HOST_IP}:{{c.JupyterHub.port}}/services/daas-dask/"
            }}
        """

    @property
    def hub(self) -> Hub:
        return self.site.hub

    def public_url(self, path: str) -> str:
        """The hub's public URL as pods reach it."""
        return f"http://{HOST_IP}:{self.hub.port}{path}"


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[DaskPodSite]:
    cancel_test_jobs()
    site = DaskPodSite()
    yield site
    site.site.close()
    cancel_test_jobs()


@pytest.fixture(scope="module")
def alices_token(site: DaskPodSite) -> Iterator[str]:
    """alice's server in a pod, started through the REST API; a token of hers for its kernels."""
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU, "proposal": "20231234"}).status_code in (201, 202)
    hub.wait_ready("alice", timeout=180)
    yield hub.token_for("alice", ["access:servers!user=alice"])
    hub.stop_server("alice")


def dask_jobs(user: str) -> list[str]:
    """The user's Dask jobs Slurm still lists."""
    names = subprocess.run(
        ["squeue", "--noheader", f"--user={user}", "--format=%j"], capture_output=True, text=True, timeout=30
    ).stdout.split()
    return [name for name in names if name.startswith("daas-dask-")]


def test_a_notebook_in_a_pod_runs_a_dask_cluster_on_slurm(site: DaskPodSite, alices_token: str) -> None:
    pod = site.site.pod_of("alice")
    result = run_in_kernel(site.hub, "alice", alices_token, DASK_NOTEBOOK)
    assert result.error is None, f"{result.error}\n{result.stderr[-3000:]}"
    report = json.loads(result.lines()[-1])
    assert report["host"] == pod["metadata"]["name"]  # the code ran in the pod
    assert report["total"] == 1_000_000.0
    alice = pwd.getpwnam("alice").pw_uid
    assert report["me"] == alice and report["uids"] == [alice]  # the pod and every worker job run as alice
    assert report["address"].startswith(f"tls://{HOST_IP}:")  # the node's address as pods reach it
    assert report["status"] == "stopped"
    wait_for(lambda: not dask_jobs("alice"), 60, "alice's Dask jobs to go")


def test_a_pod_user_reads_her_proposals_data_through_the_service(site: DaskPodSite, alices_token: str) -> None:
    code = DATA_NOTEBOOK.format(url=site.public_url("/services/daas-data/"))
    result = run_in_kernel(site.hub, "alice", alices_token, code)
    assert result.error is None, f"{result.error}\n{result.stderr[-3000:]}"
    report = json.loads(result.lines()[-1])
    status, mounts = report["mounts"]
    assert status == 200, mounts
    assert [proposal["id"] for proposal in mounts["proposals"]] == ["20231234"]
    assert report["notes"] == [200, "beamtime 20231234\n"]
    assert report["bobs"] == 403  # bob's proposal: refused, though the service could read it
