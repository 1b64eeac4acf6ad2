"""The pod and home claim the Kubernetes backend creates, built without a cluster, field by field."""

from __future__ import annotations

import dataclasses
import re

import kubernetes_validate
import pytest

from daas_core.identity import PosixIdentity
from daas_core.mount_builders import kubernetes_volumes
from daas_core.mounts import DataLocations, Mount
from daas_spawner.backends.kubernetes.pods import (
    DAAS_SELECTOR,
    PodInputs,
    build_home_pvc,
    build_pod,
    home_claim_name,
    label_slug,
    owner_annotations,
    owner_labels,
    pod_name,
)
from daas_spawner.backends.kubernetes.profile import KubernetesProfile

from .test_kubernetes_profile import DELETE, changed, gpu_profile_raw

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
KUBERNETES_VERSION = "1.30"

ALICE = PosixIdentity(uid=41234, gid=4100, groups=(5001, 5002))
RAW = Mount(proposal="20231234", name="raw", source="/gpfs/raw/20231234", writable=False)
PROCESSED = Mount(proposal="20231234", name="processed", source="/gpfs/processed/20231234", writable=True)


def inputs_for(raw_profile: dict, options: dict, **changes) -> PodInputs:
    request = KubernetesProfile.model_validate(raw_profile).resolve_request(options)
    volumes, mounts = kubernetes_volumes(DataLocations(nfs_server="nfs.example.org"), [RAW, PROCESSED])
    inputs = PodInputs(
        name=pod_name("alice", ""),
        namespace="daas-20231234",
        port=8888,
        command=["/opt/daas/bin/daas-launch", "--port=8888"],
        env={"JUPYTERHUB_API_URL": "http://hub:8081/hub/api", "DAAS_PROPOSAL": "20231234"},
        request=request,
        image="registry.example.org/daas/lab:1.2",
        identity=ALICE,
        labels=owner_labels("alice", ""),
        annotations=owner_annotations("alice", ""),
        volumes=volumes,
        volume_mounts=mounts,
        working_dir="/home/alice",
    )
    return dataclasses.replace(inputs, **changes)


@pytest.fixture(scope="module")
def gpu_pod() -> dict:
    return build_pod(inputs_for(gpu_profile_raw(), {"cores": "medium", "memory": "8G", "walltime": "4:00:00"}))


def container(pod: dict) -> dict:
    (only,) = pod["spec"]["containers"]
    return only


def test_gpu_pod_resources(gpu_pod):
    resources = container(gpu_pod)["resources"]
    assert resources["requests"] == {"cpu": "4", "memory": "8Gi"}
    assert resources["limits"] == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"}


def test_gpu_pod_runs_as_the_person_without_privileges(gpu_pod):
    pod_context = gpu_pod["spec"]["securityContext"]
    assert pod_context == {
        "runAsUser": 41234,
        "runAsGroup": 4100,
        "fsGroup": 4100,
        "supplementalGroups": [5001, 5002],
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(gpu_pod)["securityContext"] == {
        "runAsUser": 41234,
        "runAsGroup": 4100,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert gpu_pod["spec"]["automountServiceAccountToken"] is False
    assert gpu_pod["spec"]["enableServiceLinks"] is False
    assert "serviceAccountName" not in gpu_pod["spec"]


def test_gpu_pod_spec(gpu_pod):
    spec = gpu_pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 4 * 3600
    assert spec["nodeSelector"] == {"daas.io/pool": "gpu", "kubernetes.io/arch": "amd64"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["priorityClassName"] == "daas-interactive"
    main = container(gpu_pod)
    assert main["image"] == "registry.example.org/daas/lab:1.2"
    assert main["command"] == ["/opt/daas/bin/daas-launch", "--port=8888"]
    assert "args" not in main
    assert main["ports"] == [{"name": "notebook-port", "containerPort": 8888}]
    assert "readinessProbe" not in main  # JupyterHub waits for the server itself; a probe only delays the pod's status
    assert main["workingDir"] == "/home/alice"
    assert {item["name"]: item["value"] for item in main["env"]} == {
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "DAAS_PROPOSAL": "20231234",
    }
    assert gpu_pod["metadata"]["namespace"] == "daas-20231234"
    assert gpu_pod["metadata"]["name"] == pod_name("alice", "")
    assert gpu_pod["metadata"]["labels"] == DAAS_SELECTOR | {"daas.io/user": "alice", "daas.io/server": ""}
    assert gpu_pod["metadata"]["annotations"] == {"daas.io/username": "alice", "daas.io/servername": ""}


def test_raw_data_is_mounted_read_only_processed_writable(gpu_pod):
    volumes = {volume["name"]: volume for volume in gpu_pod["spec"]["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container(gpu_pod)["volumeMounts"]}
    raw, processed = mounts["/data/proposals/20231234/raw"], mounts["/data/proposals/20231234/processed"]
    assert raw["readOnly"] is True and processed["readOnly"] is False
    assert volumes[raw["name"]]["nfs"] == {"server": "nfs.example.org", "path": "/gpfs/raw/20231234", "readOnly": True}
    assert volumes[processed["name"]]["nfs"]["readOnly"] is False


def test_the_pod_validates_against_the_api_schema(gpu_pod):
    kubernetes_validate.validate(gpu_pod, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    "feature, arch",
    [("power9", "ppc64le"), ("x86_64", "amd64")],
)
def test_architecture_feature_selects_nodes(feature, arch):
    pod = build_pod(inputs_for(gpu_profile_raw(), {"feature": feature}))
    assert pod["spec"]["nodeSelector"]["kubernetes.io/arch"] == arch


def test_a_cpu_pod_has_no_gpu_and_no_node_selector():
    raw = changed("resources.gpus", DELETE)
    raw = changed("resources.features", [], raw)
    raw = changed("kubernetes.node_selector", {}, raw)
    pod = build_pod(inputs_for(raw, {"memory": "1536M"}))
    assert container(pod)["resources"]["limits"] == {"cpu": "1", "memory": "1536Mi"}
    assert "nodeSelector" not in pod["spec"]


def test_no_gpu_asked_means_no_gpu_limit():
    pod = build_pod(inputs_for(gpu_profile_raw(), {"gpus": "0"}))
    assert "nvidia.com/gpu" not in container(pod)["resources"]["limits"]


@pytest.mark.parametrize("options, request_cpu, limit_cpu", [({}, "500m", "1"), ({"cores": "whole_node"}, "8", "8")])
def test_a_cpu_request_ratio_lowers_the_request_not_the_limit(options, request_cpu, limit_cpu):
    """Burstable pods share a node's cores; a whole node stays whole (nothing else fits beside it)."""
    raw = changed("kubernetes.cpu_request_ratio", 0.5)
    pod = build_pod(inputs_for(raw, options, node_cpu=8.0, node_memory_mb=32768))
    resources = container(pod)["resources"]
    assert resources["requests"]["cpu"] == request_cpu
    assert resources["limits"]["cpu"] == limit_cpu


@pytest.mark.parametrize("ratio", [0, -0.5, 1.5])
def test_a_cpu_request_ratio_outside_0_to_1_is_refused(ratio):
    with pytest.raises(ValueError, match="cpu_request_ratio"):
        KubernetesProfile.model_validate(changed("kubernetes.cpu_request_ratio", ratio))


def test_a_mig_profile_is_the_gpu_resource():
    pod = build_pod(inputs_for(changed("kubernetes.gpu_resource", "nvidia.com/mig-1g.5gb"), {"gpus": "2"}))
    assert container(pod)["resources"]["limits"]["nvidia.com/mig-1g.5gb"] == "2"
    assert "nvidia.com/gpu" not in container(pod)["resources"]["limits"]


@pytest.mark.parametrize(
    "node_cpu, node_memory_mb, cpu, memory",
    [(16.0, 63000, "16", "63000Mi"), (3.92, 15360, "3920m", "15Gi")],
)
def test_whole_node_takes_the_node_allocatable(node_cpu, node_memory_mb, cpu, memory):
    inputs = inputs_for(gpu_profile_raw(), {"cores": "whole_node"}, node_cpu=node_cpu, node_memory_mb=node_memory_mb)
    resources = container(build_pod(inputs))["resources"]
    assert resources["requests"] == {"cpu": cpu, "memory": memory}
    assert resources["limits"] == {"cpu": cpu, "memory": memory, "nvidia.com/gpu": "1"}


@pytest.mark.parametrize("node", [{}, {"node_cpu": 8.0}, {"node_memory_mb": 4096}])
def test_whole_node_without_the_node_allocatable_is_refused(node):
    with pytest.raises(ValueError, match="whole-node request needs the node's allocatable"):
        build_pod(inputs_for(gpu_profile_raw(), {"cores": "whole_node"}, **node))


def test_pull_policy_and_no_tolerations():
    raw = changed("kubernetes.tolerations", [], changed("kubernetes.image_pull_policy", "Never"))
    pod = build_pod(inputs_for(raw, {}))
    assert container(pod)["imagePullPolicy"] == "Never"
    assert "tolerations" not in pod["spec"]


def test_labels_always_carry_the_selector():
    pod = build_pod(inputs_for(gpu_profile_raw(), {}, labels={"site": "x"}))
    assert pod["metadata"]["labels"] == {"site": "x"} | DAAS_SELECTOR


@pytest.mark.parametrize(
    "uid, gid, groups",
    [(0, 100, ()), (1000, 0, ()), (1000, 100, (0,)), (-1, 100, ()), (1000, 100, (True,)), ("1000", 100, ())],
)
def test_root_or_bad_ids_are_refused(uid, gid, groups):
    with pytest.raises(ValueError, match="never root"):
        PosixIdentity(uid=uid, gid=gid, groups=groups)


ODD_NAMES = [
    ("alice", ""),
    ("alice", "gpu"),
    ("Alice.Smith@x", ""),
    ("alice.smith-x", ""),
    ("alice_smith@x", ""),
    ("ALICE", ""),
    ("alice-gpu", ""),
    ("a" * 200, ""),
    ("a" * 200 + "b", ""),
    ("a" * 200, "s" * 200),
    ("@@@", ""),
    ("é", "ü"),
    ("-alice-", "-"),
]


@pytest.mark.parametrize("username, server", ODD_NAMES)
def test_pod_name_is_a_dns_label(username, server):
    name = pod_name(username, server)
    assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name
    assert name == pod_name(username, server)


def test_pod_names_are_distinct_and_readable():
    names = [pod_name(username, server) for username, server in ODD_NAMES]
    assert len(set(names)) == len(names)
    assert pod_name("Alice.Smith@x", "").startswith("daas-alice-smith-x-")
    assert pod_name("alice", "gpu").startswith("daas-alice-gpu-")


@pytest.mark.parametrize("username, server", ODD_NAMES)
def test_owner_labels_are_label_values(username, server):
    labels = owner_labels(username, server)
    assert all(len(value) <= 63 and LABEL_VALUE.fullmatch(value) for value in labels.values()), labels
    assert owner_annotations(username, server) == {"daas.io/username": username, "daas.io/servername": server}


def test_label_slugs_keep_valid_names_and_tell_odd_ones_apart():
    assert label_slug("alice") == "alice"
    assert label_slug("Alice.Smith") == "Alice.Smith"
    assert label_slug("") == ""
    slugs = {label_slug(name) for name, _ in ODD_NAMES}
    assert len(slugs) == len({name for name, _ in ODD_NAMES})
    assert label_slug("Alice.Smith@x").startswith("Alice.Smith-x-")


def test_home_claim_name_is_per_person():
    assert home_claim_name("alice") == home_claim_name("alice")
    assert home_claim_name("alice") != home_claim_name("Alice")
    assert DNS_LABEL.fullmatch(home_claim_name("Alice.Smith@x" * 20))
    assert len(home_claim_name("a" * 300)) <= 63


@pytest.mark.parametrize("storage_class", ["fast-ssd", None])
def test_home_claim_shape(storage_class):
    claim = build_home_pvc(
        home_claim_name("alice"), "daas-users", storage_class, "10Gi", labels=owner_labels("alice", "")
    )
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["name"] == home_claim_name("alice")
    assert claim["metadata"]["namespace"] == "daas-users"
    assert claim["metadata"]["labels"] == owner_labels("alice", "")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "10Gi"}}
    assert claim["spec"].get("storageClassName") == storage_class
    kubernetes_validate.validate(claim, KUBERNETES_VERSION, strict=True)
