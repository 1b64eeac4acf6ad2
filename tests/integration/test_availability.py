"""Live availability on the real cluster: right numbers, one sinfo per TTL, old data in an outage.

The tests in this module share one hub (and so one availability cache): each counts the sinfo
calls it causes itself, and waits until the cache has expired where it needs a fresh one.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import SlurmHub, running_slurm_hub
from .hub import Hub, wait_for
from .slurm import cluster, hold_gpus

ENDPOINT = "/daas/availability"
TTL = 10.0  # long enough for a burst of requests, short enough to outlast in an outage test


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster: None) -> Iterator[SlurmHub]:
    """A hub of its own: the tests count every availability sinfo since it started."""
    yield from running_slurm_hub(availability_ttl=TTL)


@pytest.fixture(scope="module")
def alice_token(slurm_hub: SlurmHub) -> str:
    return slurm_hub.hub.token_for("alice", ["inherit"])


@pytest.fixture(scope="module")
def gpu_job(slurm_hub: SlurmHub) -> Iterator[str]:
    """bob's batch job holding one of gpu01's two GPUs (1 CPU, 1000 MB)."""
    job = hold_gpus("bob", 1)
    try:
        yield job
    finally:
        subprocess.run(["scancel", job], check=False, timeout=30)


def availability_sinfos(slurm_hub: SlurmHub) -> int:
    """sinfo calls of the availability view (the address check's node lookup uses --format)."""
    return sum("--Format=" in args for _, _, args in slurm_hub.commands.entries("sinfo"))


def get(hub: Hub, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return hub.http.get(f"{hub.api_url}{ENDPOINT}", headers=headers, follow_redirects=False)


def slurm_view(hub: Hub, token: str) -> dict[str, Any]:
    """The Slurm backend's part of the answer (alice's profiles are all Slurm's: it is the only part)."""
    body = get(hub, token).json()
    assert set(body) == {"slurm"}, body
    return body["slurm"]


def timed_get(hub: Hub, token: str) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    response = get(hub, token)
    assert response.status_code == 200, response.text
    return time.monotonic() - started, response.json()["slurm"]


def test_credentials_are_required(slurm_hub: SlurmHub) -> None:
    before = availability_sinfos(slurm_hub)
    assert get(slurm_hub.hub, None).status_code == 403
    assert get(slurm_hub.hub, "not-a-token").status_code == 403
    assert availability_sinfos(slurm_hub) == before


def wait_expired(hub: Hub, token: str) -> None:
    """Until the cached view (if any) is older than the TTL, so that the next request refreshes it."""
    answer = slurm_view(hub, token)  # starts the first query if there is no view yet
    if not answer["taken_at"]:
        answer = wait_for(lambda: (body := slurm_view(hub, token))["taken_at"] and body, 5, "a first view")
    time.sleep(max(TTL - answer["age"], 0) + 0.5)


def test_twenty_requests_cost_one_sinfo_and_show_the_gpu_job(
    slurm_hub: SlurmHub, gpu_job: str, alice_token: str
) -> None:
    hub = slurm_hub.hub
    wait_expired(hub, alice_token)  # and gpu_job runs: the view the burst brings shows it
    before = availability_sinfos(slurm_hub)
    old = slurm_view(hub, alice_token)["taken_at"]  # expired: this request starts the refresh
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: get(hub, alice_token), range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    answer = wait_for(
        lambda: (body := slurm_view(hub, alice_token))["taken_at"] != old and body, 5, "the refreshed data"
    )
    assert availability_sinfos(slurm_hub) == before + 1
    assert set(answer) == {"partitions", "taken_at", "age", "stale", "error"}
    assert answer["stale"] is False and answer["error"] is None and 0 <= answer["age"] < TTL
    # alice's profiles (cpu, gpu, power9; the staff-only one is on cpu too) name three partitions.
    assert set(answer["partitions"]) == {"cpu", "gpu", "power9"}
    gpu = answer["partitions"]["gpu"]
    assert (gpu["gpus_free"], gpu["gpus_total"], gpu["gpu_types"]) == (1, 2, {"tesla": {"free": 1, "total": 2}})
    nodes = [gpu[f"nodes_{kind}"] for kind in ("total", "idle", "mixed", "allocated", "down")]
    assert nodes == [1, 0, 1, 0, 0]
    assert (gpu["cores_idle"], gpu["cores_total"]) == (7, 8)
    assert (gpu["memory_free_mb"], gpu["memory_total_mb"]) == (15000, 16000)
    assert gpu["state"] == "up"
    cpu = answer["partitions"]["cpu"]
    assert (cpu["nodes_total"], cpu["nodes_down"], cpu["cores_total"]) == (2, 0, 16)
    assert (cpu["gpus_free"], cpu["gpus_total"], cpu["gpu_types"]) == (0, 0, {})
    power9 = answer["partitions"]["power9"]
    assert (power9["nodes_total"], power9["memory_total_mb"]) == (1, 16000)
    for _ in range(20):
        assert slurm_view(hub, alice_token)["taken_at"] == answer["taken_at"]
    assert availability_sinfos(slurm_hub) == before + 1


def test_controller_outage_answers_at_once_with_old_data_marked_stale(slurm_hub: SlurmHub, alice_token: str) -> None:
    hub = slurm_hub.hub
    _, before = timed_get(hub, alice_token)
    assert before["taken_at"] and before["error"] is None
    queries = availability_sinfos(slurm_hub)
    cluster("stop-controller")
    try:
        time.sleep(max(TTL - before["age"], 0) + 0.5)  # the data is now older than the ttl
        seconds, answer = timed_get(hub, alice_token)  # starts the refresh, does not wait for it
        assert seconds < 2, f"the endpoint waited {seconds:.1f} s for the scheduler"
        assert answer["stale"] is True
        assert (answer["partitions"], answer["taken_at"]) == (before["partitions"], before["taken_at"])

        def failed() -> dict[str, Any] | None:
            seconds, answer = timed_get(hub, alice_token)
            assert seconds < 2, f"the endpoint waited {seconds:.1f} s for the scheduler"
            return answer if answer["error"] else None

        answer = wait_for(failed, 30, "the failed refresh to be reported")
        assert answer["stale"] is True and answer["age"] > TTL
        assert (answer["partitions"], answer["taken_at"]) == (before["partitions"], before["taken_at"])
        for _ in range(10):  # within a ttl of the failure: no new attempt
            assert timed_get(hub, alice_token)[1]["stale"] is True
        assert availability_sinfos(slurm_hub) == queries + 1
    finally:
        cluster("start-controller")

    def fresh() -> dict[str, Any] | None:
        answer = slurm_view(hub, alice_token)
        return answer if not answer["stale"] else None

    answer = wait_for(fresh, 3 * TTL, "fresh data after the controller is back", interval=1)
    assert answer["error"] is None and answer["taken_at"] != before["taken_at"]
