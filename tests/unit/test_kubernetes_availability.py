"""Kubernetes quantities, a pod's requests, and per node pool free CPU, memory and GPUs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from daas_spawner.backends.kubernetes.availability import pool_availability
from daas_spawner.backends.kubernetes.resources import cores, memory_mib, parse_quantity, pod_requests

POOL = "daas.io/pool"
GPU = "nvidia.com/gpu"


@pytest.mark.parametrize(
    "text, value",
    [
        ("2", Decimal(2)),
        ("3900m", Decimal("3.9")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        ("16Gi", Decimal(16 * 1024**3)),
        ("16423892Ki", Decimal(16423892 * 1024)),
        ("1.5Gi", Decimal(int(1.5 * 1024**3))),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),  # an exponent, not exa
        ("2E", Decimal(2 * 10**18)),  # exa
        ("5e-3", Decimal("0.005")),
        ("128M", Decimal(128 * 10**6)),
        ("1k", Decimal(1000)),
        (4, Decimal(4)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1 Gi", "1GB", "1gi", "1.2.3", "-", "1e", True, None])
def test_parse_quantity_refuses(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize(
    "convert, text, value",
    [
        (cores, "3900m", 3.9),
        (cores, "2", 2.0),
        (cores, "1500u", 0.002),
        (memory_mib, "16423892Ki", 16038),
        (memory_mib, "8Gi", 8192),
        (memory_mib, "1G", 953),
        (memory_mib, "1e9", 953),
    ],
)
def test_conversions(convert, text, value):
    assert convert(text) == value


def container(requests=None, limits=None):
    resources = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": "c", "resources": resources}


def test_pod_requests_sum_containers_and_default_to_limits():
    pod = {
        "spec": {
            "containers": [
                container({"cpu": "500m"}, {"cpu": "1", "memory": "1Gi"}),  # memory: its limit
                container({"cpu": "1", "memory": "512Mi"}, {GPU: "1"}),
                container(),
            ],
            "initContainers": [container({"cpu": "2", "memory": "64Mi"})],  # more cpu than the rest: it counts
            "overhead": {"memory": "10Mi"},
        }
    }
    assert pod_requests(pod) == {
        "cpu": Decimal(2),
        "memory": Decimal((1024 + 512 + 10) * 1024**2),
        GPU: Decimal(1),
    }


def node(name, pool=None, cpu="4", memory="16Gi", gpus=None, ready=True, unschedulable=False):
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus is not None:
        allocatable[GPU] = gpus
    return {
        "metadata": {"name": name, "labels": {POOL: pool} if pool else {"kubernetes.io/arch": "amd64"}},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "allocatable": allocatable,
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if ready else "Unknown"},
            ],
        },
    }


def pod(node_name, phase="Running", cpu="1", memory="2Gi", gpus=None):
    limits = {"cpu": cpu, "memory": memory}
    if gpus is not None:
        limits[GPU] = gpus
    spec = {"containers": [container(limits=limits)]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": f"p-{node_name}-{phase}"}, "spec": spec, "status": {"phase": phase}}


def test_pool_availability():
    nodes = [
        node("gpu01", "gpu", cpu="3900m", memory="16423892Ki", gpus="2"),
        node("gpu02", "gpu", cpu="8", memory="32Gi", gpus="4"),
        node("cpu01", "cpu", cpu="16", memory="64Gi"),
        node("cpu02", "cpu", cpu="16", memory="64Gi", ready=False),  # not Ready: totals only
        node("cpu03", "cpu", cpu="16", memory="64Gi", unschedulable=True),  # cordoned: totals only
        node("misc"),  # no pool label
    ]
    pods = [
        pod("gpu01", cpu="1500m", memory="4Gi", gpus="1"),
        pod("gpu01", "Pending", cpu="1", memory="1Gi", gpus="1"),  # bound, starting: counts
        pod("gpu02", "Succeeded", cpu="8", memory="32Gi", gpus="4"),  # ended: does not count
        pod("gpu02", "Failed", cpu="8", memory="32Gi", gpus="4"),
        pod(None, "Pending", cpu="8", memory="32Gi", gpus="4"),  # not bound to a node: nowhere yet
        pod("cpu01", cpu="20", memory="80Gi"),  # more than the node has: free stays at 0
        pod("cpu02", cpu="4"),
        pod("elsewhere", cpu="4"),  # a node not in the list
    ]
    assert pool_availability(nodes, pods, POOL, GPU) == {
        "pools": {
            "cpu": {
                "nodes_ready": 1,
                "nodes_total": 3,
                "cpu_free": 0.0,
                "cpu_total": 48.0,
                "memory_free_mb": 0,
                "memory_total_mb": 3 * 65536,
                "gpus_free": 0,
                "gpus_total": 0,
            },
            "default": {
                "nodes_ready": 1,
                "nodes_total": 1,
                "cpu_free": 4.0,
                "cpu_total": 4.0,
                "memory_free_mb": 16384,
                "memory_total_mb": 16384,
                "gpus_free": 0,
                "gpus_total": 0,
            },
            "gpu": {
                "nodes_ready": 2,
                "nodes_total": 2,
                "cpu_free": 9.4,  # 3.9 - 2.5, and 8
                "cpu_total": 11.9,
                "memory_free_mb": 16038 - 5 * 1024 + 32768,
                "memory_total_mb": 16038 + 32768,
                "gpus_free": 0 + 4,
                "gpus_total": 6,
            },
        }
    }


def test_another_gpu_resource_and_pool_label():
    mig = node("a100", cpu="64", memory="512Gi")
    mig["metadata"]["labels"] = {"site/pool": "mig"}
    mig["status"]["allocatable"]["nvidia.com/mig-1g.5gb"] = "7"
    busy = pod("a100", cpu="2", memory="10Gi")
    busy["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.5gb"] = "3"
    pools = pool_availability([mig], [busy], "site/pool", "nvidia.com/mig-1g.5gb")["pools"]
    assert (pools["mig"]["gpus_free"], pools["mig"]["gpus_total"], pools["mig"]["cpu_free"]) == (4, 7, 62.0)


def test_no_nodes():
    assert pool_availability([], [pod("n1")], POOL, GPU) == {"pools": {}}
