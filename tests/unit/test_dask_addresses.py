"""The scheduler address clients are given: Slurm's node address, or the host the site names for that node."""

from __future__ import annotations

import pytest

from daas_services.dask.addresses import client_address, plain_host
from daas_services.dask.records import ClusterRecord
from daas_services.dask.service import cluster_model

HOSTS = {"127.0.0.1": "10.88.0.1", "node17": "node17.hpc.example.org", "[fd00::17]": "[fd00::117]"}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tls://127.0.0.1:40123", "tls://10.88.0.1:40123"),
        ("tls://node17:8786", "tls://node17.hpc.example.org:8786"),
        ("tls://[fd00::17]:8786", "tls://[fd00::117]:8786"),
        ("tls://node18:8786", "tls://node18:8786"),  # not named: Slurm's address
        ("tls://node1:8786", "tls://node1:8786"),  # a prefix of a named node is another node
    ],
)
def test_a_named_node_is_replaced_and_the_port_kept(address: str, expected: str) -> None:
    assert client_address(address, HOSTS) == expected


def test_without_names_the_address_is_slurms() -> None:
    assert client_address("tls://127.0.0.1:40123", {}) == "tls://127.0.0.1:40123"


@pytest.mark.parametrize("value", ["10.88.0.1", "node17", "node17.hpc.example.org", "[fd00::1]", "a-b.c"])
def test_plain_hosts(value: str) -> None:
    assert plain_host(value)


@pytest.mark.parametrize(
    "value", ["", "10.88.0.1:8786", "evil.org/x", "user@host", "host name", "-flag", "tls://node", "fd00::1", "a\n"]
)
def test_what_is_no_plain_host(value: str) -> None:
    assert not plain_host(value)


def record(status: str, address: str | None) -> ClusterRecord:
    return ClusterRecord(
        id="0123456789abcdef",
        username="alice",
        status=status,
        job_name="daas-dask-0123456789abcdef",
        resolved={},
        scheduler_address=address,
    )


def test_the_owner_is_shown_the_address_clients_reach() -> None:
    model = cluster_model(record("running", "tls://127.0.0.1:40123"), "/services/daas-dask/", None, HOSTS)
    assert model["scheduler_address"] == "tls://10.88.0.1:40123"
    assert cluster_model(record("running", "tls://127.0.0.1:40123"), "/p/")["scheduler_address"] == (
        "tls://127.0.0.1:40123"
    )
    assert cluster_model(record("starting", None), "/p/", None, HOSTS)["scheduler_address"] is None
    assert cluster_model(record("stopped", "tls://127.0.0.1:40123"), "/p/", None, HOSTS)["scheduler_address"] is None
