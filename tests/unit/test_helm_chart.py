"""The Helm chart (helm/jupyterhub-daas), rendered and checked offline with helm-python-sdk.

Lint; every manifest valid for Kubernetes 1.30 (kubernetes-validate, strict); the schema refuses wrong
types; the 1.20 render uses APIs 1.20 serves; the Role grants exactly what the Kubernetes backend
calls; the NetworkPolicies allow exactly the listed peers; no secret in a ConfigMap; generated secrets
kept when `lookup` finds them; the chart's jupyterhub_config.py configures the hub it describes.
The live half (install on the test apiserver, the hub spawning with the chart's RBAC) runs elsewhere.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from helm_python import _native
from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "jupyterhub-daas"
RELEASE, NAMESPACE = "daas", "jhub"
FULLNAME = "daas-jupyterhub-daas"


def site_values() -> dict[str, Any]:
    """ci/site-values.yaml with the repository's example site files, as `--set-file` would add them."""
    values = yaml.safe_load((CHART / "ci" / "site-values.yaml").read_text())
    values["siteFiles"] = {
        "profiles": (ROOT / "profiles" / "facility.yaml").read_text(),
        "data": (ROOT / "profiles" / "data.yaml").read_text(),
        "dask": (ROOT / "profiles" / "dask.yaml").read_text(),
    }
    return values


VALUE_SETS = {"default": dict, "site": site_values}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(
    chart: helm.Chart,
    values: dict[str, Any] | None = None,
    kube_version: str | None = None,
    api_versions: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The chart's manifests as objects.

    helm-python-sdk 0.2.2's `Chart.render` takes no Kubernetes version or API versions, while its
    library's render call does (`kube_version`, `api_versions`, as `helm template --kube-version
    --api-versions`); those renders go through that call. Offline, `lookup` finds nothing.
    """
    if kube_version is None and api_versions is None:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    else:
        options = {"name": RELEASE, "namespace": NAMESPACE, "kube_version": kube_version}
        if api_versions is not None:
            options["api_versions"] = api_versions
        rendered = _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(options))
        manifests = json.loads(rendered)
    return manifests_of(manifests)


def manifests_of(manifests: dict[str, str]) -> list[dict[str, Any]]:
    return [
        document
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def one(objects: list[dict[str, Any]], kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    [found] = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
    ]
    return found


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


# --- lint and validation -------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", ["v1.30.0", "v1.20.0"])
@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_lint_passes(value_set: str, kube_version: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[value_set](), strict=True, namespace=NAMESPACE, kube_version=kube_version)
    assert report["errors"] == []
    # Severity 1 is information ("icon is recommended"); warnings (2) and errors (3) fail the chart.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


EXPECTED_KINDS = {
    "default": {
        "ConfigMap": 1,
        "Secret": 1,
        "Deployment": 3,  # hub, proxy, daas-data
        "Service": 4,  # hub, proxy-public, proxy-api, daas-data
        "PersistentVolumeClaim": 1,
        "ServiceAccount": 1,
        "Role": 1,
        "RoleBinding": 1,
        "ClusterRole": 1,
        "ClusterRoleBinding": 1,
        "NetworkPolicy": 4,  # singleuser, hub, proxy, daas-data
    },
    "site": {
        "ConfigMap": 1,
        "Secret": 1,  # the OIDC client secret and the crypt key are the site's own Secrets
        "Deployment": 3,  # daas-dask runs on a submit host
        "Service": 4,
        "ServiceAccount": 1,
        "Role": 2,  # people's namespace and one proposal's
        "RoleBinding": 2,
        "ClusterRole": 1,
        "ClusterRoleBinding": 1,
        "NetworkPolicy": 5,  # singleuser in both namespaces, hub, proxy, daas-data
        "PodDisruptionBudget": 2,
    },
}


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_manifest_validates_for_kubernetes_1_30_strict(chart: helm.Chart, value_set: str) -> None:
    objects = render(chart, VALUE_SETS[value_set]())
    kinds: dict[str, int] = {}
    for manifest in objects:
        assert kubernetes_validate.validate(manifest, "1.30", strict=True) == "1.30"
        kinds[manifest["kind"]] = kinds.get(manifest["kind"], 0) + 1
    assert kinds == EXPECTED_KINDS[value_set]


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above can fail: strict schemas refuse a field Kubernetes does not know."""
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dataa": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(config_map, "1.30", strict=True)


WRONG_TYPES = [
    ({"proxy": {"service": {"port": "80"}}}, "/proxy/service/port"),
    ({"kubernetes": {"readNodes": "yes"}}, "/kubernetes/readNodes"),
    ({"slurm": {"rest": {"tokenLifetime": "600"}}}, "/slurm/rest/tokenLifetime"),
    ({"auth": {"adminUsers": "alice"}}, "/auth/adminUsers"),
    ({"hub": {"extraVolumes": {"name": "x"}}}, "/hub/extraVolumes"),
    ({"services": {"data": {"enabled": 1}}}, "/services/data/enabled"),
    ({"hub": {"db": {"type": "mysql"}}}, "/hub/db/type"),
    ({"auth": {"type": "github"}}, "/auth/type"),
    ({"hub": {"replicas": 2}}, "replicas"),  # an unknown key is a typo, not a setting
    ({"kubernetes": {"namespace": "Not_A_Name"}}, "/kubernetes/namespace"),
]


@pytest.mark.parametrize(("values", "where"), WRONG_TYPES)
def test_schema_refuses_a_wrong_value(chart: helm.Chart, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as refused:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert where in str(refused.value)


# --- Kubernetes 1.20 ------------------------------------------------------------------------------

# What a 1.20 apiserver serves of the kinds the chart uses (discovery lists group/version/kind).
APIS_ON_1_20 = {"v1", "apps/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1", "policy/v1beta1"}


def pdb_api_versions(objects: list[dict[str, Any]]) -> set[str]:
    return {o["apiVersion"] for o in of_kind(objects, "PodDisruptionBudget")}


@pytest.mark.parametrize(
    ("kube_version", "api_versions", "expected"),
    [
        ("v1.20.2", ["policy/v1beta1/PodDisruptionBudget"], "policy/v1beta1"),  # a live 1.20 cluster
        ("v1.30.0", ["policy/v1/PodDisruptionBudget"], "policy/v1"),  # a live 1.30 cluster
        ("v1.20.0", None, "policy/v1beta1"),  # offline: the version decides
        ("v1.30.0", None, "policy/v1"),
    ],
)
def test_pdb_api_follows_the_cluster(
    chart: helm.Chart, kube_version: str, api_versions: list[str] | None, expected: str
) -> None:
    assert pdb_api_versions(render(chart, site_values(), kube_version, api_versions)) == {expected}


def test_render_for_1_20_uses_only_apis_1_20_serves(chart: helm.Chart) -> None:
    """kubernetes-validate ships schemas from 1.25 on (none for 1.20, and none for policy/v1beta1,
    removed in 1.25): the 1.20 render is validated against the oldest it ships, and its
    PodDisruptionBudgets (policy/v1beta1 has the same spec fields as policy/v1) as policy/v1."""
    oldest = kubernetes_validate.utils.all_versions()[0]
    assert oldest.startswith("1.25")
    objects = render(chart, site_values(), "v1.20.2", ["policy/v1beta1/PodDisruptionBudget"])
    assert {o["apiVersion"] for o in objects} <= APIS_ON_1_20
    for manifest in objects:
        if manifest["apiVersion"] == "policy/v1beta1":
            manifest = {**manifest, "apiVersion": "policy/v1"}
        kubernetes_validate.validate(manifest, oldest, strict=True)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_port_names_its_protocol(chart: helm.Chart, value_set: str) -> None:
    """Helm v4 installs by server-side apply; a 1.20 apiserver refuses a Service port or container port
    without `protocol` (a key of those lists, defaulted only later), so the chart spells it out."""
    ports = []
    for manifest in render(chart, VALUE_SETS[value_set]()):
        if manifest["kind"] == "Service":
            ports += manifest["spec"]["ports"]
        if manifest["kind"] == "Deployment":
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                ports += container.get("ports", [])
    assert len(ports) >= 8
    assert [p for p in ports if p.get("protocol") != "TCP"] == []


# --- RBAC -----------------------------------------------------------------------------------------

# Exactly what the Kubernetes backend calls (templates/hub/rbac.yaml says which call needs which verb).
ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "delete"]},
]
NODE_RULES = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
ALL_NAMESPACES_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
]
HUB_ACCOUNT = {"kind": "ServiceAccount", "name": f"{FULLNAME}-hub", "namespace": NAMESPACE}


@pytest.mark.parametrize(
    ("value_set", "namespaces", "cluster_rules"),
    [
        ("default", [NAMESPACE], NODE_RULES),
        # pods in a namespace per proposal: the backend watches all namespaces (list + watch only)
        ("site", ["jhub-users", "proposal-20231234"], NODE_RULES + ALL_NAMESPACES_RULES),
    ],
)
def test_role_grants_exactly_the_backends_calls(
    chart: helm.Chart, value_set: str, namespaces: list[str], cluster_rules: list[dict[str, Any]]
) -> None:
    objects = render(chart, VALUE_SETS[value_set]())
    roles = of_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(namespaces)
    for role in roles:
        assert len(role["rules"]) == len(ROLE_RULES)
        for rule, expected in zip(role["rules"], ROLE_RULES, strict=True):
            assert rule == expected, f"{role['metadata']['namespace']}: {rule}"
    for binding in of_kind(objects, "RoleBinding"):
        assert binding["subjects"] == [HUB_ACCOUNT]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{FULLNAME}-hub",
        }
    [cluster_role] = of_kind(objects, "ClusterRole")
    assert cluster_role["rules"] == cluster_rules
    [cluster_binding] = of_kind(objects, "ClusterRoleBinding")
    assert cluster_binding["subjects"] == [HUB_ACCOUNT]
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    hub = one(objects, "Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]
    assert hub["serviceAccountName"] == HUB_ACCOUNT["name"]
    # Nothing else in the release may use the API: the other pods mount no token.
    for deployment in of_kind(objects, "Deployment"):
        if deployment is not one(objects, "Deployment", f"{FULLNAME}-hub"):
            assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_no_cluster_access_without_availability(chart: helm.Chart) -> None:
    objects = render(chart, {"kubernetes": {"readNodes": False}})
    assert of_kind(objects, "ClusterRole") == []
    assert of_kind(objects, "ClusterRoleBinding") == []


def test_more_namespaces_need_the_watch_over_all(chart: helm.Chart) -> None:
    """Roles alone in many namespaces would leave the hub's one watch without rights: refused."""
    with pytest.raises(helm.HelmRenderError, match="watchAllNamespaces"):
        render(chart, {"kubernetes": {"extraNamespaces": ["proposal-1"]}})


# --- NetworkPolicies ------------------------------------------------------------------------------


def pod_labels(objects: list[dict[str, Any]], deployment: str) -> dict[str, str]:
    return one(objects, "Deployment", f"{FULLNAME}-{deployment}")["spec"]["template"]["metadata"]["labels"]


def peer_names(objects: list[dict[str, Any]], peers: list[dict[str, Any]], people: dict[str, str]) -> list[str]:
    """Name each peer by the release pod it selects (its labels match the pod's), or 'people'."""
    names = []
    for peer in peers:
        wanted = peer["podSelector"]["matchLabels"]
        if wanted == people:
            names.append("people")
            continue
        [name] = [d for d in ("hub", "proxy", "data") if wanted.items() <= pod_labels(objects, d).items()]
        names.append(name)
    return names


PEOPLE = {"app.kubernetes.io/managed-by": "jupyterhub-daas"}  # the backend's DAAS_SELECTOR


@pytest.mark.parametrize(("value_set", "namespace"), [("default", NAMESPACE), ("site", "jhub-users")])
def test_people_reach_only_hub_proxy_services_and_dns(chart: helm.Chart, value_set: str, namespace: str) -> None:
    objects = render(chart, VALUE_SETS[value_set]())
    policy = one(objects, "NetworkPolicy", f"{FULLNAME}-singleuser", namespace)["spec"]
    assert policy["podSelector"] == {"matchLabels": PEOPLE}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert "ports" not in ingress
    assert peer_names(objects, ingress["from"], PEOPLE) == ["proxy", "hub"]
    release_rules, other_rules = policy["egress"][:3], policy["egress"][3:]
    egress = [
        (peer_names(objects, rule["to"], PEOPLE), [(p["port"], p["protocol"]) for p in rule["ports"]])
        for rule in release_rules
    ]
    assert egress == [(["hub"], [(8081, "TCP")]), (["proxy"], [(8000, "TCP")]), (["data"], [(10101, "TCP")])]
    dns = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    if value_set == "default":
        assert other_rules == [dns]  # port 53 anywhere, nothing else
    else:
        # the site's DNS peers, then its own rule (the Slurm nodes, for Dask offload)
        kube_system = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
        assert other_rules == [{**dns, "to": [kube_system]}, {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}]
        # pods in another namespace than the release's: each release peer names the release's namespace
        for rule in release_rules:
            assert rule["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}


def test_hub_takes_its_port_from_proxy_people_and_services(chart: helm.Chart) -> None:
    objects = render(chart)
    policy = one(objects, "NetworkPolicy", f"{FULLNAME}-hub")["spec"]
    assert policy["podSelector"]["matchLabels"] == pod_labels(objects, "hub")
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"port": 8081, "protocol": "TCP"}]
    assert peer_names(objects, rule["from"], PEOPLE) == ["proxy", "people", "data"]


def test_proxy_api_only_from_the_hub(chart: helm.Chart) -> None:
    objects = render(chart)
    policy = one(objects, "NetworkPolicy", f"{FULLNAME}-proxy")["spec"]
    assert policy["podSelector"]["matchLabels"] == pod_labels(objects, "proxy")
    public, api = policy["ingress"]
    assert public == {"ports": [{"port": 8000, "protocol": "TCP"}]}
    assert api["ports"] == [{"port": 8001, "protocol": "TCP"}]
    assert peer_names(objects, api["from"], PEOPLE) == ["hub"]
    container = one(objects, "Deployment", f"{FULLNAME}-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000, "api": 8001}


def test_service_takes_requests_from_proxy_and_people(chart: helm.Chart) -> None:
    objects = render(chart)
    policy = one(objects, "NetworkPolicy", f"{FULLNAME}-data")["spec"]
    assert policy["podSelector"]["matchLabels"] == pod_labels(objects, "data")
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"port": 10101, "protocol": "TCP"}]
    assert peer_names(objects, rule["from"], PEOPLE) == ["proxy", "people"]


def test_release_pods_are_not_people(chart: helm.Chart) -> None:
    """The people's policy must not select the hub, proxy or services (they are the chart's)."""
    objects = render(chart)
    for deployment in ("hub", "proxy", "data"):
        assert not PEOPLE.items() <= pod_labels(objects, deployment).items()


# --- secrets --------------------------------------------------------------------------------------


def secret_values(objects: list[dict[str, Any]]) -> set[str]:
    return {base64.b64decode(v).decode() for s in of_kind(objects, "Secret") for v in s["data"].values()}


def test_no_secret_in_a_config_map(chart: helm.Chart) -> None:
    values = {**site_values(), "auth": {**site_values()["auth"], "existingSecret": "", "clientSecret": "oidc-s3cret"}}
    objects = render(chart, values)
    secrets = secret_values(objects)
    assert "oidc-s3cret" in secrets
    assert len(secrets) == 5  # proxy token, cookie secret, daas-data's and daas-dask's tokens, OIDC secret
    for config_map in of_kind(objects, "ConfigMap"):
        text = json.dumps(config_map)
        assert [s for s in secrets if s in text] == []


def test_generated_secrets_are_new_without_a_cluster(chart: helm.Chart) -> None:
    """Offline `lookup` finds nothing: each render generates new values (and so no fixed default)."""
    first, second = (one(render(chart), "Secret", f"{FULLNAME}-secret")["data"] for _ in range(2))
    assert first.keys() == second.keys() == {"proxy-token", "cookie-secret", "crypt-key", "daas-data-token"}
    assert all(first[key] != second[key] for key in first)
    cookie = base64.b64decode(first["cookie-secret"]).decode()
    assert len(bytes.fromhex(cookie)) == 32  # JupyterHub reads JPY_COOKIE_SECRET and the crypt key as hex


class _SecretsApi(BaseHTTPRequestHandler):
    """The two reads `lookup` makes of an API server: v1's resource list, and one Secret."""

    secrets: dict[tuple[str, str], dict[str, Any]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["api", "v1"]:
            body: dict[str, Any] = {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "secrets",
                        "singularName": "secret",
                        "namespaced": True,
                        "kind": "Secret",
                        "verbs": ["get"],
                    }
                ],
            }
            return self._answer(200, body)
        if len(parts) == 6 and parts[4] == "secrets" and (parts[3], parts[5]) in self.secrets:
            return self._answer(200, self.secrets[parts[3], parts[5]])
        self._answer(
            404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        )

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_generated_secrets_are_kept_when_lookup_finds_them(chart: helm.Chart) -> None:
    """`Config.render` lets `lookup` read a live API server; a stand-in that holds the release's
    Secret shows the chart reuses what it finds (the real apiserver's turn is the install test)."""
    kept = {"proxy-token": "kept-proxy", "cookie-secret": "ab" * 32, "crypt-key": "cd" * 32}
    _SecretsApi.secrets = {
        (NAMESPACE, f"{FULLNAME}-secret"): {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{FULLNAME}-secret", "namespace": NAMESPACE},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in kept.items()},
        }
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretsApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with helm.Config(kube_apiserver=f"http://127.0.0.1:{server.server_port}", namespace=NAMESPACE) as config:
            renders = [config.render(chart, name=RELEASE, namespace=NAMESPACE) for _ in range(2)]
    finally:
        server.shutdown()
    for manifests in renders:
        data = one(manifests_of(manifests), "Secret", f"{FULLNAME}-secret")["data"]
        assert {key: base64.b64decode(data[key]).decode() for key in kept} == kept
    # The one it did not find (daas-data's token) is new each time.
    tokens = [one(manifests_of(m), "Secret", f"{FULLNAME}-secret")["data"]["daas-data-token"] for m in renders]
    assert tokens[0] != tokens[1]


def test_site_secrets_are_referenced_not_copied(chart: helm.Chart) -> None:
    objects = render(chart, site_values())
    hub = one(objects, "Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in hub["containers"][0]["env"]}
    assert env["JUPYTERHUB_CRYPT_KEY"] == {"name": "hub-crypt-key", "key": "key"}
    assert env["DAAS_OIDC_CLIENT_SECRET"] == {"name": "keycloak-client", "key": "secret"}
    assert env["DAAS_HUB_DB_URL"] == {"name": "hub-database", "key": "url"}
    assert "crypt-key" not in one(objects, "Secret", f"{FULLNAME}-secret")["data"]
    # The Slurm JWT key: mounted from the site's Secret into the hub pod only, readable by its owner only.
    [jwt] = [v for v in hub["volumes"] if v["name"] == "slurm-jwt"]
    assert jwt["secret"]["secretName"] == "slurm-jwt-key"
    assert jwt["secret"]["defaultMode"] == 0o400
    for deployment in of_kind(objects, "Deployment"):
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        names = {v.get("secret", {}).get("secretName") for v in volumes}
        assert ("slurm-jwt-key" in names) == (deployment["metadata"]["name"] == f"{FULLNAME}-hub")


# --- the hub's configuration ----------------------------------------------------------------------


def load_hub_config(tmp_path: Path, objects: list[dict[str, Any]], env: dict[str, str]) -> Config:
    """Run the chart's jupyterhub_config.py as JupyterHub would, over the rendered ConfigMap's files."""
    for name, content in one(objects, "ConfigMap", f"{FULLNAME}-hub")["data"].items():
        (tmp_path / name).write_text(content)
    loader = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return loader.load_config()


def test_hub_config_from_site_values(chart: helm.Chart, tmp_path: Path) -> None:
    objects = render(chart, site_values())
    env = {"DAAS_OIDC_CLIENT_SECRET": "oidc", "DAAS_SERVICE_TOKEN_DATA": "t-data", "DAAS_SERVICE_TOKEN_DASK": "t-dask"}
    c = load_hub_config(tmp_path, objects, env)
    assert c.JupyterHub.spawner_class == "daas"
    assert c.JupyterHub.authenticator_class == "daas-keycloak"
    assert c.KeycloakAuthenticator.issuer == "https://keycloak.example.org/realms/facility"
    assert c.KeycloakAuthenticator.client_id == "jupyterhub"
    assert c.KeycloakAuthenticator.client_secret == "oidc"
    assert c.KeycloakAuthenticator.oauth_callback_url == "https://jupyter.example.org/jupyter/hub/oauth_callback"
    assert c.KeycloakAuthenticator.account_claim == "uid"
    assert c.KeycloakAuthenticator.user_office.url.startswith("https://useroffice.example.org/")  # extraConfig
    assert c.KubernetesBackend.namespace == "jhub-users"
    assert c.KubernetesBackend.watch_all_namespaces is True
    assert c.SlurmBackend.transport == "rest"
    assert c.SlurmRest.url == "https://slurmrest.example.org:6820"
    assert c.SlurmRest.user == "jupyterhub"
    assert c.SlurmRest.token_source == "key"
    assert c.SlurmRest.jwt_key_file == "/etc/jupyterhub-daas/slurm/jwt_hs256.key"
    assert c.JupyterHub.base_url == "/jupyter/"
    # Outside a pod (no Service variables): the Services' DNS names.
    assert c.JupyterHub.hub_connect_url == f"http://{FULLNAME}-hub.{NAMESPACE}.svc:8081"
    assert c.ConfigurableHTTPProxy.api_url == f"http://{FULLNAME}-proxy-api.{NAMESPACE}.svc:8001"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.allow_named_servers is True  # hub.config
    assert sorted((s["name"], s["url"], s["api_token"]) for s in c.JupyterHub.services) == [
        ("daas-dask", "http://slurm-submit.example.org:10102", "t-dask"),
        ("daas-data", f"http://{FULLNAME}-data.{NAMESPACE}.svc:10101", "t-data"),
    ]
    assert {r["name"] for r in c.JupyterHub.load_roles} >= {"daas-data-service", "daas-dask-service"}
    assert [p.id for p in c.DaaSSpawner.profiles.profiles] == [
        p["id"] for p in yaml.safe_load((ROOT / "profiles" / "facility.yaml").read_text())["profiles"]
    ]
    assert c.UserAccounts.account_group == "facility-users"  # daas_config.py, shared with the services
    assert c.DataService.data_locations == "/etc/jupyterhub-daas/data.yaml"
    assert c.DataService.reader_memory == "2G"
    assert c.DaskService.limits_file == "/etc/jupyterhub-daas/dask.yaml"


def test_in_a_pod_the_hub_finds_the_services_by_the_variables_kubernetes_sets(
    chart: helm.Chart, tmp_path: Path
) -> None:
    """No cluster DNS needed: the hub, the proxy and the services reach each other at the Services' IPs that
    Kubernetes gives their pods (<NAME>_SERVICE_HOST/_PORT); a site's connectHost still wins for the hub."""
    objects = render(chart, site_values())
    env = {
        "DAAS_OIDC_CLIENT_SECRET": "oidc",
        "DAAS_SERVICE_TOKEN_DATA": "t-data",
        "DAAS_SERVICE_TOKEN_DASK": "t-dask",
        "DAAS_JUPYTERHUB_DAAS_HUB_SERVICE_HOST": "10.0.0.11",
        "DAAS_JUPYTERHUB_DAAS_HUB_SERVICE_PORT": "8081",
        "DAAS_JUPYTERHUB_DAAS_PROXY_API_SERVICE_HOST": "10.0.0.12",
        "DAAS_JUPYTERHUB_DAAS_PROXY_API_SERVICE_PORT": "8001",
        "DAAS_JUPYTERHUB_DAAS_DATA_SERVICE_HOST": "10.0.0.13",
        "DAAS_JUPYTERHUB_DAAS_DATA_SERVICE_PORT": "10101",
    }
    c = load_hub_config(tmp_path, objects, env)
    assert c.JupyterHub.hub_connect_url == "http://10.0.0.11:8081"
    assert c.ConfigurableHTTPProxy.api_url == "http://10.0.0.12:8001"
    assert {s["name"]: s["url"] for s in c.JupyterHub.services}["daas-data"] == "http://10.0.0.13:10101"
    # The proxy and the services name the hub by the same variables (Kubernetes expands $(VAR) in their specs).
    hub_address = "$(DAAS_JUPYTERHUB_DAAS_HUB_SERVICE_HOST):$(DAAS_JUPYTERHUB_DAAS_HUB_SERVICE_PORT)"
    proxy = one(objects, "Deployment", f"{FULLNAME}-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert f"--default-target=http://{hub_address}" in proxy["command"]
    assert f"--error-target=http://{hub_address}/jupyter/hub/error" in proxy["command"]
    data = one(objects, "Deployment", f"{FULLNAME}-data")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in data["env"]}[
        "JUPYTERHUB_API_URL"
    ] == f"http://{hub_address}/jupyter/hub/api"
    for name in (f"{FULLNAME}-hub", f"{FULLNAME}-proxy-api", f"{FULLNAME}-data"):
        one(objects, "Service", name)  # the names the variables come from

    site = site_values()
    site["hub"]["connectHost"] = "hub.example.org"
    (tmp_path / "site").mkdir()
    c = load_hub_config(tmp_path / "site", render(chart, site), env)
    assert c.JupyterHub.hub_connect_ip == "hub.example.org"
    assert "hub_connect_url" not in c.JupyterHub


def test_mount_paths_match_the_config(chart: helm.Chart) -> None:
    """Where the hub's config looks (chart.json, the JWT key) is where the Deployment mounts them."""
    objects = render(chart, site_values())
    container = one(objects, "Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["command"][:2] == ["jupyterhub", f"--config={mounts['config']}/jupyterhub_config.py"]
    chart_json = json.loads(one(objects, "ConfigMap", f"{FULLNAME}-hub")["data"]["chart.json"])
    assert chart_json["slurm"]["jwtKeyFile"] == f"{mounts['slurm-jwt']}/jwt_hs256.key"
    data = one(objects, "Deployment", f"{FULLNAME}-data")["spec"]["template"]["spec"]["containers"][0]
    assert data["command"] == ["daas-data", f"--config={mounts['config']}/daas_config.py"]
