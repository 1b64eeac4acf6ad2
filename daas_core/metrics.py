"""Prometheus metrics defined once per process, whatever imports them how often.

prometheus_client refuses a second metric of the same name in one registry ("Duplicated
timeseries"), so a module that defines its metrics at import would break the hub or a service
when imported twice (a config file loaded again, a test that reloads it). `define` keeps the
one instance per name here and hands it out again; a different kind under a taken name is a
programming error and raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

PREFIX = "daas_"

_defined: dict[tuple[int, str], tuple[MetricWrapperBase, tuple[str, ...]]] = {}  # (registry, name) -> (metric, labels)


def define(
    kind: type[M],
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    registry: CollectorRegistry = REGISTRY,
    **options: Any,
) -> M:
    """The metric `name` (which starts with `daas_`) of this kind in `registry`, made on first use."""
    if not name.startswith(PREFIX):
        raise ValueError(f"metric {name!r} does not start with {PREFIX!r}")
    key = (id(registry), name)
    if key not in _defined:
        _defined[key] = (kind(name, documentation, labelnames, registry=registry, **options), tuple(labelnames))
    metric, labels = _defined[key]
    if not isinstance(metric, kind) or labels != tuple(labelnames):
        raise ValueError(f"metric {name!r} is already defined, as a {type(metric).__name__} by {labels}")
    return metric
