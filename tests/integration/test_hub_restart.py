"""A hub killed in the middle of a start: the next hub resumes it, and no job is left behind (#15, item 3).

JupyterHub makes a server's row before it calls the spawner's start, so the next hub polls
a start it cut off like a running server; the spawner continues the start from the last
checkpoint it stored (a job id, or the sbatch comment before sbatch answered).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import SlurmHub, running_slurm_hub
from .hub import Hub, wait_for
from .slurm import hold_gpus, job_details, user_jobs


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster: None) -> Iterator[SlurmHub]:
    yield from running_slurm_hub(hub_poll_interval=1)


def _stored(hub: Hub, user: str) -> dict:
    """The spawner state the hub shows (what it stored at the last checkpoint)."""
    return ((hub.server_model(user) or {}).get("state") or {}).get("daas") or {}


def _reachable(hub: Hub, user: str) -> None:
    token = hub.token_for(user, [f"access:servers!user={user}"])
    response = hub.http.get(f"{hub.url}/user/{user}/api/status", headers={"Authorization": f"token {token}"})
    assert response.status_code == 200, response.text


def test_a_start_killed_while_its_job_is_pending_comes_up_after_the_restart(slurm_hub: SlurmHub) -> None:
    hub = slurm_hub.hub
    blocker = hold_gpus("bob", 2)  # the server's job queues (reason Resources) until this ends
    try:
        assert hub.spawn("alice", {"profile": "gpu", "gpus": 1}).status_code == 202
        job_id = wait_for(lambda: _stored(hub, "alice").get("state", {}).get("job_id"), 60, "the job id checkpoint")
        assert job_details(job_id)["JobState"] == "PENDING"
        sbatches = slurm_hub.commands.count("sbatch")
        hub.kill()
        hub.start()
        assert job_details(job_id)["JobState"] == "PENDING"
    finally:
        subprocess.run(["scancel", blocker], check=True)
    hub.wait_ready("alice", timeout=120)
    assert hub.job_id("alice") == job_id
    assert user_jobs("alice") == [job_id]  # re-attached: no second job
    assert slurm_hub.commands.count("sbatch") == sbatches
    _reachable(hub, "alice")
    hub.stop_server("alice")
    assert user_jobs("alice") == []


def test_a_start_killed_before_sbatch_answered_finds_its_job_by_comment(slurm_hub: SlurmHub) -> None:
    """The hub dies between the pre-sbatch checkpoint and sbatch's answer; sbatch submitted all the same."""
    hub, wrapper = slurm_hub.hub, slurm_hub.commands.bin_dir / "sbatch"
    submitted = slurm_hub.workdir / "cut-off-sbatch.log"
    submitted.touch()
    submitted.chmod(0o666)  # sbatch runs as the user
    logging_wrapper = wrapper.read_text()
    wrapper.write_text(
        f'#!/bin/sh\n/usr/bin/sbatch "$@" | tee -a {submitted}\nexec sleep 600  # the answer never comes\n'
    )
    try:
        with ThreadPoolExecutor(1) as pool:  # the hub's POST would wait for the start (up to 10 s)
            pool.submit(hub.spawn, "carol", {"profile": "cpu", "cores": 1, "memory": "1G"})
            job_id = wait_for(lambda: submitted.read_text().strip(), 30, "sbatch to submit")
            assert _stored(hub, "carol")["state"]["job_id"] is None  # only the comment is stored
            hub.kill()  # within the hub's 5 s command timeout: the start never learnt the job id
    finally:
        wrapper.write_text(logging_wrapper)
        hung = subprocess.run(["pgrep", "-u", "carol", "-x", "sleep"], capture_output=True, text=True).stdout.split()
        for pid in hung:
            subprocess.run(["kill", pid], check=False)
    hub.start()
    hub.wait_ready("carol", timeout=120)
    assert hub.job_id("carol") == job_id
    assert user_jobs("carol") == [job_id]
    _reachable(hub, "carol")
    hub.stop_server("carol")
    assert user_jobs("carol") == []
