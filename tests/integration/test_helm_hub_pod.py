"""The chart's own hub and proxy in pods on the live test cluster (Kubernetes 1.20, tests/cluster/kubernetes.sh).

`kubernetes.sh hub-image` builds the hub image without a registry (docker/hub/install.sh in an mmdebstrap
rootfs, the Dockerfile's user and command, imported into containerd) and helm-python-sdk installs
helm/jupyterhub-daas with it: ci/site-values.yaml with the Secrets it names made as a site makes them
(database URL, crypt key, OIDC client secret), the suite's real OIDC provider as issuer, people's pods in
the release's namespace, the proxy's NodePort on the node's address. The cluster has kube-proxy and no
cluster DNS: the pods find each other's Services by the variables Kubernetes gives them.

What runs is the chart's: the hub pod runs the image as uid 900 on a read-only root filesystem, loads the
ConfigMap and Secrets, sets its routes in the proxy through the proxy-api Service and is routed to through
its own Service, and calls the apiserver from its pod through the `kubernetes` Service with its
ServiceAccount's token. A person logs in through the provider at the proxy's NodePort, takes a token,
starts a Kubernetes profile with the REST API through the proxy (her pod's uid is her login's), her server
answers through the proxy, and stop removes her pod.

NetworkPolicies are installed but the bridge CNI does not enforce them: nothing here tests their effect.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml

from .conftest import public_tempdir
from .kube_site import home_volumes, profile, remove_release, venv_volume
from .kubernetes import DIR, HOST_IP, REPO, SCRIPT, Audit, admin, cluster
from .oidc import OidcProvider, complete_login
from .oidc_site import ACCOUNTS, CLAIMS, PASSWORD

CHART = REPO / "helm" / "jupyterhub-daas"
NAMESPACE = "daas-hubpod"
RELEASE = "daas"
FULLNAME = f"{RELEASE}-jupyterhub-daas"
HUB_ACCOUNT = f"{FULLNAME}-hub"
HUB_USER = f"system:serviceaccount:{NAMESPACE}:{HUB_ACCOUNT}"
HOME_CLASS = "daas-hubpod-home"  # this module's volumes only
VOLUMES = 2
CPU = "k8s-cpu"
NODE_PORT = 30080  # proxy-public's, on the node's address (kube-proxy serves NodePorts on 10.88.0.1 only)
PUBLIC = f"http://{HOST_IP}:{NODE_PORT}"
HUB_URL = f"{PUBLIC}/jupyter"  # ci/site-values.yaml's baseUrl
CLIENT_ID = "jupyterhub"  # ci/site-values.yaml's auth.clientId
CONTAINERD = "/run/daas-containerd/containerd.sock"
DATABASE = "site-database.sqlite"  # the site's database URL (its Secret) names it; the chart's default does not
PEOPLES_PODS = "app.kubernetes.io/managed-by=jupyterhub-daas"


def hub_image() -> str:
    """This checkout's hub image, built and imported unless containerd has it already."""
    done = subprocess.run(["bash", str(SCRIPT), "hub-image", str(REPO)], check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout.split()[-1]


def values(image: str, issuer: str) -> dict[str, Any]:
    """The facility's values (ci/site-values.yaml) on the test cluster: its Secrets and login kept, the
    OIDC provider of the suite as issuer, no user office (the claims give proposals), ids from the login
    (the hub pod has no people's accounts), no Slurm, no services, pods and homes as the test cluster has them."""
    site = yaml.safe_load((CHART / "ci" / "site-values.yaml").read_text())
    repository, tag = image.rsplit(":", 1)
    site["image"] = {"repository": repository, "tag": tag, "pullPolicy": "Never"}
    hub = site["hub"]
    hub["publicUrl"] = PUBLIC
    hub["extraConfig"] = {}
    hub["extraVolumes"], hub["extraVolumeMounts"] = [], []
    venv, venv_mount = venv_volume()
    hub["config"]["KubernetesBackend"] = {
        "identity_source": "auth_state",
        "home_storage_class": HOME_CLASS,
        "home_size": "1Gi",
        "extra_volumes": [venv],
        "extra_volume_mounts": [venv_mount],
    }
    site["auth"]["issuer"] = issuer
    site["auth"]["config"].update(
        scope=["openid", "profile", "email", "groups"],
        uid_claim="uidNumber",
        gid_claim="gidNumber",
        groups_claim="gidNumbers",
    )
    site["kubernetes"] = {"namespace": "", "extraNamespaces": [], "watchAllNamespaces": False, "readNodes": True}
    site["slurm"]["enabled"] = False
    site["services"]["data"]["enabled"] = site["services"]["dask"]["enabled"] = False
    site["proxy"]["service"]["nodePort"] = NODE_PORT  # a LoadBalancer without a load balancer: its NodePort
    site["siteFiles"] = {"profiles": {"default_profile": CPU, "profiles": [profile(CPU)]}}
    return site


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def container_logs(pod: dict[str, Any]) -> str:
    """What the pod's containers wrote (the kubelet's files on this node; the apiserver cannot reach them)."""
    metadata = pod["metadata"]
    found = sorted(Path("/var/log/pods").glob(f"{metadata['namespace']}_{metadata['name']}_*/*/*.log"))
    return "\n".join(f"== {path}\n{path.read_text()[-6000:]}" for path in found)


def container_pid(pod: dict[str, Any]) -> int:
    """The host pid of the pod's first container (containerd's task)."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    tasks = subprocess.run(
        ["ctr", "--address", CONTAINERD, "-n", "k8s.io", "tasks", "ls"], check=True, capture_output=True, text=True
    ).stdout
    [pid] = [line.split()[1] for line in tasks.splitlines() if line.startswith(container_id)]
    return int(pid)


class HubPodSite:
    """The OIDC provider on the node's address, the site's Secrets, and the release with the built image."""

    def __init__(self) -> None:
        cluster("start")
        self.kube = admin()
        self.helm = helm.Config(kubeconfig_path=DIR / "admin.kubeconfig", namespace=NAMESPACE)
        self.remove_leftovers()
        started = time.monotonic()
        self.image = hub_image()
        self.image_seconds = time.monotonic() - started
        self.workdir = public_tempdir("daas-hubpod-")
        self.client_secret = secrets.token_hex(16)
        self.provider = OidcProvider(
            self.workdir / "oidc",
            ACCOUNTS,
            clients=[
                {
                    "client_id": CLIENT_ID,
                    "client_secret": self.client_secret,
                    "redirect_uris": [f"{HUB_URL}/hub/oauth_callback"],
                }
            ],
            host=HOST_IP,
        ).start()
        self.http = httpx.Client(timeout=30)
        try:
            self.install()
        except BaseException:
            self.provider.stop()  # the release stays for the next run's remove_leftovers (and a look at it)
            raise

    def install(self) -> None:
        """The site's Secrets and home volumes, the release, and its hub and proxy pods up."""
        self.make_site_secrets()
        self.volumes = home_volumes(self.kube, VOLUMES, HOME_CLASS, prefix=HOME_CLASS, directory=HOME_CLASS)
        self.audit = Audit(HUB_USER)
        self.audit.mark()
        self.release = self.helm.install(
            CHART, RELEASE, values(self.image, self.provider.issuer), namespace=NAMESPACE, timeout=120
        )
        self.hub_pod = self.wait_for_pod("hub")
        self.proxy_pod = self.wait_for_pod("proxy")
        # A Service sends to a pod once kube-proxy has seen it Ready (its endpoints), a moment after the pod is.
        self.kube.wait("the hub at the proxy's NodePort", lambda: self.answers(f"{HUB_URL}/hub/api/"), 60)

    def remove_leftovers(self) -> None:
        """What an earlier run that did not finish left: its release, namespace and volumes."""
        remove_release(self.helm, self.kube, RELEASE, NAMESPACE, [f"{HOME_CLASS}-{i}" for i in range(VOLUMES)])

    def make_site_secrets(self) -> None:
        """The Secrets ci/site-values.yaml names, which a site makes before it installs."""
        self.kube.apply("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        for name, data in {
            "hub-database": {"url": f"sqlite:////srv/jupyterhub/{DATABASE}"},
            "hub-crypt-key": {"key": secrets.token_hex(32)},
            "keycloak-client": {"secret": self.client_secret},
        }.items():
            self.kube.apply(f"/api/v1/namespaces/{NAMESPACE}/secrets", {"metadata": {"name": name}, "stringData": data})

    def answers(self, url: str) -> bool:
        try:
            return self.http.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    def component_pods(self, component: str) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        return self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")["items"]  # type: ignore[index]

    def wait_for_pod(self, component: str, timeout: float = 180) -> dict[str, Any]:
        try:
            return self.kube.wait(
                f"the {component} pod to be Ready",
                lambda: next((p for p in self.component_pods(component) if ready(p)), None),
                timeout,
            )
        except AssertionError:
            pods = self.component_pods(component)
            raise AssertionError(
                f"{component}: {[p['status'] for p in pods]}\n" + "\n".join(container_logs(p) for p in pods)
            ) from None

    def service(self, name: str) -> dict[str, Any]:
        found = self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/{name}")
        assert found is not None, f"no Service {name}"
        return found

    def secret(self, key: str) -> str:
        found = self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{FULLNAME}-secret")
        assert found is not None
        return base64.b64decode(found["data"][key]).decode()

    def peoples_pods(self) -> list[dict[str, Any]]:
        return self.kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={PEOPLES_PODS}")["items"]  # type: ignore[index]

    def log_in(self, login: str) -> httpx.Client:
        """A browser that logged in as `login` at the provider, coming in at the proxy's NodePort."""
        browser = httpx.Client(timeout=30)
        response = browser.get(f"{HUB_URL}/hub/oauth_login", follow_redirects=False)
        response = complete_login(browser, response, login, PASSWORD)
        assert response.status_code == 200, f"{response.url}: {response.text[:2000]}\n{self.hub_logs()}"
        assert response.url.host == HOST_IP and response.url.port == NODE_PORT, response.url
        return browser

    def hub_logs(self) -> str:
        return container_logs(self.hub_pod)

    def close(self) -> None:
        self.http.close()
        self.helm.uninstall(RELEASE, ignore_not_found=True, timeout=60)
        self.kube.delete(f"/api/v1/namespaces/{NAMESPACE}")  # ours: the site's Secrets and the homes go with it
        for name in self.volumes:
            self.kube.delete(f"/api/v1/persistentvolumes/{name}")
        self.kube.delete(f"/apis/storage.k8s.io/v1/storageclasses/{HOME_CLASS}")
        self.provider.stop()
        self.helm.close()


@pytest.fixture(scope="module")
def site() -> Iterator[HubPodSite]:
    site = HubPodSite()
    print(f"hub image {site.image}: {site.image_seconds:.0f} s to build or find")
    yield site
    site.close()


def test_the_hub_and_the_proxy_run_the_built_image_as_the_chart_says(site: HubPodSite) -> None:
    for pod in (site.hub_pod, site.proxy_pod):
        [status] = pod["status"]["containerStatuses"]
        assert status["image"].endswith(site.image) and status["ready"], status
    # What runc made of the hub's securityContext, seen from the node: uid and gid 900, / mounted read-only.
    pid = container_pid(site.hub_pod)
    ids = {line.split(":")[0]: line.split()[1:] for line in Path(f"/proc/{pid}/status").read_text().splitlines()}
    assert ids["Uid"] == ["900"] * 4 and ids["Gid"] == ["900"] * 4, (ids["Uid"], ids["Gid"])
    [root] = [
        line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines() if line.split()[4] == "/"
    ]
    assert "ro" in root[5].split(","), root
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--config=/etc/jupyterhub-daas/jupyterhub_config.py" in cmdline
    # The database is where the site's Secret says, in the pod's writable state volume (on this node's disk).
    volumes = DIR / "kubelet" / "root" / "pods" / site.hub_pod["metadata"]["uid"] / "volumes"
    assert [path.name for path in (volumes / "kubernetes.io~empty-dir" / "state").glob("*.sqlite")] == [DATABASE]


def test_the_hub_reaches_the_proxy_and_is_reached_through_their_services(site: HubPodSite) -> None:
    hub_service = site.service(f"{FULLNAME}-hub")["spec"]["clusterIP"]
    proxy_api = site.service(f"{FULLNAME}-proxy-api")["spec"]["clusterIP"]
    # The proxy's routing table, asked at the proxy-api Service with the chart's generated token: the hub put
    # its route there (its own API calls went to that Service), pointing at the hub Service.
    routes = site.http.get(
        f"http://{proxy_api}:8001/api/routes", headers={"Authorization": f"token {site.secret('proxy-token')}"}
    )
    assert routes.status_code == 200, routes.text
    hub_routes = [route for route in routes.json().values() if route.get("hub")]
    assert [route["target"] for route in hub_routes] == [f"http://{hub_service}:8081"], routes.json()
    # People reach the hub through proxy-public's NodePort, the proxy, the hub Service.
    answer = site.http.get(f"{HUB_URL}/hub/api/")
    assert answer.status_code == 200 and "version" in answer.json(), answer.text


def test_a_person_logs_in_starts_a_kubernetes_profile_through_the_proxy_and_stops_it(site: HubPodSite) -> None:
    browser = site.log_in("alice")
    browser.get(f"{HUB_URL}/hub/home")  # sets the _xsrf cookie a page's own API calls carry
    xsrf = next(cookie.value for cookie in browser.cookies.jar if cookie.name == "_xsrf")
    response = browser.post(
        f"{HUB_URL}/hub/api/users/alice/tokens",
        json={"note": "test_helm_hub_pod", "expires_in": 900},
        headers={"X-XSRFToken": xsrf},
    )
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    # A stop answers when the pod is gone or after JupyterHub's slow_stop_timeout (10 s): longer than httpx's 5 s.
    api = httpx.Client(base_url=f"{HUB_URL}/hub/api", headers={"Authorization": f"token {token}"}, timeout=60)
    me = api.get("/user").json()
    assert me["name"] == "alice"
    assert {"proposal-20231234", "proposal-20220001"} <= set(me["groups"])  # from the provider's groups claim

    response = api.post("/users/alice/server", json={"profile": CPU})
    assert response.status_code in (201, 202), response.text

    def server_ready() -> bool:
        model = api.get("/users/alice").json()["servers"].get("")
        assert model is not None, f"alice's server is gone:\n{site.hub_logs()}"
        return model["ready"]

    try:
        site.kube.wait("alice's server", server_ready, 180)
    except AssertionError:
        raise AssertionError(site.hub_logs()) from None
    [pod] = site.peoples_pods()
    assert ready(pod)
    claims = CLAIMS["alice"]
    security = pod["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (int(claims["uidNumber"]), int(claims["gidNumber"]))
    # Her server answers through the proxy (the hub added her route; the server checks the token with the hub
    # at the hub Service's address).
    status = api.get(f"{HUB_URL}/user/alice/api/status")
    assert status.status_code == 200, status.text

    response = api.delete("/users/alice/server")
    assert response.status_code in (202, 204), response.text
    site.kube.wait("alice's server to stop", lambda: api.get("/users/alice").json()["servers"] == {}, 90)
    site.kube.wait("alice's pod to go", lambda: site.peoples_pods() == [], 60)
    api.close()
    browser.close()


def test_the_hubs_calls_to_the_apiserver_came_from_its_pod_as_its_service_account(site: HubPodSite) -> None:
    """After the start and stop above: every request of the chart's ServiceAccount came from the hub pod's
    address, through the `kubernetes` Service (10.0.0.1:443, kube-proxy to the apiserver at 10.88.0.1:6443),
    with the token Kubernetes mounted into the pod."""
    calls = site.audit.source_ips()
    assert calls == {site.hub_pod["status"]["podIP"]}, calls
