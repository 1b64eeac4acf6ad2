"""The Helm chart on the live test cluster (Kubernetes 1.20, tests/cluster/kubernetes.sh).

helm-python-sdk (Helm v4) installs helm/jupyterhub-daas with ci/site-values.yaml adjusted for the test
cluster; a real JupyterHub then runs with the token of the chart's ServiceAccount, so the chart's Role
and ClusterRole are all it may use, through a server's whole life: spawn, the form, stop, a hub restart
with a server running, a start Kubernetes refuses. The apiserver's audit log shows every call that
hub made: none refused, and the chart grants exactly those (verb, resource) pairs, no more. Uninstall
then leaves nothing of the release.

Here the hub runs on the host, as in test_kubernetes_spawn.py, with the chart's token and the settings
the installed ConfigMap carries (namespace, persistent homes, the site's profiles): one hub, so the audit
log's calls of that ServiceAccount are its alone and a restart is a process restart. The release's hub
Deployment names an image the cluster lacks, so its pod never runs. test_helm_hub_pod.py runs the chart's
own hub and proxy in their pods, from the hub image built without a registry.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml

from .conftest import public_tempdir
from .hub import Hub
from .kube_site import home_volumes, profile, remove_release, venv_volume
from .kubernetes import DIR, HOST_IP, REPO, Audit, Call, account_token, admin, cluster, write_kubeconfig

CHART = REPO / "helm" / "jupyterhub-daas"
NAMESPACE = "daas-helm"
RELEASE = "daas"
FULLNAME = f"{RELEASE}-jupyterhub-daas"
HUB_ACCOUNT = f"{FULLNAME}-hub"
HUB_USER = f"system:serviceaccount:{NAMESPACE}:{HUB_ACCOUNT}"
RELEASE_LABELS = f"app.kubernetes.io/instance={RELEASE}"
HOME_CLASS = "daas-helm-home"  # a class of its own: only this module's volumes serve its claims
VOLUMES = 3  # alice's home, bob's (made and removed), one spare
CPU, GPU = "k8s-cpu", "k8s-gpu"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
PEOPLES_PODS = "app.kubernetes.io/managed-by=jupyterhub-daas"  # the backend's selector

# Where each kind the chart renders is listed (kind -> plural).
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "NetworkPolicy": "networkpolicies",
    "PodDisruptionBudget": "poddisruptionbudgets",
}
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding"}


def collection(api_version: str, kind: str, namespace: str = NAMESPACE) -> str:
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    scope = "" if kind in CLUSTER_KINDS else f"/namespaces/{namespace}"
    return f"{root}{scope}/{PLURALS[kind]}"


def values() -> dict[str, Any]:
    """The facility's values (ci/site-values.yaml) on the test cluster: people's pods in the release's
    namespace only, an image the cluster lacks, homes as claims of HOME_CLASS, the test profiles."""
    site = yaml.safe_load((CHART / "ci" / "site-values.yaml").read_text())
    site["image"] = {"repository": "daas.local/hub", "tag": "not-built", "pullPolicy": "Never"}
    site["kubernetes"] = {"namespace": "", "extraNamespaces": [], "watchAllNamespaces": False, "readNodes": True}
    venv, venv_mount = venv_volume()
    site["hub"]["config"]["KubernetesBackend"] = {
        "home_storage_class": HOME_CLASS,
        "home_size": "1Gi",
        "extra_volumes": [venv],
        "extra_volume_mounts": [venv_mount],
    }
    site["siteFiles"] = {
        "profiles": {"default_profile": CPU, "profiles": [profile(CPU), profile(GPU, gpus={"max": 2, "default": 1})]}
    }
    return site


def granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """A role's rules as (apiGroup, resource, verb) triples."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(calls: list[Call]) -> set[tuple[str, str, str]]:
    return {(call.api_group, call.resource, call.verb) for call in calls}


class HelmSite:
    """The release, and a hub on the host that talks to the cluster as the chart's ServiceAccount."""

    def __init__(self) -> None:
        cluster("start")
        subprocess.run(["bash", str(REPO / "tests" / "cluster" / "slurm.sh"), "users"], check=True)
        self.kube = admin()
        self.helm = helm.Config(kubeconfig_path=DIR / "admin.kubeconfig", namespace=NAMESPACE)
        self.remove_leftovers()
        self.volumes = home_volumes(self.kube, VOLUMES, HOME_CLASS, prefix=HOME_CLASS, directory=HOME_CLASS)
        self.release = self.helm.install(
            CHART, RELEASE, values(), namespace=NAMESPACE, create_namespace=True, timeout=120
        )
        self.manifests = [d for d in yaml.safe_load_all(self.release["manifest"]) if d]
        self.workdir = public_tempdir("daas-helm-")
        self.hub = self._hub()
        self.audit = Audit(HUB_USER)
        self.audit.mark()  # every call of this hub, from its start to the end of the module
        self.hub.start()
        self.hub.create_users("alice", "bob")
        for name in ("alice", "bob"):
            response = self.hub.api("PATCH", f"/users/{name}", json={"auth_state": {"proposals": []}})
            assert response.status_code == 200, response.text

    def remove_leftovers(self) -> None:
        """What an earlier run that did not finish left: its release, namespace and volumes."""
        remove_release(self.helm, self.kube, RELEASE, NAMESPACE, [f"{HOME_CLASS}-{i}" for i in range(VOLUMES)])

    def _hub(self) -> Hub:
        """A hub with the chart's token, namespace, backend settings and profiles (read from the cluster)."""
        token = self.kube.wait("the hub's token", lambda: account_token(self.kube, NAMESPACE, HUB_ACCOUNT), 30)
        kubeconfig = write_kubeconfig(self.workdir / "hub.kubeconfig", token)
        config_map = self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{HUB_ACCOUNT}")
        assert config_map is not None
        chart_json = self.workdir / "chart.json"
        chart_json.write_text(config_map["data"]["chart.json"])
        profiles = self.workdir / "profiles.yaml"
        profiles.write_text(config_map["data"]["profiles.yaml"])
        return Hub(
            self.workdir / "hub",
            f"""
            import json
            from daas_spawner import load_profiles
            with open("{chart_json}") as file:
                chart = json.load(file)
            c.DaaSSpawner.profiles = load_profiles("{profiles}")
            c.KubernetesBackend.kubeconfig = "{kubeconfig}"
            c.KubernetesBackend.namespace = chart["kubernetes"]["namespace"]
            c.KubernetesBackend.watch_all_namespaces = chart["kubernetes"]["watchAllNamespaces"]
            for trait, value in chart["config"]["KubernetesBackend"].items():
                c.KubernetesBackend[trait] = value
            c.Authenticator.enable_auth_state = True
            c.JupyterHub.hub_ip = "0.0.0.0"
            c.JupyterHub.hub_connect_ip = "{HOST_IP}"
            c.Spawner.poll_interval = 1
            c.Spawner.start_timeout = 120
            """,
            env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
        )

    def pods(self) -> list[dict[str, Any]]:
        """People's pods (the chart's own Deployments have pods here too)."""
        return self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={PEOPLES_PODS}")["items"]  # type: ignore[index]

    def homes(self, user: str) -> list[dict[str, Any]]:
        return [c for c in self.kube.claims(NAMESPACE) if c["metadata"]["labels"].get("daas.io/user") == user]

    def pod_of(self, name: str) -> dict[str, Any]:
        model = self.hub.server_model(name)
        assert model is not None, f"{name} has no server"
        pod = self.kube.pod(NAMESPACE, model["state"]["daas"]["state"]["pod"])
        assert pod is not None
        return pod

    def close(self) -> None:
        self.hub.stop()
        self.helm.uninstall(RELEASE, ignore_not_found=True, timeout=60)
        self.kube.delete(f"/api/v1/namespaces/{NAMESPACE}")  # ours: the homes and the quota go with it
        for name in self.volumes:
            self.kube.delete(f"/api/v1/persistentvolumes/{name}")
        self.kube.delete(f"/apis/storage.k8s.io/v1/storageclasses/{HOME_CLASS}")
        self.helm.close()


@pytest.fixture(scope="module")
def site() -> Iterator[HelmSite]:
    site = HelmSite()
    yield site
    site.close()


# -- install -------------------------------------------------------------------------------------


def test_the_chart_installs_on_kubernetes_1_20(site: HelmSite) -> None:
    assert site.release["status"] == "deployed", site.release["status"]
    assert site.helm.status(RELEASE)["status"] == "deployed"
    kinds = sorted({m["kind"] for m in site.manifests})
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "ClusterRole",
            "ClusterRoleBinding",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount",
        ]
    )
    for manifest in site.manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        found = site.kube.get(f"{collection(manifest['apiVersion'], kind)}/{name}")
        assert found is not None, f"{kind} {name} was not created"
        assert found["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    # 1.20 serves no policy/v1: the chart asked the live cluster's API list and chose policy/v1beta1.
    assert {m["apiVersion"] for m in site.manifests if m["kind"] == "PodDisruptionBudget"} == {"policy/v1beta1"}
    binding = site.kube.get(f"{RBAC}/namespaces/{NAMESPACE}/rolebindings/{HUB_ACCOUNT}")
    assert binding is not None
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": NAMESPACE}]


# -- a server's life with the chart's token --------------------------------------------------------


def test_the_hub_spawns_reads_the_form_and_stops_with_the_charts_rbac(site: HelmSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU}).status_code in (201, 202)
    hub.wait_ready("alice", timeout=120)
    pod = site.pod_of("alice")
    assert pod["metadata"]["namespace"] == NAMESPACE and pod["status"]["phase"] == "Running"
    token = hub.token_for("alice", ["inherit"])
    headers = {"Authorization": f"token {token}"}
    answer = hub.http.get(f"{hub.url}/user/alice/api/status", headers=headers)
    assert answer.status_code == 200, answer.text
    # The home is a claim of the class the chart's values named, bound to one of this module's volumes.
    [home] = site.homes("alice")
    assert home["spec"]["storageClassName"] == HOME_CLASS
    assert home["spec"]["volumeName"] in site.volumes

    with hub.logged_in("alice") as browser:
        form = browser.get(f"{hub.url}/hub/spawn/alice/second")
    assert form.status_code == 200 and GPU in form.text, form.text[:2000]
    availability = hub.http.get(f"{hub.api_url}/daas/availability", headers=headers)
    assert availability.status_code == 200, availability.text
    [cpu_pool] = availability.json()["kubernetes"]["pools"].values()  # from the hub's node listing
    assert (cpu_pool["nodes_total"], cpu_pool["gpus_total"]) == (1, 2), cpu_pool

    hub.stop_server("alice")
    assert site.kube.pod(NAMESPACE, pod["metadata"]["name"]) is None  # the stop waited until it was gone
    assert [c["metadata"]["name"] for c in site.homes("alice")] == [home["metadata"]["name"]]  # kept


def test_a_hub_restart_reattaches_the_running_pod(site: HelmSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU}).status_code in (201, 202)
    hub.wait_ready("alice", timeout=120)
    before = site.pod_of("alice")["metadata"]["uid"]
    restart = Audit(HUB_USER)
    restart.mark()
    hub.stop()
    hub.start()
    hub.wait_ready("alice", timeout=60)
    assert site.pod_of("alice")["metadata"]["uid"] == before
    assert [c for c in restart.calls() if c.verb in ("create", "delete")] == []
    hub.stop_server("alice")
    assert site.pods() == []


def test_a_start_kubernetes_refuses_leaves_no_pod_and_removes_the_claim_it_made(site: HelmSite) -> None:
    hub = site.hub
    quota = f"/api/v1/namespaces/{NAMESPACE}/resourcequotas"
    site.kube.apply(quota, {"metadata": {"name": "no-gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "0"}}})
    site.kube.wait(
        "the quota to be counted", lambda: (site.kube.get(f"{quota}/no-gpus") or {}).get("status", {}).get("hard")
    )
    try:
        assert site.homes("bob") == []  # bob's first start: the claim is made by it
        response = hub.spawn("bob", {"profile": GPU})
        if response.status_code == 202:
            message = hub.progress("bob", timeout=60)[-1]["message"]
        else:
            message = response.json()["message"]
        assert "Kubernetes quota of this namespace does not allow it" in message, message
        hub.wait_stopped("bob")
        assert site.pods() == []
        site.kube.wait("bob's claim to go", lambda: site.homes("bob") == [], 30)
    finally:
        site.kube.delete(f"{quota}/no-gpus")


# -- RBAC: what the hub used is what the chart grants ----------------------------------------------


def test_the_chart_grants_exactly_what_the_hub_used(site: HelmSite) -> None:
    calls = site.audit.calls()
    assert [c for c in calls if not c.authorized] == []
    # The one 403 is the quota's (admission, after RBAC allowed the create): bob's pod.
    assert [(c.verb, c.resource) for c in calls if c.code == 403] == [("create", "pods")]
    assert {c.namespace for c in calls} <= {NAMESPACE, ""}, "the hub called outside its namespace"
    in_namespace = used([c for c in calls if c.namespace == NAMESPACE])
    cluster_wide = used([c for c in calls if c.namespace == ""])
    role = site.kube.get(f"{RBAC}/namespaces/{NAMESPACE}/roles/{HUB_ACCOUNT}")
    cluster_role = site.kube.get(f"{RBAC}/clusterroles/{HUB_ACCOUNT}-{NAMESPACE}-cluster")
    assert role is not None and cluster_role is not None
    for scope, grants, calls_made in (
        ("Role", granted(role["rules"]), in_namespace),
        ("ClusterRole", granted(cluster_role["rules"]), cluster_wide),
    ):
        assert grants - calls_made == set(), f"the chart's {scope} grants what the hub never used"
        assert calls_made - grants == set(), f"the hub used what the chart's {scope} does not grant"
    # What the life above needed, call by call (templates/hub/rbac.yaml gives the reasons).
    assert in_namespace == {
        ("", "pods", "list"),  # the one pod watch (and its list after the restart)
        ("", "pods", "watch"),
        ("", "pods", "create"),  # starts
        ("", "pods", "delete"),  # stops
        ("", "events", "list"),  # the one event watch
        ("", "events", "watch"),
        ("", "persistentvolumeclaims", "create"),  # alice's home at her first start, bob's at his
        ("", "persistentvolumeclaims", "delete"),  # bob's, after Kubernetes refused his pod
    }
    assert cluster_wide == {("", "nodes", "list")}  # the form's availability


# -- uninstall -------------------------------------------------------------------------------------


def test_uninstall_leaves_nothing(site: HelmSite) -> None:
    for name in ("alice", "bob"):
        for server in list(site.hub.user_model(name)["servers"]):
            site.hub.stop_server(name, server)
    site.hub.stop()
    site.helm.uninstall(RELEASE, timeout=60)

    def left() -> list[str]:
        found = []
        for kind in sorted({m["kind"] for m in site.manifests}):
            api_version = next(m["apiVersion"] for m in site.manifests if m["kind"] == kind)
            path = collection(api_version, kind)
            items = site.kube.get(f"{path}?labelSelector={RELEASE_LABELS}" if kind in CLUSTER_KINDS else path)
            for item in items["items"]:  # type: ignore[index]
                if kind in CLUSTER_KINDS and NAMESPACE not in item["metadata"]["name"]:
                    continue  # the same release name in another namespace
                if not charts(kind, item):
                    continue
                found.append(f"{kind} {item['metadata']['name']}")
        for path in ("/api/v1/namespaces/{ns}/pods", "/apis/apps/v1/namespaces/{ns}/replicasets"):
            items = site.kube.get(path.format(ns=NAMESPACE) + f"?labelSelector={RELEASE_LABELS}")
            found += [
                f"{i['kind'] if 'kind' in i else path.split('/')[-1]} {i['metadata']['name']}"
                f" ({i.get('status', {}).get('phase', '')}, deleting since {i['metadata'].get('deletionTimestamp')})"
                for i in items["items"]  # type: ignore[index]
            ]
        helm_secrets = site.kube.get(f"/api/v1/namespaces/{NAMESPACE}/secrets?labelSelector=owner=helm,name={RELEASE}")
        found += [f"Helm's Secret {s['metadata']['name']}" for s in helm_secrets["items"]]  # type: ignore[index]
        return found

    # The Deployments' pods and the hub's token Secret go with their owners, a moment after them (garbage
    # collector, token controller; a pod the kubelet was still setting up takes longest).
    try:
        site.kube.wait("the release's objects to go", lambda: not left(), 120)
    except AssertionError:
        raise AssertionError(f"left after uninstall: {left()}") from None


def charts(kind: str, item: dict[str, Any]) -> bool:
    """Whether an object in the namespace may be the release's: not the namespace's own default
    ServiceAccount and its token, nor the CA's ConfigMap (Kubernetes makes them with the namespace)."""
    metadata = item["metadata"]
    if kind == "ServiceAccount" and metadata["name"] == "default":
        return False
    if kind == "ConfigMap" and metadata["name"] == "kube-root-ca.crt":
        return False
    return not (
        kind == "Secret" and metadata.get("annotations", {}).get("kubernetes.io/service-account.name") == "default"
    )
