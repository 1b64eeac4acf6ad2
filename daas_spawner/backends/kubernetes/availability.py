"""Per node pool free CPU, memory and GPUs, from the node and pod objects the shared watches keep.

Counting rules, so a number means "a new server could get this now":
- A node's capacity is its allocatable (what the kubelet offers pods), not its hardware.
- A node that is not Ready, or is cordoned (spec.unschedulable), offers nothing free (no new
  pod can go there); its totals still count, as a Slurm node that is down does.
- Free is allocatable minus what the scheduler reserves for the pods bound to the node that
  have not ended (phase neither Succeeded nor Failed): their requests, as resources.pod_requests
  counts them, whoever owns them. Never below zero on one node.
- A node without the pool label is in pool "default".
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .resources import cores, memory_mib, parse_quantity, pod_requests

DEFAULT_POOL = "default"
ENDED_PHASES = frozenset({"Succeeded", "Failed"})
_ZERO = Decimal(0)


def node_usable(node: dict[str, Any]) -> bool:
    """Whether the scheduler would place a new pod on this node: Ready and not cordoned."""
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def requested_by_node(pods: Iterable[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Node name -> resource name -> what the live pods bound to it request."""
    used: dict[str, dict[str, Decimal]] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") in ENDED_PHASES:
            continue
        on_node = used.setdefault(node_name, {})
        for resource, amount in pod_requests(pod).items():
            on_node[resource] = on_node.get(resource, _ZERO) + amount
    return used


def pool_availability(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], pool_label: str, gpu_resource: str
) -> dict[str, Any]:
    """{"pools": {pool: {nodes_ready, nodes_total, cpu_free, cpu_total, memory_free_mb, memory_total_mb,
    gpus_free, gpus_total}}}; cores as floats to the millicore, memory in whole MiB, GPUs as ints.

    `gpu_resource` is the extended resource that counts as GPUs (e.g. "nvidia.com/gpu").
    """
    used = requested_by_node(pods)
    sums: dict[str, dict[str, Any]] = {}
    for node in nodes:
        metadata = node.get("metadata") or {}
        pool = (metadata.get("labels") or {}).get(pool_label) or DEFAULT_POOL
        totals = sums.setdefault(pool, {"nodes_ready": 0, "nodes_total": 0, "free": {}, "total": {}})
        usable = node_usable(node)
        totals["nodes_total"] += 1
        totals["nodes_ready"] += int(usable)
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        requested = used.get(metadata.get("name", ""), {})
        for resource in ("cpu", "memory", gpu_resource):
            offered = parse_quantity(allocatable.get(resource, 0))
            free = max(offered - requested.get(resource, _ZERO), _ZERO) if usable else _ZERO
            totals["total"][resource] = totals["total"].get(resource, _ZERO) + offered
            totals["free"][resource] = totals["free"].get(resource, _ZERO) + free
    pools = {}
    for pool, totals in sorted(sums.items()):
        free, total = totals["free"], totals["total"]
        pools[pool] = {
            "nodes_ready": totals["nodes_ready"],
            "nodes_total": totals["nodes_total"],
            "cpu_free": cores(free.get("cpu", _ZERO)),
            "cpu_total": cores(total.get("cpu", _ZERO)),
            "memory_free_mb": memory_mib(free.get("memory", _ZERO)),
            "memory_total_mb": memory_mib(total.get("memory", _ZERO)),
            "gpus_free": int(free.get(gpu_resource, _ZERO)),
            "gpus_total": int(total.get(gpu_resource, _ZERO)),
        }
    return {"pools": pools}
