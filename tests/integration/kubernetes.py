"""The Kubernetes test cluster (tests/cluster/kubernetes.sh) as the tests use it: its API, its audit log.

The hub under test talks to the apiserver with a service account's token and the Role the
tests grant it (`grant_hub`); the tests look with the admin's token. The audit log records
every request with its user, verb and resource: the tests count the hub's.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from .process import wait_for

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "cluster" / "kubernetes.sh"
DIR = Path(os.environ.get("DAAS_K8S_DIR", "/var/tmp/daas-k8s"))
API = "https://127.0.0.1:6443"
HOST_IP = "10.88.0.1"  # the node's bridge: pods reach the hub here
NODE = "node01"
IMAGE = "daas.local/notebook:1"
AUDIT_LOG = DIR / "log" / "audit.log"

# What the hub's Role grants, rule by rule, with the backend call that needs each (helm/ renders the same).
HUB_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "delete"]},
]
HUB_CLUSTER_RULES = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]


def cluster(*args: str) -> None:
    subprocess.run(["bash", str(SCRIPT), *args], check=True)


def admin_token() -> str:
    for line in (DIR / "tokens.csv").read_text().splitlines():
        token, user = line.split(",")[:2]
        if user == "daas-test-admin":
            return token
    raise RuntimeError("no admin token in the test cluster's tokens.csv")


class Kube:
    """A small synchronous client of the test apiserver (JSON in, JSON out)."""

    def __init__(self, token: str) -> None:
        self.http = httpx.Client(
            base_url=API,
            verify=ssl.create_default_context(cafile=DIR / "pki" / "ca.crt"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def get(self, path: str) -> dict[str, Any] | None:
        response = self.http.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def apply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create `body` in the collection at `path`, or replace the one there of that name."""
        response = self.http.post(path, json=body)
        if response.status_code == 409:
            current = self.get(f"{path}/{body['metadata']['name']}")
            assert current is not None
            body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
            response = self.http.put(f"{path}/{body['metadata']['name']}", json=body)
        response.raise_for_status()
        return response.json()

    def delete(self, path: str, **params: Any) -> None:
        response = self.http.delete(path, params=params)
        if response.status_code != 404:
            response.raise_for_status()

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/namespaces/{namespace}/pods")["items"]  # type: ignore[index]

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def claims(self, namespace: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")["items"]  # type: ignore[index]

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        return wait_for(check, timeout, what, interval=0.3)


def admin() -> Kube:
    return Kube(admin_token())


def grant_hub(
    kube: Kube,
    namespace: str,
    account: str = "daas-hub",
    rules: list[dict[str, Any]] = HUB_RULES,
    cluster_rules: list[dict[str, Any]] = HUB_CLUSTER_RULES,
) -> str:
    """A namespace, a service account with `rules` there (and `cluster_rules`, if any), and its token.

    The defaults are the DaaS hub's; a benchmark grants another spawner the rules its own docs ask for."""
    kube.apply("/api/v1/namespaces", {"metadata": {"name": namespace}})
    kube.apply(f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": account}})
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    kube.apply(f"{rbac}/namespaces/{namespace}/roles", {"metadata": {"name": account}, "rules": rules})
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    kube.apply(
        f"{rbac}/namespaces/{namespace}/rolebindings",
        {"metadata": {"name": account}, "roleRef": _role_ref("Role", account), "subjects": subject},
    )
    if cluster_rules:
        cluster_name = f"{account}-{namespace}"
        kube.apply(f"{rbac}/clusterroles", {"metadata": {"name": cluster_name}, "rules": cluster_rules})
        kube.apply(
            f"{rbac}/clusterrolebindings",
            {
                "metadata": {"name": cluster_name},
                "roleRef": _role_ref("ClusterRole", cluster_name),
                "subjects": subject,
            },
        )

    return kube.wait(f"a token for service account {account}", lambda: account_token(kube, namespace, account))


def account_token(kube: Kube, namespace: str, account: str) -> str | None:
    """A service account's token, once the token controller (v1.20) has written its Secret."""
    found = kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}") or {}
    for ref in found.get("secrets", []):
        secret = kube.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
        if secret and secret.get("data", {}).get("token"):
            return base64.b64decode(secret["data"]["token"]).decode()
    return None


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def write_kubeconfig(path: Path, token: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "test", "cluster": {"server": API, "certificate-authority": str(DIR / "pki/ca.crt")}}
                ],
                "users": [{"name": "hub", "user": {"token": token}}],
                "contexts": [{"name": "hub", "context": {"cluster": "test", "user": "hub"}}],
                "current-context": "hub",
            }
        )
    )
    path.chmod(0o600)
    return path


class Call(NamedTuple):
    """One request as the audit log recorded it: `code` is the answer's HTTP status, `authorized` whether
    RBAC allowed it (a 403 may also come from admission, e.g. a ResourceQuota, after RBAC said yes)."""

    verb: str
    api_group: str  # "" for the core API
    resource: str  # with its subresource: "pods/status"
    namespace: str
    name: str
    code: int
    authorized: bool


class Audit:
    """The apiserver's requests from one user, from a mark on: (verb, resource, name, subresource)."""

    def __init__(self, username: str) -> None:
        self.username = username
        self.offset = 0

    def mark(self) -> None:
        self.offset = AUDIT_LOG.stat().st_size

    def _events(self) -> Iterator[dict[str, Any]]:
        """This user's audit events, from the mark on."""
        with AUDIT_LOG.open("rb") as log:
            log.seek(self.offset)
            for line in log:
                event = json.loads(line)
                if event.get("user", {}).get("username") == self.username:
                    yield event

    def requests(self) -> list[tuple[str, str, str, str]]:
        found = []
        for event in self._events():
            if event.get("stage") != "ResponseComplete":
                continue
            ref = event.get("objectRef", {})
            found.append((event["verb"], ref.get("resource", ""), ref.get("name", ""), ref.get("subresource", "")))
        return found

    def source_ips(self) -> set[str]:
        """The addresses the apiserver saw this user's requests come from."""
        return {ip for event in self._events() for ip in event.get("sourceIPs", [])}

    def calls(self) -> list[Call]:
        """Every request once, with its answer's code: a watch still open counts from its start."""
        found: dict[str, Call] = {}
        for event in self._events():
            if event.get("stage") not in ("ResponseStarted", "ResponseComplete"):
                continue
            ref = event.get("objectRef", {})
            resource = "/".join(filter(None, (ref.get("resource", ""), ref.get("subresource", ""))))
            found[event["auditID"]] = Call(
                event["verb"],
                ref.get("apiGroup", ""),
                resource,
                ref.get("namespace", ""),
                ref.get("name", ""),
                event.get("responseStatus", {}).get("code", 0),
                event.get("annotations", {}).get("authorization.k8s.io/decision") == "allow",
            )
        return list(found.values())
