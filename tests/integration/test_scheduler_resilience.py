"""Ten running servers: one squeue per interval for all; outages, external cancels, hub restarts.

The tests in this module share the same ten servers and run in file order.
"""

from __future__ import annotations

import html
import itertools
import subprocess
import time
from collections.abc import Iterator

import pytest

from .conftest import SlurmHub, running_slurm_hub
from .hub import wait_for
from .slurm import cluster, job_details, user_jobs

SERVERS = [(user, f"s{n}") for user in ("alice", "bob", "carol") for n in range(4)][:10]


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster: None) -> Iterator[SlurmHub]:
    """JupyterHub's own poll nearly off: the shared view alone must notice ended jobs."""
    yield from running_slurm_hub(hub_poll_interval=600)


@pytest.fixture(scope="module")
def ten(slurm_hub: SlurmHub) -> Iterator[SlurmHub]:
    hub = slurm_hub.hub
    for user, server in SERVERS:
        response = hub.spawn(user, {"profile": "cpu", "cores": 1, "memory": "1G"}, server=server)
        assert response.status_code in (201, 202), response.text
    for user, server in SERVERS:
        hub.wait_ready(user, server, timeout=300)
    yield slurm_hub


def _running(slurm_hub: SlurmHub) -> list[tuple[str, str]]:
    hub = slurm_hub.hub
    return [(u, s) for u, s in SERVERS if (hub.server_model(u, s) or {}).get("ready")]


def test_one_squeue_per_interval_for_ten_servers(ten: SlurmHub) -> None:
    interval = ten.poll_interval
    time.sleep(interval)  # let the start-up burst (busy interval) end
    before = ten.commands.count("squeue")
    window = 3 * interval
    time.sleep(window)
    stamps = [stamp for stamp, _, _ in ten.commands.entries("squeue")][before:]
    # 10 servers: one query per interval for all of them.
    assert 2 <= len(stamps) <= window / interval + 1, stamps
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= interval - 0.5, gaps
    assert all("--name=jupyterhub-daas" in args for _, _, args in ten.commands.entries("squeue"))


def test_controller_outage_stops_no_server(ten: SlurmHub) -> None:
    before = ten.commands.count("squeue")
    cluster("stop-controller")
    try:
        time.sleep(2 * ten.poll_interval + 2)
        assert ten.commands.count("squeue") > before, "the hub did not even try to query"
        assert _running(ten) == SERVERS
        sbatches, pings = ten.commands.count("sbatch"), ten.commands.count("scontrol")
        response = ten.hub.spawn("alice", {"profile": "cpu", "cores": 1, "memory": "1G"}, server="outage")
        assert response.status_code == 503, response.text
        assert "Slurm is not answering" in response.json()["message"]
        # Refused on the ping, before sbatch: no job can be left behind by a cut-off submission.
        assert (ten.commands.count("sbatch"), ten.commands.count("scontrol")) == (sbatches, pings + 1)
    finally:
        cluster("start-controller")
    after = ten.commands.count("squeue")
    wait_for(lambda: ten.commands.count("squeue") > after, 3 * ten.poll_interval, "a query after recovery")
    time.sleep(1)
    assert _running(ten) == SERVERS
    for user, server in SERVERS:
        assert job_details(ten.hub.job_id(user, server))["JobState"] == "RUNNING"


def test_external_scancel_is_noticed_within_one_interval(ten: SlurmHub) -> None:
    user, server = SERVERS[-1]
    job_id = ten.hub.job_id(user, server)
    subprocess.run(["scancel", job_id], check=True)
    # One poll interval, plus the time one squeue may take when the controller is busy.
    ten.hub.wait_stopped(user, server, timeout=ten.poll_interval + 3)
    SERVERS.pop()
    # The user learns why on the server's next spawn page.
    with ten.hub.logged_in(user) as client:
        page = html.unescape(client.get(f"/hub/spawn/{user}/{server}").text)
    assert f"Your server's Slurm job {job_id} was cancelled" in page


def test_hub_restart_reattaches_every_server(ten: SlurmHub) -> None:
    hub = ten.hub
    jobs = {key: hub.job_id(*key) for key in SERVERS}
    cancels = ten.commands.count("scancel")
    hub.stop()
    assert all(job_details(job)["JobState"] == "RUNNING" for job in jobs.values())
    hub.start()
    wait_for(lambda: _running(ten) == SERVERS, 30, "every server to be re-attached")
    assert {key: hub.job_id(*key) for key in SERVERS} == jobs
    assert ten.commands.count("scancel") == cancels
    routes = hub.routes()
    for user, server in SERVERS:
        assert f"/user/{user}/{server}/" in routes
    token = hub.token_for("alice", ["access:servers!user=alice"])
    response = hub.http.get(f"{hub.url}/user/alice/s0/api/status", headers={"Authorization": f"token {token}"})
    assert response.status_code == 200


def test_an_sbatch_that_outlives_its_timeout_leaves_no_job(slurm_hub: SlurmHub) -> None:
    """A fault at the Slurm boundary: sbatch submits, then hangs past the hub's command timeout (5 s here)."""
    hub, wrapper = slurm_hub.hub, slurm_hub.commands.bin_dir / "sbatch"
    submitted = slurm_hub.workdir / "hung-sbatch.log"
    submitted.touch()
    submitted.chmod(0o666)  # sbatch runs as the user
    logging_wrapper = wrapper.read_text()
    # Held: the job cannot start, report and end on its own first; only the hub's scancel ends it.
    wrapper.write_text(
        f'#!/bin/sh\n/usr/bin/sbatch --hold "$@" | tee -a {submitted}\nexec sleep 600  # the answer never comes\n'
    )
    before = set(user_jobs("carol"))
    try:
        response = hub.spawn("carol", {"profile": "cpu", "cores": 1, "memory": "1G"}, server="hung")
        assert response.status_code == 503, response.text
        assert "Slurm is not answering (sbatch gave no answer within 5 s)" in response.json()["message"]
    finally:
        wrapper.write_text(logging_wrapper)
    job_id = submitted.read_text().strip()
    assert job_id.isdigit(), "the wrapper did not submit: the test would prove nothing"
    wait_for(lambda: set(user_jobs("carol")) == before, 30, f"job {job_id} to be cancelled")
    assert job_details(job_id)["JobState"] == "CANCELLED"
    hung = subprocess.run(["pgrep", "-u", "carol", "-f", "sleep 600"], capture_output=True, text=True, check=False)
    assert hung.stdout == "", "the timed-out sbatch is still running"
