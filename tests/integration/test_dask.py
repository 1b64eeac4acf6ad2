"""Dask offload end to end: the daas-dask service on a real hub, clusters on the real Slurm cluster.

The site is the OIDC one (alice: 20231234 and 20220001; bob: 20230042, whose proposal has a
short idle timeout) plus the service as a hub-managed service. Schedulers and workers run
as their owner (sudo, then Slurm jobs); only the owner's client holds the TLS credentials.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client
from tornado import httpclient, websocket

from daas_services.dask.client import DaskOffload, OffloadCluster, OffloadError

from .conftest import cancel_test_jobs, public_tempdir
from .oidc_site import OidcSite
from .process import free_port, wait_for
from .slurm import server_environment

pytestmark = pytest.mark.slurm

SERVICE = "/services/daas-dask/"
IDLE_TIMEOUT = 6
LIMITS = f"""
defaults:
  max_workers: 3
  max_cores: 2
  max_memory: 2G
  memory: 1G
  partitions: [cpu]
  max_clusters: 2
proposals:
  - match: "20230042"
    limits: {{idle_timeout: {IDLE_TIMEOUT}}}
  - profile: "cpu"
    limits: {{max_workers: 1}}
"""

# Runs as alice with her notebook server's environment (token, server name, service URL).
NOTEBOOK = """
import json, os, subprocess
import dask.array as da
from daas_services.dask import DaskOffload

offload = DaskOffload()
cluster = offload.new_cluster(workers=2, cores=1, memory="1GB")
client = cluster.get_client()
client.wait_for_workers(2, timeout=120)
total = float(da.ones((1000, 1000), chunks=(250, 250)).sum().compute())
cluster.scale(3)
client.wait_for_workers(3, timeout=120)
uids = sorted(set(client.run(os.getuid).values()))
accounts = subprocess.run(["squeue", "--noheader", "--name=daas-dask-" + cluster.id, "--format=%a"],
                          capture_output=True, text=True).stdout.split()
listed = [c.id for c in offload.list_clusters()]
html = cluster.refresh()._repr_html_()
client.close()
cluster.close()
print(json.dumps({"id": cluster.id, "total": total, "uids": uids, "accounts": accounts, "listed": listed,
                  "html": html, "status": cluster.status, "me": os.getuid()}))
"""


class DaskSite:
    """The OIDC site with the daas-dask service; alice and bob logged in, with service tokens."""

    def __init__(self) -> None:
        workdir = public_tempdir("daas-dask-")
        limits = workdir / "dask.yaml"
        limits.write_text(LIMITS)
        self.records = workdir / "service" / "clusters.sqlite"
        self.service_port = free_port()
        args = ["--records", str(self.records), "--interface", "lo", "--check-interval", "2"]
        config = f"""
            from daas_services.hub_setup import dask_service, service_roles
            c.JupyterHub.services.append(
                dask_service("{limits}", url="http://127.0.0.1:{self.service_port}", extra_args={args!r})
            )
            c.JupyterHub.load_roles += service_roles("daas-dask")
            c.DaaSSpawner.environment = {{"DAAS_DASK_URL": f"http://127.0.0.1:{{c.JupyterHub.port}}{SERVICE}"}}
        """
        self.oidc = OidcSite(extra_config=config, prefix="daas-dask-site-")
        self.hub = self.oidc.hub

    def start(self) -> DaskSite:
        self.oidc.start()
        for user in ("alice", "bob"):
            self.oidc.login(user)
        scopes = ["access:services!service=daas-dask"]
        self.token = {user: self.hub.token_for(user, scopes) for user in ("alice", "bob")}
        self.offload = {user: DaskOffload(f"{self.hub.url}{SERVICE}", token) for user, token in self.token.items()}
        wait_for(self.answering, 60, "the daas-dask service")
        return self

    def answering(self) -> bool:
        return self.api("GET", "api/clusters").status_code == 200

    def api(self, method: str, path: str, user: str | None = "alice", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.token[user]}"} if user else {}
        return self.hub.http.request(method, f"{self.hub.url}{SERVICE}{path}", headers=headers, **kwargs)

    def close(self) -> None:
        for offload in self.offload.values():
            for cluster in offload.list_clusters():
                cluster.close()
        self.oidc.close()


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[DaskSite]:
    cancel_test_jobs()
    site = DaskSite().start()
    yield site
    site.close()


def dask_jobs(user: str) -> list[str]:
    """The user's Dask worker jobs still in the queue (any state Slurm lists)."""
    output = subprocess.run(
        ["squeue", "--noheader", f"--user={user}", "--format=%j %T"], capture_output=True, text=True, timeout=30
    ).stdout
    return [line for line in output.splitlines() if line.startswith("daas-dask-")]


def wait_stopped(site: DaskSite, cluster_id: str, timeout: float = 90) -> dict[str, Any]:
    def stopped() -> dict[str, Any] | None:
        model = site.api("GET", f"api/clusters/{cluster_id}").json()
        return model if model["status"] in ("stopped", "failed") else None

    return wait_for(stopped, timeout, f"cluster {cluster_id} to stop")


@pytest.fixture
def alices_cluster(site: DaskSite) -> Iterator[OffloadCluster]:
    cluster = site.offload["alice"].new_cluster(workers=1)
    yield cluster
    if cluster.refresh().status == "running":
        cluster.close()


# -- the scientist's path -----------------------------------------------------------------------


def test_from_a_notebook_server_workers_run_as_the_user_and_bill_the_proposal(site: DaskSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": "mx", "proposal": "20231234"}).status_code in (201, 202)
    hub.wait_ready("alice")
    try:
        server = server_environment(hub.job_id("alice"))
        env = [f"{name}={server[name]}" for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVER_NAME", "DAAS_DASK_URL")]
        argv = ["sudo", "-n", "-u", "alice", "--", "env", *env]
        result = subprocess.run(
            [*argv, sys.executable, "-c", NOTEBOOK], capture_output=True, text=True, timeout=600, cwd="/tmp"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["total"] == 1_000_000.0
        assert report["uids"] == [report["me"]]  # every worker ran as alice
        assert report["accounts"] == ["20231234"] * 3  # billed to the proposal of her server
        assert report["id"] in report["listed"]
        assert "Dask cluster" in report["html"] and "Dashboard" in report["html"]
        assert report["status"] == "stopped"
        wait_for(lambda: not dask_jobs("alice"), 60, "alice's worker jobs to go")
    finally:
        hub.stop_server("alice")


def test_a_cluster_stops_with_its_notebook_server(site: DaskSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": "mx"}, server="analysis").status_code in (201, 202)
    hub.wait_ready("alice", "analysis")
    response = site.api("POST", "api/clusters", json={"workers": 1, "server_name": "analysis"})
    assert response.status_code == 201, response.text
    cluster_id = response.json()["id"]
    hub.stop_server("alice", "analysis")
    model = wait_stopped(site, cluster_id)
    assert "stopped with the notebook server 'analysis'" in model["message"]
    wait_for(lambda: not dask_jobs("alice"), 60, "alice's worker jobs to go")


def test_limits_follow_the_profile_of_the_server_the_cluster_is_for(site: DaskSite) -> None:
    hub = site.hub
    # The service has just looked alice up, before her "small" server exists (refused: nothing starts)...
    looked_up = site.api("POST", "api/clusters", json={"workers": 2, "server_name": "small", "partition": "gpu"})
    assert looked_up.status_code == 403 and "partition" in looked_up.json()["message"]
    # ... and must not decide the next request on that view.
    assert hub.spawn("alice", {}, server="small").status_code in (201, 202)  # the default profile: cpu
    hub.wait_ready("alice", "small")
    try:
        assert hub.server_model("alice", "small")["user_options"]["profile"] == "cpu"
        response = site.api("POST", "api/clusters", json={"workers": 2, "server_name": "small"})
        assert response.status_code == 403 and "max_workers=1" in response.json()["message"]
        assert not dask_jobs("alice")
    finally:
        hub.stop_server("alice", "small")


# -- isolation -----------------------------------------------------------------------------------


def test_bob_cannot_see_steer_stop_or_open_alices_cluster(site: DaskSite, alices_cluster: OffloadCluster) -> None:
    cluster_id = alices_cluster.id
    assert cluster_id not in [c["id"] for c in site.api("GET", "api/clusters", user="bob").json()["clusters"]]
    for method, path, body in (
        ("GET", f"api/clusters/{cluster_id}", None),
        ("GET", f"api/clusters/{cluster_id}/credentials", None),
        ("POST", f"api/clusters/{cluster_id}/scale", {"workers": 0}),
        ("POST", f"api/clusters/{cluster_id}/adapt", {"minimum": 0, "maximum": 1}),
        ("DELETE", f"api/clusters/{cluster_id}", None),
        ("GET", f"dashboard/{cluster_id}/status", None),
    ):
        response = site.api(method, path, user="bob", json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert "BEGIN" not in response.text
    assert alices_cluster.refresh().status == "running"
    dashboard = site.api("GET", f"dashboard/{cluster_id}/status")
    assert dashboard.status_code == 200 and "Dask" in dashboard.text
    assert site.api("GET", f"dashboard/{cluster_id}/status", user=None).status_code in (302, 403)


async def test_the_dashboards_live_plots_reach_only_the_owner(site: DaskSite, alices_cluster: OffloadCluster) -> None:
    page = site.api("GET", f"dashboard/{alices_cluster.id}/status")
    bokeh_token = re.search(r'"token":"([^"]+)"', page.text).group(1)
    url = f"ws://127.0.0.1:{site.hub.port}{SERVICE}dashboard/{alices_cluster.id}/status/ws"

    async def connect(user: str) -> websocket.WebSocketClientConnection:
        request = httpclient.HTTPRequest(url, headers={"Authorization": f"token {site.token[user]}"})
        return await websocket.websocket_connect(request, subprotocols=["bokeh", bokeh_token])

    socket = await connect("alice")  # through the hub's proxy and the service, to bokeh's server
    assert socket.selected_subprotocol == "bokeh"
    assert json.loads(await asyncio.wait_for(socket.read_message(), 30))["msgtype"] == "ACK"
    socket.close()
    with pytest.raises(httpclient.HTTPClientError) as refused:
        await connect("bob")
    assert refused.value.code == 403


def test_bob_cannot_connect_to_alices_scheduler(site: DaskSite, alices_cluster: OffloadCluster) -> None:
    bobs = site.offload["bob"].new_cluster(workers=0)
    try:
        with pytest.raises((OSError, TimeoutError)):
            Client(alices_cluster.model["scheduler_address"], security=bobs.security(), timeout=5)
        plain = alices_cluster.model["scheduler_address"].replace("tls://", "tcp://")
        with pytest.raises((OSError, TimeoutError)):
            Client(plain, timeout=5)
        with alices_cluster.get_client(timeout=30) as client:  # her own credentials do connect
            assert client.scheduler_info()["type"] == "Scheduler"
    finally:
        bobs.close()


def test_no_token_and_a_token_without_the_scope_are_refused(site: DaskSite) -> None:
    assert site.api("GET", "api/clusters", user=None).status_code == 403
    narrow = site.hub.token_for("alice", ["read:users!user=alice"])
    response = site.hub.http.get(f"{site.hub.url}{SERVICE}api/clusters", headers={"Authorization": f"token {narrow}"})
    assert response.status_code == 403


# -- validation ----------------------------------------------------------------------------------

REFUSED = [
    ({"workers": 10}, 403, "max_workers=3"),
    ({"adapt": {"minimum": 0, "maximum": 4}}, 403, "max_workers=3"),
    ({"cores": 8}, 403, "max_cores=2"),
    ({"memory": "64G"}, 403, "max_memory"),
    ({"walltime": "3-00:00:00"}, 403, "max_walltime"),
    ({"partition": "gpu"}, 403, "partition"),
    ({"partition": "cpu; touch /tmp/daas-pwned"}, 403, "partition"),
    ({"proposal": "20230042"}, 403, "is not one of your proposals"),
    ({"workers": "2"}, 400, "workers"),
    ({"workers": 2, "adapt": {"minimum": 0, "maximum": 2}}, 400, "either workers or adapt"),
    ({"memory": "$(touch /tmp/daas-pwned)"}, 400, "memory"),
    ({"cores": 1, "shell": "rm -rf ~"}, 400, "shell"),
    ({"server_name": "../../x"}, 400, "server_name"),
    ([1, 2], 400, "JSON object"),
]


@pytest.mark.parametrize(("body", "status", "message"), REFUSED)
def test_bad_and_over_limit_requests_start_nothing(site: DaskSite, body: Any, status: int, message: str) -> None:
    before = len(site.api("GET", "api/clusters", params={"all": "1"}).json()["clusters"])
    response = site.api("POST", "api/clusters", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert len(site.api("GET", "api/clusters", params={"all": "1"}).json()["clusters"]) == before
    assert not dask_jobs("alice") and not Path("/tmp/daas-pwned").exists()


def test_no_cluster_runs_as_a_system_account(site: DaskSite) -> None:
    """A person whose provider name is "root": the launcher would run their scheduler (their code) as root."""
    site.oidc.login("root")
    token = site.hub.token_for("root", ["access:services!service=daas-dask"])
    response = site.hub.http.post(
        f"{site.hub.url}{SERVICE}api/clusters", headers={"Authorization": f"token {token}"}, json={"workers": 1}
    )
    assert response.status_code == 403 and "root is a system account" in response.json()["message"], response.text
    assert not dask_jobs("root")


def test_scale_and_adapt_are_held_to_the_limit(site: DaskSite, alices_cluster: OffloadCluster) -> None:
    with pytest.raises(OffloadError, match="max_workers=3"):
        alices_cluster.scale(4)
    with pytest.raises(OffloadError, match="400"):
        site.offload["alice"].request("POST", f"api/clusters/{alices_cluster.id}/scale", json={"workers": "4"})
    assert alices_cluster.adapt(minimum=0, maximum=2).model["requested"]["adapt"] == {"minimum": 0, "maximum": 2}


# -- lifecycle -----------------------------------------------------------------------------------


def test_an_idle_cluster_is_stopped_and_its_jobs_cancelled(site: DaskSite) -> None:
    cluster = site.offload["bob"].new_cluster(workers=1)
    wait_for(lambda: dask_jobs("bob"), 60, "bob's worker job")
    model = wait_for(
        lambda: (m := site.api("GET", f"api/clusters/{cluster.id}", user="bob").json())["status"] == "stopped" and m,
        IDLE_TIMEOUT + 60,
        "the idle cluster to stop",
    )
    assert "idle" in model["message"]
    wait_for(lambda: not dask_jobs("bob"), 60, "bob's worker jobs to go")


def service_pid(site: DaskSite) -> int | None:
    output = subprocess.run(
        ["pgrep", "-f", f"daas_services.dask --config .* --records {site.records}"], capture_output=True, text=True
    ).stdout.split()
    return int(output[0]) if len(output) == 1 else None


def launcher_pid(cluster_id: str) -> int:
    """The launcher of one cluster: the process that writes that cluster's launcher.log."""
    found = subprocess.run(["pgrep", "-f", "daas_services.dask.launcher"], capture_output=True, text=True)
    for pid in found.stdout.split():
        if os.readlink(f"/proc/{pid}/fd/1").endswith(f"/.daas-dask/{cluster_id}/launcher.log"):
            return int(pid)
    raise AssertionError(f"no launcher for cluster {cluster_id}")


def test_a_service_restart_reattaches_live_clusters_and_ends_dead_ones(site: DaskSite) -> None:
    live = site.offload["alice"].new_cluster(workers=1)
    dead = site.offload["alice"].new_cluster(workers=1)
    wait_for(lambda: len(dask_jobs("alice")) == 2, 60, "two worker jobs")
    old = service_pid(site)
    assert old is not None
    subprocess.run(["kill", "-9", str(old)], check=True)
    # While the service is down, one cluster's launcher dies too, and its scheduler with it.
    subprocess.run(["kill", "-9", str(launcher_pid(dead.id))], check=True)
    wait_for(lambda: service_pid(site) not in (None, old) and site.answering(), 120, "the hub to restart the service")
    assert live.refresh().status == "running"  # re-attached: same scheduler, same workers
    assert live.model["workers"] == 1
    assert "gone when the service restarted" in wait_stopped(site, dead.id)["message"]
    wait_for(lambda: len(dask_jobs("alice")) == 1, 90, "the dead cluster's job to be cancelled")
    live.close()
    wait_for(lambda: not dask_jobs("alice"), 60, "alice's worker jobs to go")
