"""Pure builders for what the Kubernetes backend creates: a person's server pod and home volume claim.

Input -> the API's JSON shape, no I/O, so every field of a pod is tested without a cluster.
kubespawner's `make_pod` / `make_pvc` assemble the objects (sites know its pod shape, and its env
ordering and model conversion are well tested); what is ours is the policy on top: the person's
numeric ids and nothing more (no root, no privilege escalation, no capabilities, no service-account
token), requests equal to limits as in a Slurm allocation, and the wall time enforced by Kubernetes
itself through activeDeadlineSeconds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client import ApiClient
from kubespawner.objects import make_pod, make_pvc

from daas_core.identity import PosixIdentity

from .names import DNS_LABEL_MAX, is_label_value
from .profile import KubernetesRequest

MANAGED_BY = "app.kubernetes.io/managed-by"
DAAS_SELECTOR = {MANAGED_BY: "jupyterhub-daas"}
"""The labels every object the backend creates carries: what its watches select on."""
USER_LABEL = "daas.io/user"
SERVER_LABEL = "daas.io/server"
# Label values cannot hold every user name ('alice@example.org'); the exact names go into annotations.
USER_ANNOTATION = "daas.io/username"
SERVER_ANNOTATION = "daas.io/servername"

HASH_LENGTH = 10
POD_PREFIX = "daas-"
HOME_PREFIX = "daas-home-"

# A security context with nothing a person could use to become someone else or gain privileges.
_NO_PRIVILEGES = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


class _Serializer(ApiClient):
    """ApiClient's own model -> JSON conversion, without the HTTP session its constructor opens."""

    def __init__(self) -> None:
        pass


_SERIALIZER = _Serializer()


@dataclass(frozen=True)
class PodInputs:
    """Everything one server pod is built from; the backend gathers it, `build_pod` only assembles."""

    name: str
    namespace: str
    port: int
    command: list[str]  # the full argv the container runs (the image's entrypoint is replaced)
    env: dict[str, str]  # never a secret: the pod spec is readable through the API
    request: KubernetesRequest
    image: str
    identity: PosixIdentity
    labels: dict[str, str]
    annotations: dict[str, str]
    volumes: list[dict]  # API shape: data mounts, home, site extras
    volume_mounts: list[dict]
    node_cpu: float | None = None  # a matching node's allocatable, for a whole-node request
    node_memory_mb: int | None = None
    working_dir: str | None = None
    service_account: str | None = None  # None: the namespace's default (its token is never mounted)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:HASH_LENGTH]


def _dns_part(text: str) -> str:
    """Lower case, runs of anything but letters and digits as one '-', no '-' at the ends."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _hashed_dns_label(prefix: str, readable: str, *exact: str) -> str:
    """`<prefix><readable>-<hash of the exact names>`, cut to a DNS label: stable, and distinct per name."""
    room = DNS_LABEL_MAX - len(prefix) - 1 - HASH_LENGTH
    readable = readable[:room].rstrip("-")
    return f"{prefix}{readable}-{_digest(*exact)}" if readable else f"{prefix}{_digest(*exact)}"


def pod_name(username: str, server: str) -> str:
    """The server's pod name: readable where the names allow, a DNS-1123 label always, one per (user, server)."""
    readable = _dns_part(username) + ("-" + _dns_part(server) if server else "")
    return _hashed_dns_label(POD_PREFIX, readable.strip("-"), username, server)


def home_claim_name(username: str) -> str:
    """The person's home volume claim: one per person, the same for every server and session."""
    return _hashed_dns_label(HOME_PREFIX, _dns_part(username), username)


def label_slug(text: str) -> str:
    """`text` itself when it is a label value; else a readable cut of it plus a hash (so distinct names stay so)."""
    if is_label_value(text):
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    room = DNS_LABEL_MAX - 1 - HASH_LENGTH
    readable = readable[:room].rstrip("-_.")
    return f"{readable}-{_digest(text)}" if readable else _digest(text)


def owner_labels(username: str, server: str) -> dict[str, str]:
    """The labels of a person's server objects: the backend's selector plus who and which server."""
    return DAAS_SELECTOR | {USER_LABEL: label_slug(username), SERVER_LABEL: label_slug(server)}


def owner_annotations(username: str, server: str) -> dict[str, str]:
    """The exact user and server names, which labels may only hold as slugs."""
    return {USER_ANNOTATION: username, SERVER_ANNOTATION: server}


def _cpu_quantity(cores: float) -> str:
    """Cores as a Kubernetes quantity: '4', or millicores ('3920m') for a node's fractional allocatable."""
    millicores = round(cores * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _memory_quantity(mb: int) -> str:
    """MiB as a Kubernetes quantity people read: '4Gi', '1536Mi'."""
    return f"{mb // 1024}Gi" if mb % 1024 == 0 else f"{mb}Mi"


def _cpu_and_memory(inputs: PodInputs) -> tuple[float, str]:
    """The pod's cores and memory limits: the request's, or a whole node's allocatable."""
    request = inputs.request
    if request.whole_node:
        if inputs.node_cpu is None or inputs.node_memory_mb is None:
            raise ValueError(
                "a whole-node request needs the node's allocatable cpu and memory (node_cpu, node_memory_mb)"
            )
        return inputs.node_cpu, _memory_quantity(inputs.node_memory_mb)
    if request.cores is None or request.memory_mb is None:
        raise ValueError("a request that is not for a whole node needs cores and memory")
    return request.cores, _memory_quantity(request.memory_mb)


def build_pod(inputs: PodInputs) -> dict[str, Any]:
    """The server pod in API JSON (camelCase), ready to create in `inputs.namespace`."""
    request, identity = inputs.request, inputs.identity
    settings = request.kubernetes
    cpu, memory = _cpu_and_memory(inputs)
    pod = make_pod(
        name=inputs.name,
        cmd=None,
        port=inputs.port,
        image=inputs.image,
        image_pull_policy=settings.image_pull_policy,
        node_selector=settings.node_selector_for(request.feature) or None,
        uid=identity.uid,
        gid=identity.gid,
        fs_gid=identity.gid,
        supplemental_gids=list(identity.groups),
        allow_privilege_escalation=False,
        container_security_context=_NO_PRIVILEGES | {"capabilities": {"drop": ["ALL"]}},
        pod_security_context=_NO_PRIVILEGES | {"runAsUser": identity.uid, "runAsGroup": identity.gid},
        env=dict(inputs.env),
        working_dir=inputs.working_dir,
        volumes=list(inputs.volumes),
        volume_mounts=list(inputs.volume_mounts),
        labels=inputs.labels | DAAS_SELECTOR,
        annotations=inputs.annotations,
        # Requests equal to limits (ratio 1): the Guaranteed QoS class, a fixed share of the node like a Slurm
        # allocation. A whole node is never shared.
        cpu_guarantee=_cpu_quantity(cpu if request.whole_node else cpu * settings.cpu_request_ratio),
        cpu_limit=_cpu_quantity(cpu),
        mem_guarantee=memory,
        mem_limit=memory,
        # An extended resource is given in limits only; Kubernetes sets its request to the same number.
        extra_resource_limits={settings.gpu_resource: str(request.gpus)} if request.gpus else None,
        service_account=inputs.service_account,
        automount_service_account_token=False,
        tolerations=[toleration.as_api() for toleration in settings.tolerations] or None,
        priority_class_name=settings.priority_class,
        extra_container_config={"command": list(inputs.command)},
        extra_pod_config={
            "restartPolicy": "Never",  # a server that ended stays ended: the hub notices and reports why
            "activeDeadlineSeconds": request.walltime_seconds,
            "enableServiceLinks": False,  # no other services' addresses in the person's environment
        },
    )
    body: dict[str, Any] = _SERIALIZER.sanitize_for_serialization(pod)
    body["metadata"]["namespace"] = inputs.namespace
    return body


def build_home_pvc(
    name: str, namespace: str, storage_class: str | None, size: str, labels: dict[str, str]
) -> dict[str, Any]:
    """A person's home volume claim (ReadWriteOnce, kept across sessions); storage_class None: the cluster default."""
    claim = make_pvc(
        name=name,
        storage_class=storage_class,
        access_modes=["ReadWriteOnce"],
        selector=None,
        storage=size,
        labels=labels | DAAS_SELECTOR,
    )
    body: dict[str, Any] = _SERIALIZER.sanitize_for_serialization(claim)
    body["metadata"]["namespace"] = namespace
    return body
