"""Kubernetes resource quantities ("3900m", "16Gi", "1e3") and what a pod asks of its node.

The scheduler and the availability view must count a pod the same way: the sum over its
containers, or the largest init container when that is more (init containers run one at a
time, before the others), plus the pod's overhead. A container without requests is
requested at its limits (the API server defaults them so).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

MIB = 1024**2
_SUFFIX = {
    "Ki": Decimal(1024),
    "Mi": Decimal(1024**2),
    "Gi": Decimal(1024**3),
    "Ti": Decimal(1024**4),
    "Pi": Decimal(1024**5),
    "Ei": Decimal(1024**6),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?",
    re.ASCII,
)


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity as an exact number of base units (cores, bytes, devices)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number = Decimal(match["number"])
    if match["exponent"] is not None:
        return number.scaleb(int(match["exponent"]))
    return number * _SUFFIX[match["suffix"] or ""]


def cores(value: str | int | float | Decimal) -> float:
    """CPU quantity -> cores, to the millicore ("3900m" -> 3.9)."""
    amount = value if isinstance(value, Decimal) else parse_quantity(value)
    return float(amount.quantize(Decimal("0.001")))


def memory_mib(value: str | int | float | Decimal) -> int:
    """Memory quantity -> whole MiB, rounded down ("16423892Ki" -> 16039)."""
    amount = value if isinstance(value, Decimal) else parse_quantity(value)
    return int(amount // MIB)


def _container_requests(container: dict[str, Any]) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    amounts = {name: parse_quantity(q) for name, q in (resources.get("limits") or {}).items()}
    amounts.update({name: parse_quantity(q) for name, q in (resources.get("requests") or {}).items()})
    return amounts


def pod_requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    """What the scheduler reserves on a node for this pod: resource name -> base units."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = total.get(name, Decimal(0)) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), amount)
    for name, amount in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, Decimal(0)) + parse_quantity(amount)
    return total
