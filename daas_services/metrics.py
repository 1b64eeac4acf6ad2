"""The services' Prometheus metrics, at `<prefix>metrics` for a hub token with `read:metrics` (handlers.py).

Each service is its own process with prometheus_client's default registry (and so its process
metrics); daas-data counts reads, bytes and refusals, daas-dask its clusters, workers and refusals.
Labels are kinds, states and rules from fixed lists, never a user, path or cluster id.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from daas_core.metrics import define

DATA_READS = define(
    Counter,
    "daas_data_reads",
    "Answers daas-data gave from people's data, by kind (mounts, list, read, hdf5...), refused ones not included.",
    ["kind"],
)
DATA_BYTES = define(
    Counter,
    "daas_data_served_bytes",
    "Bytes of people's data daas-data sent: downloads (whole or ranges) and h5grove answers.",
)
REFUSALS = define(
    Counter,
    "daas_service_refusals",
    "Requests a service refused, by rule: path_refused (a malformed path), not_your_proposal, no_such_location, "
    "permission_denied (the filesystem, as the person), too_large (over the reader's bounds), busy (the "
    "person's readers all in use), bad_request; not_your_cluster, limits (the site's Dask limits), "
    "cluster_error (the cluster's state or Slurm said no), scheduler_job (a scheduler job's call: wrong "
    "secret, bad report).",
    ["rule"],
)

READER_RULES = {400: "bad_request", 403: "permission_denied", 413: "too_large", 422: "too_large", 429: "busy"}
"""The reader's refusals by HTTP status; other errors (404, 416, 5xx) are answers or failures, not refusals."""


def refused(rule: str) -> None:
    REFUSALS.labels(rule).inc()


def reader_refused(status: int) -> None:
    """Count a reader's error when it is a refusal (READER_RULES)."""
    if status in READER_RULES:
        refused(READER_RULES[status])


def data_read(kind: str) -> None:
    DATA_READS.labels(kind).inc()


def data_served(size: int) -> None:
    DATA_BYTES.inc(size)


CLUSTER_STATES = ("starting", "running", "stopping")  # the records' active statuses


class DaskCollector(Collector):
    """The service's clusters by status and their workers by state, read from its records at each scrape.

    `clusters` gives (status, worker jobs held) for each active cluster; `connected` the workers the
    schedulers reported at the last liveness check.
    """

    def __init__(self, clusters: Callable[[], Iterable[tuple[str, int]]], connected: Callable[[], int]) -> None:
        self.clusters = clusters
        self.connected = connected

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status: Tally[str] = Tally()
        submitted = 0
        for status, worker_jobs in self.clusters():
            by_status[status] += 1
            submitted += worker_jobs
        clusters = GaugeMetricFamily("daas_dask_clusters", "Active Dask clusters, by status.", labels=["status"])
        for status in CLUSTER_STATES:
            clusters.add_metric([status], by_status[status])
        yield clusters
        workers = GaugeMetricFamily(
            "daas_dask_workers",
            "Dask workers: submitted (worker jobs the service holds in Slurm, queued or running), connected "
            "(workers the schedulers reported at the last liveness check).",
            labels=["state"],
        )
        workers.add_metric(["submitted"], submitted)
        workers.add_metric(["connected"], self.connected())
        yield workers
