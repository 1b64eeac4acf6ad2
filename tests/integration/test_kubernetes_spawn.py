"""The Kubernetes backend on a real cluster: etcd, kube-apiserver, scheduler, controller-manager, and a
kubelet running the pods in containerd (tests/cluster/kubernetes.sh).

The hub runs with a service account's token and the Role a site grants it (kubernetes.HUB_RULES); the
tests look with the admin's. The notebook image is a Debian rootfs with python3; the pods mount the
test venv read-only as a site's image would carry its environment. Data: the facility tree of
data_tree.py on the host, mounted into pods as hostPath volumes with the person's uid and groups.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import public_tempdir
from .data_tree import make_data_tree
from .hub import Hub
from .kubernetes import HOST_IP, Audit, admin, cluster, grant_hub, home_volumes, profile, venv_volume, write_kubeconfig
from .process import wait_for

NAMESPACE = "daas-test"
HUB_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:daas-hub"
HOME_CLASS = "daas-home"
CPU = "k8s-cpu"


PROFILES = {
    "default_profile": CPU,
    "profiles": [
        profile(CPU),
        profile("k8s-gpu", gpus={"max": 2, "default": 1}),
        profile("k8s-power9", features=["power9"]),
    ],
}


class KubeSite:
    def __init__(self) -> None:
        cluster("start")
        subprocess.run(["bash", str(Path(__file__).parents[1] / "cluster" / "slurm.sh"), "users"], check=True)
        self.kube = admin()
        self.kube.delete(f"/api/v1/namespaces/{NAMESPACE}")  # what an earlier run left
        self.kube.wait("the old namespace to go", lambda: self.kube.get(f"/api/v1/namespaces/{NAMESPACE}") is None, 120)
        workdir = public_tempdir("daas-k8s-")
        self.tree = make_data_tree(workdir / "facility")
        data_file = workdir / "data.yaml"
        data_file.write_text(self.tree.locations_yaml + "mount_root: /data/proposals\n")
        profiles = workdir / "profiles.yaml"
        profiles.write_text(yaml.safe_dump(PROFILES))
        token = grant_hub(self.kube, NAMESPACE)
        kubeconfig = write_kubeconfig(workdir / "hub.kubeconfig", token)
        home_volumes(self.kube, HOME_CLASS, 12)
        venv, venv_mount = venv_volume()
        self.hub = Hub(
            workdir / "hub",
            f"""
            from daas_spawner import load_profiles
            from daas_core.mounts import load_data_locations
            c.DaaSSpawner.profiles = load_profiles("{profiles}")
            c.DaaSSpawner.data_locations = load_data_locations("{data_file}")
            c.Authenticator.enable_auth_state = True
            c.JupyterHub.hub_ip = "0.0.0.0"
            c.JupyterHub.hub_connect_ip = "{HOST_IP}"
            c.KubernetesBackend.kubeconfig = "{kubeconfig}"
            c.KubernetesBackend.namespace = "{NAMESPACE}"
            c.KubernetesBackend.home_storage_class = "{HOME_CLASS}"
            c.KubernetesBackend.home_size = "1Gi"
            c.KubernetesBackend.extra_volumes = [{venv!r}]
            c.KubernetesBackend.extra_volume_mounts = [{venv_mount!r}]
            c.JupyterHub.named_server_limit_per_user = 0  # stopped named servers count towards a limit
            c.Spawner.poll_interval = 1
            c.Spawner.start_timeout = 180
            """,
            env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
        ).start()
        self.hub.create_users("alice", "bob", "carol")
        alice = [{"id": "20231234", "instrument": "ID11"}]
        bob = [{"id": "20230042", "instrument": "D22"}]
        for name, proposals in (("alice", alice), ("bob", bob), ("carol", [])):
            response = self.hub.api("PATCH", f"/users/{name}", json={"auth_state": {"proposals": proposals}})
            assert response.status_code == 200, response.text

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.pods(NAMESPACE)

    def pod_of(self, name: str, server: str = "") -> dict[str, Any]:
        model = self.hub.server_model(name, server)
        assert model is not None, f"{name}/{server} has no server"
        pod = self.kube.pod(NAMESPACE, model["state"]["daas"]["state"]["pod"])
        assert pod is not None
        return pod

    def close(self) -> None:
        self.hub.stop()
        self.kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods", gracePeriodSeconds=0)


@pytest.fixture(scope="module")
def site() -> Iterator[KubeSite]:
    site = KubeSite()
    yield site
    site.close()


@pytest.fixture
def hub(site: KubeSite) -> Iterator[Hub]:
    yield site.hub
    for name in ("alice", "bob", "carol"):
        for server in list(site.hub.user_model(name)["servers"]):
            site.hub.stop_server(name, server)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    [notebook] = pod["spec"]["containers"]
    return notebook


# -- a spawn ------------------------------------------------------------------------------------


def test_gpu_spawn_via_rest(site: KubeSite, hub: Hub) -> None:
    options = {"profile": "k8s-gpu", "cores": "2", "memory": "1G", "gpus": 1, "walltime": "2:00:00"}
    assert hub.spawn("alice", options).status_code in (201, 202)
    hub.wait_ready("alice", timeout=180)
    pod = site.pod_of("alice")
    notebook = container(pod)
    assert notebook["resources"]["limits"] == {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert notebook["resources"]["requests"] == {"cpu": "100m", "memory": "1Gi", "nvidia.com/gpu": "1"}
    account = pwd.getpwnam("alice")
    proposal_gid = os.stat(site.tree.raw("20231234")).st_gid
    security = pod["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (
        account.pw_uid,
        account.pw_gid,
        account.pw_gid,
    )
    assert proposal_gid in security["supplementalGroups"]
    assert notebook["securityContext"]["allowPrivilegeEscalation"] is False
    assert notebook["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["activeDeadlineSeconds"] == 7200
    env = {item["name"]: item.get("value") for item in notebook["env"]}
    assert "JUPYTERHUB_API_TOKEN" not in env and env["DAAS_BOOTSTRAP"]  # the spec is readable: no token in it
    mounts = {m["mountPath"]: m for m in notebook["volumeMounts"]}
    assert mounts["/data/proposals/20231234/raw"]["readOnly"] is True
    assert mounts["/data/proposals/20231234/processed"].get("readOnly", False) is False
    assert pod["status"]["phase"] == "Running"

    # Through the proxy, as alice: her data in the pod, raw read-only by the volume and by the filesystem.
    token = hub.token_for("alice", ["access:servers!user=alice"])
    headers = {"Authorization": f"token {token}"}
    contents = f"{hub.url}/user/alice/api/contents"
    raw = hub.http.get(f"{contents}/data/20231234/raw/notes.txt", headers=headers)
    assert raw.status_code == 200, raw.text
    assert raw.json()["content"] == "beamtime 20231234\n"
    new_file = {"type": "file", "format": "text", "content": "x"}
    refused = hub.http.put(f"{contents}/data/20231234/raw/pod.txt", headers=headers, json=new_file)
    assert refused.status_code >= 400 and "Read-only file system" in refused.text
    written = hub.http.put(f"{contents}/data/20231234/processed/pod.txt", headers=headers, json=new_file)
    assert written.status_code == 201, written.text
    assert os.stat(site.tree.processed("20231234") / "pod.txt").st_uid == account.pw_uid
    # The home: a claim of the site's class, bound, kept when the server stops.
    claims = [c for c in site.kube.claims(NAMESPACE) if c["metadata"]["labels"].get("daas.io/user") == "alice"]
    assert [c["spec"]["storageClassName"] for c in claims] == [HOME_CLASS]
    hub.stop_server("alice")
    assert site.kube.wait("the pod to go", lambda: not site.pods(), 30)
    assert [c["metadata"]["name"] for c in site.kube.claims(NAMESPACE)] == [c["metadata"]["name"] for c in claims]


def test_power9_waits_with_the_schedulers_reason(site: KubeSite, hub: Hub) -> None:
    assert hub.spawn("carol", {"profile": "k8s-power9", "feature": "power9"}).status_code == 202
    pod = site.kube.wait("carol's pod", lambda: [p for p in site.pods() if "carol" in p["metadata"]["name"]])[0]
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/arch": "ppc64le"}
    path = f"{hub.api_url}{hub.server_path('carol', '')}/progress"
    seen: list[str] = []
    with hub.http.stream("GET", path, headers={"Authorization": f"token {hub.admin_token}"}, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line.removeprefix("data:"))["message"])
                if "architecture" in seen[-1]:
                    break
    assert seen[-1] == "Waiting for a node: the only node is not of the chosen architecture (ppc64le)", seen
    hub.stop_server("carol")
    assert site.kube.wait("the pod to go", lambda: not site.pods(), 30)


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"profile": CPU, "cores": "1; rm -rf /"}, "cores"),
        ({"profile": CPU, "image": "evil/miner:latest"}, "image: is not a known option"),
        ({"profile": CPU, "gpus": 1}, "gpus: is not offered"),
        ({"profile": "k8s-gpu", "gpus": 3}, "gpus: 3 is outside the allowed range 0..2"),
        ({"profile": CPU, "memory": "64G"}, "memory"),
        ({"profile": "k8s-power9", "feature": "sparc"}, "feature"),
        ({"profile": CPU, "cores": "whole_node", "memory": "1G"}, "memory: cannot be set with whole_node"),
    ],
)
def test_bad_options_get_400_and_no_pod(site: KubeSite, hub: Hub, options: dict[str, Any], words: str) -> None:
    response = hub.spawn("bob", options)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    assert hub.server_model("bob") is None
    assert site.pods() == []


def test_quota_refusal_leaves_no_pod_and_no_claim(site: KubeSite, hub: Hub) -> None:
    quota = f"/api/v1/namespaces/{NAMESPACE}/resourcequotas"
    site.kube.apply(quota, {"metadata": {"name": "no-gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "0"}}})
    site.kube.wait(
        "the quota to be counted", lambda: (site.kube.get(f"{quota}/no-gpus") or {}).get("status", {}).get("hard")
    )
    try:
        response = hub.spawn("bob", {"profile": "k8s-gpu"})
        if response.status_code == 202:
            events = hub.progress("bob", timeout=60)
            message = events[-1]["message"]
        else:
            message = response.json()["message"]
        assert "Kubernetes quota of this namespace does not allow it" in message, message
        assert "requests.nvidia.com/gpu" in message or "nvidia.com/gpu" in message
        hub.wait_stopped("bob")
        assert site.pods() == []
        # The claim the start made goes too (its deletion waits for the volume-protection finalizer).
        site.kube.wait(
            "bob's claim to go",
            lambda: (
                not [c for c in site.kube.claims(NAMESPACE) if c["metadata"]["labels"].get("daas.io/user") == "bob"]
            ),
            30,
        )
    finally:
        site.kube.delete(f"{quota}/no-gpus")


# -- the life of a pod ---------------------------------------------------------------------------------


def test_a_pod_deleted_from_outside_is_noticed_with_the_reason(site: KubeSite, hub: Hub) -> None:
    assert hub.spawn("alice", {"profile": CPU}, server="outside").status_code in (201, 202)
    hub.wait_ready("alice", "outside")
    pod = site.pod_of("alice", "outside")
    site.kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod['metadata']['name']}")
    hub.wait_stopped("alice", "outside", timeout=20)
    with hub.logged_in("alice") as browser:
        page = browser.get(f"{hub.url}/hub/spawn/alice/outside")
    assert "daas-last-end" in page.text, page.text[:3000]
    assert "deleted" in page.text, page.text[-2000:]


def test_walltime_ends_the_pod_by_its_deadline(site: KubeSite, hub: Hub) -> None:
    assert hub.spawn("alice", {"profile": CPU, "walltime": "1"}, server="short").status_code in (201, 202)
    hub.wait_ready("alice", "short")
    assert site.pod_of("alice", "short")["spec"]["activeDeadlineSeconds"] == 60
    hub.wait_stopped("alice", "short", timeout=120)
    with hub.logged_in("alice") as browser:
        page = browser.get(f"{hub.url}/hub/spawn/alice/short")
    assert "wall time of 0:01:00" in page.text or "wall time of 1:00" in page.text, page.text[-2000:]


def test_hub_restart_reattaches_pods(site: KubeSite, hub: Hub) -> None:
    for server in ("one", "two"):
        assert hub.spawn("alice", {"profile": CPU}, server=server).status_code in (201, 202)
    for server in ("one", "two"):
        hub.wait_ready("alice", server)
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in site.pods()}
    audit = Audit(HUB_ACCOUNT)
    audit.mark()
    hub.stop()
    hub.start()
    for server in ("one", "two"):
        hub.wait_ready("alice", server, timeout=60)
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in site.pods()}
    assert after == before
    made_or_removed = [r for r in audit.requests() if r[0] in ("create", "delete")]
    assert made_or_removed == []
    token = hub.token_for("alice", ["access:servers!user=alice"])
    answer = hub.http.get(f"{hub.url}/user/alice/one/api/status", headers={"Authorization": f"token {token}"})
    assert answer.status_code == 200, answer.text


def test_one_watch_for_twenty_pods(site: KubeSite, hub: Hub) -> None:
    servers = [f"w{index:02d}" for index in range(20)]
    for server in servers:
        assert hub.spawn("alice", {"profile": CPU, "memory": "256M"}, server=server).status_code in (201, 202)
    for server in servers:
        hub.wait_ready("alice", server, timeout=300)
    audit = Audit(HUB_ACCOUNT)
    audit.mark()
    polls = 5  # c.Spawner.poll_interval = 1: every server is polled about five times
    time.sleep(polls + 0.5)
    requests = audit.requests()
    # A call about one pod names it; the shared watches list whole namespaces (and list again
    # when a watch is restarted, about every 30 s: once at most in this window).
    per_pod = [r for r in requests if r[1] in ("pods", "events") and r[2]]
    assert per_pod == [], per_pod
    assert len([r for r in requests if r[:2] == ("list", "pods")]) <= 1
    assert len([r for r in requests if r[:2] == ("list", "events")]) <= 1
    assert len([r for r in requests if r[:2] == ("list", "nodes")]) <= 1
    running = wait_for(lambda: len(site.pods()) == 20 and site.pods(), 10, "20 pods")
    assert all(p["status"]["phase"] == "Running" for p in running)
