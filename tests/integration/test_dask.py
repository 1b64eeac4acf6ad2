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
import sqlite3
import subprocess
import sys
import time
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
    """The OIDC site with the daas-dask service; alice and bob logged in, with service tokens.

    `records_url`, `hub_db_url`: the service's and the hub's databases; None: SQLite files.
    """

    def __init__(self, records_url: str | None = None, hub_db_url: str | None = None) -> None:
        workdir = public_tempdir("daas-dask-")
        limits = workdir / "dask.yaml"
        limits.write_text(LIMITS)
        self.records = workdir / "service" / "clusters.sqlite"
        self.records_url = records_url or f"sqlite:///{self.records}"
        self.service_port = free_port()
        self.service_config = workdir / "daas_config.py"
        self.service_config.write_text(
            f"c.DaskService.limits_file = {str(limits)!r}\n"
            f"c.DaskService.db_url = {self.records_url!r}\n"
            'c.DaskService.interface = "lo"\n'
            "c.DaskService.check_interval = 2\n"
        )
        config = f"""
            from daas_hub import add_service_roles, dask_service
            c.JupyterHub.services.append(dask_service("{self.service_config}", url="http://127.0.0.1:{self.service_port}"))
            add_service_roles(c, "daas-dask")
            c.DaaSSpawner.environment = {{"DAAS_DASK_URL": f"http://127.0.0.1:{{c.JupyterHub.port}}{SERVICE}"}}
        """
        self.oidc = OidcSite(extra_config=config, prefix="daas-dask-site-", db_url=hub_db_url)
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
    assert looked_up.status_code == 403 and "'small' is not a running server" in looked_up.json()["message"]
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
    """A person whose provider name is "root": their scheduler job (their code) would run as root."""
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
        ["pgrep", "-f", f"daas_services.dask --config {site.service_config}"], capture_output=True, text=True
    ).stdout.split()
    return int(output[0]) if len(output) == 1 else None


def test_a_service_restart_reattaches_live_clusters_and_ends_dead_ones(site: DaskSite) -> None:
    live = site.offload["alice"].new_cluster(workers=1)
    dead = site.offload["alice"].new_cluster(workers=1)
    wait_for(lambda: cluster_jobs(live.id, True) and cluster_jobs(dead.id, True), 60, "a worker job of each")
    old = service_pid(site)
    assert old is not None
    subprocess.run(["kill", "-9", str(old)], check=True)
    # While the service is down, one cluster's scheduler job ends too.
    subprocess.run(["scancel", f"--name=daas-dask-{dead.id}-scheduler"], check=True)
    wait_for(lambda: service_pid(site) not in (None, old) and site.answering(), 120, "the hub to restart the service")
    assert live.refresh().status == "running"  # re-attached: same scheduler, same workers
    wait_for(lambda: live.refresh().model["workers"] == 1, 60, "the live cluster's worker")
    assert "gone when the service restarted" in wait_stopped(site, dead.id)["message"]
    wait_for(lambda: not cluster_jobs(dead.id), 90, "the dead cluster's jobs to be cancelled")
    assert len(cluster_jobs(live.id, workers_only=True)) == 1
    live.close()
    wait_for(lambda: not dask_jobs("alice"), 60, "alice's worker jobs to go")


# -- hardening (issue #14): the scheduler off the hub host, service-made credentials, limits ------


def ancestors(pid: int) -> list[int]:
    """The parent chain of a process on this host, up to init."""
    chain = []
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE).group(1))
        chain.append(pid)
    return chain


def cluster_jobs(cluster_id: str, workers_only: bool = False) -> dict[str, str]:
    """Slurm's jobs of one cluster (its workers are named daas-dask-<id>): id -> owner."""
    output = subprocess.run(
        ["squeue", "--noheader", "--format=%i %u %j"], capture_output=True, text=True, timeout=30
    ).stdout
    jobs = (line.split() for line in output.splitlines())
    worker = f"daas-dask-{cluster_id}"
    return {job: user for job, user, name in jobs if name == worker or (not workers_only and cluster_id in name)}


def test_the_scheduler_runs_in_a_slurm_job_of_the_cluster_not_under_the_service(
    site: DaskSite, alices_cluster: OffloadCluster
) -> None:
    """On a real site the scheduler's host is a compute node; on this one-host cluster: its own Slurm job."""
    with alices_cluster.get_client(timeout=30) as client:
        job = client.run_on_scheduler(os.getenv, "SLURM_JOB_ID")
        pid = client.run_on_scheduler(os.getpid)
    assert job is not None, "the scheduler runs outside Slurm (on the hub host, under the service)"
    assert cluster_jobs(alices_cluster.id).get(job) == "alice"
    service = service_pid(site)
    assert service is not None and service not in ancestors(pid)


BOBS_FETCH = """
import json, ssl, sys, urllib.request
results = {}
for scheme in ("http", "https"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        results[scheme] = urllib.request.urlopen(f"{scheme}://{sys.argv[1]}", timeout=10, context=context).status
    except Exception as err:
        results[scheme] = type(err).__name__
print(json.dumps(results))
"""


def dashboard_address(site: DaskSite, cluster_id: str) -> str:
    """host:port/prefix of a cluster's dashboard, as the service recorded it (root reads the records)."""
    with sqlite3.connect(site.records) as db:
        address, port = db.execute(
            "SELECT scheduler_address, dashboard_port FROM clusters WHERE id = ?", (cluster_id,)
        ).fetchone()
    host = address.removeprefix("tls://").rsplit(":", 1)[0]
    return f"{host}:{port}{SERVICE}dashboard/{cluster_id}/status"


def test_another_users_code_cannot_fetch_a_dashboard(site: DaskSite, alices_cluster: OffloadCluster) -> None:
    address = dashboard_address(site, alices_cluster.id)
    argv = ["sudo", "-n", "-u", "bob", "--", sys.executable, "-c", BOBS_FETCH, address]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/tmp")
    fetched = json.loads(result.stdout)
    assert 200 not in fetched.values(), fetched
    assert site.api("GET", f"dashboard/{alices_cluster.id}/status").status_code == 200  # the owner, via the service


SECRET_VARIABLE = "DAAS_DASK_SECRET"  # the scheduler job's one-time secret (daas_services.dask.jobs)

# Alice's own code in her scheduler (a preload in ~/.config/dask) forges the scheduler's report to the service.
FORGER = """
import json, os, urllib.error, urllib.request

def dask_setup(scheduler):
    hub = {hub_port}
    forged = {{"scheduler_address": f"tls://127.0.0.1:{{hub}}", "dashboard_port": hub, "pid": 1,
              "tls": {{"ca": "/etc/hostname", "cert": "/etc/hostname", "key": "/etc/hostname"}}}}
    print(json.dumps(forged), flush=True)  # a ready line on the scheduler's stdout
    results = []
    secret, url = os.environ.get("{secret_variable}"), os.environ.get("DAAS_DASK_URL")
    if secret and url:
        cluster = os.environ["SLURM_JOB_NAME"].removeprefix("daas-dask-").split("-")[0]
        forged_port = {{"port": hub, "dashboard_port": hub}}
        for body in (forged_port, dict(forged_port, host="10.0.0.1")):
            request = urllib.request.Request(
                f"{{url}}api/clusters/{{cluster}}/ready", data=json.dumps(body).encode(), method="POST",
                headers={{"Authorization": f"secret {{secret}}", "Content-Type": "application/json"}},
            )
            try:
                results.append(urllib.request.urlopen(request, timeout=60).status)
            except urllib.error.HTTPError as err:
                results.append(err.code)
    with open(os.path.expanduser("~/.daas-forged"), "w") as file:
        json.dump(results, file)
"""


def alices_dask_config(name: str, text: str) -> Path:
    """A file in alice's ~/.config/dask (hers: she may write anything there)."""
    folder = Path("/home/alice/.config/dask")
    subprocess.run(["sudo", "-n", "-u", "alice", "--", "mkdir", "-p", str(folder)], check=True)
    path = folder / name
    subprocess.run(
        ["sudo", "-n", "-u", "alice", "--", "tee", str(path)],
        input=text,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return path


def test_a_forged_ready_report_is_refused(site: DaskSite) -> None:
    forger = alices_dask_config("forge.py", FORGER.format(hub_port=site.hub.port, secret_variable=SECRET_VARIABLE))
    config = alices_dask_config("forge.yaml", f"distributed: {{scheduler: {{preload: [{forger}]}}}}\n")
    result = Path("/home/alice/.daas-forged")
    result.unlink(missing_ok=True)
    try:
        cluster = site.offload["alice"].new_cluster(workers=0)
    finally:
        config.unlink()
        forger.unlink()
    try:
        assert not cluster.model["scheduler_address"].endswith(f":{site.hub.port}")
        assert site.api("GET", f"dashboard/{cluster.id}/status").status_code == 200
        assert json.loads(result.read_text()) == [400, 400]  # a port that is not this cluster's, a host
        with cluster.get_client(timeout=30) as client:
            pid = client.run_on_scheduler(os.getpid)
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
        )
        report = {"port": 1234, "dashboard_port": 1235}
        for secret, status in ((environ[SECRET_VARIABLE], 403), ("wrong", 403), (None, 403)):
            headers = {"Authorization": f"secret {secret}"} if secret else {}
            response = site.hub.http.post(
                f"{site.hub.url}{SERVICE}api/clusters/{cluster.id}/ready", json=report, headers=headers
            )
            assert response.status_code == status, response.text  # spent after the real report; never guessed
        assert cluster.refresh().model["scheduler_address"] == cluster.model["scheduler_address"]
    finally:
        cluster.close()


def test_a_request_without_server_name_gets_the_limits_of_the_callers_running_server(site: DaskSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": "cpu"}, server="training").status_code in (201, 202)
    hub.wait_ready("alice", "training")
    try:
        server_token = hub.token_for(
            "alice", ["access:services!service=daas-dask", "access:servers!server=alice/training"]
        )
        for token in (server_token, site.token["alice"]):  # the server's own token, her personal one
            response = hub.http.post(
                f"{hub.url}{SERVICE}api/clusters", json={"workers": 2}, headers={"Authorization": f"token {token}"}
            )
            assert response.status_code == 403 and "max_workers=1" in response.json()["message"], response.text
        named = site.api("POST", "api/clusters", json={"workers": 1, "server_name": "gone"})
        assert named.status_code == 403 and "'gone' is not a running server" in named.json()["message"]
        assert not dask_jobs("alice")
    finally:
        hub.stop_server("alice", "training")


JOBQUEUE_OVERRIDE = """
jobqueue:
  slurm:
    queue: gpu
    walltime: "20:00:00"
    memory: 100MiB
    job-extra-directives: ["--partition=gpu", "--time=20:00:00", "--mem=100M"]
"""


def job_fields(job: str) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def test_the_owners_dask_config_does_not_change_worker_jobs(site: DaskSite) -> None:
    config = alices_dask_config("override.yaml", JOBQUEUE_OVERRIDE)
    try:
        cluster = site.offload["alice"].new_cluster(workers=1, memory="1G", walltime="00:30:00")
    finally:
        config.unlink()
    try:
        jobs = wait_for(lambda: cluster_jobs(cluster.id, workers_only=True), 60, "the worker job")
        for job in jobs:
            fields = job_fields(job)
            assert fields["Partition"] == "cpu", fields
            assert fields["MinMemoryNode"] in ("1G", "1024M"), fields
            assert fields["TimeLimit"] == "00:30:00", fields
    finally:
        cluster.close()


def test_the_worker_cap_holds_whatever_the_owners_scheduler_asks(site: DaskSite) -> None:
    def want_many_workers(dask_scheduler: Any) -> None:
        """Alice's own code in her scheduler: ask for 50 workers, and scale any cluster object in reach to 5."""
        import gc

        dask_scheduler.handlers["adaptive_target"] = lambda *args, **kwargs: 50
        for thing in gc.get_objects():
            if type(thing).__name__ == "SLURMCluster":  # a cluster object in the scheduler's process
                if thing._adaptive is not None:
                    thing._adaptive.stop()
                thing.scale(5)

    cluster = site.offload["alice"].new_cluster(adapt={"minimum": 0, "maximum": 2})
    try:
        with cluster.get_client(timeout=30) as client:
            client.run_on_scheduler(want_many_workers)
        wait_for(lambda: len(cluster_jobs(cluster.id, workers_only=True)) >= 2, 60, "the worker jobs")
        for _ in range(5):  # several of the service's check intervals (2 s here): the maximum, never more
            assert len(cluster_jobs(cluster.id, workers_only=True)) == 2
            time.sleep(2)
    finally:
        cluster.close()
