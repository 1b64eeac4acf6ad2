"""What the form shows for OpenStack: each flavor's size, and how many more the project's quota allows.

Pure functions on Nova's JSON: `GET /flavors/detail` (with extra specs, 2.61) and `GET /limits`.
A cloud's free capacity is not visible to a project; its quota is, and is what refuses a
server first on a busy facility cloud.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

_PCI_ALIAS = re.compile(r"^[^:,]+:(\d+)$")


def flavor_gpus(extra_specs: Mapping[str, Any]) -> int:
    """GPUs a flavor asks Nova for: vGPUs, physical GPUs (resources:PGPU) or PCI passthrough aliases."""
    gpus = 0
    for key, value in extra_specs.items():
        if (key.startswith("resources") and key.endswith((":VGPU", ":PGPU"))) and str(value).isdigit():
            gpus += int(value)
        elif key == "pci_passthrough:alias":
            for alias in str(value).split(","):
                match = _PCI_ALIAS.match(alias.strip())
                gpus += int(match.group(1)) if match else 1
    return gpus


@dataclass(frozen=True)
class FlavorAvailability:
    """One flavor's size and how many more servers of it the project's quota leaves room for."""

    vcpus: int
    ram_mb: int
    gpus: int
    disk_gb: int
    room: int | None  # None: the quota sets no bound

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _left(limits: Mapping[str, Any], maximum: str, used: str) -> int | None:
    """What is left under one absolute limit; None when it is unlimited (-1) or not reported."""
    top, taken = limits.get(maximum), limits.get(used, 0)
    if not isinstance(top, int) or top < 0:
        return None
    return max(top - (taken if isinstance(taken, int) else 0), 0)


def room_for(flavor: Mapping[str, Any], limits: Mapping[str, Any]) -> int | None:
    """How many more servers of this flavor fit in the project's instances, cores and RAM quotas."""
    bounds = []
    for left, size in (
        (_left(limits, "maxTotalInstances", "totalInstancesUsed"), 1),
        (_left(limits, "maxTotalCores", "totalCoresUsed"), int(flavor.get("vcpus") or 0)),
        (_left(limits, "maxTotalRAMSize", "totalRAMUsed"), int(flavor.get("ram") or 0)),
    ):
        if left is not None and size > 0:
            bounds.append(left // size)
    return min(bounds) if bounds else None


def flavor_availability(
    flavors: Iterable[Mapping[str, Any]], limits: Mapping[str, Any]
) -> dict[str, FlavorAvailability]:
    """Every flavor the project may use, by name and by id (profiles may name either), as Nova describes it."""
    answer = {}
    for flavor in flavors:
        sizes = FlavorAvailability(
            vcpus=int(flavor.get("vcpus") or 0),
            ram_mb=int(flavor.get("ram") or 0),
            gpus=flavor_gpus(flavor.get("extra_specs") or {}),
            disk_gb=int(flavor.get("disk") or 0),
            room=room_for(flavor, limits),
        )
        answer[str(flavor.get("id"))] = answer[str(flavor.get("name"))] = sizes
    return answer
