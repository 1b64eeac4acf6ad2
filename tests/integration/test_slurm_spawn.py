"""REST spawns on the real Slurm cluster: the job gets exactly what the profile and options say."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from .conftest import SlurmHub
from .hub import Hub
from .slurm import (
    GPU_SPAWN,
    assert_gpu_job,
    batch_script,
    exported,
    job_details,
    server_environment,
    stored_job_files,
    user_jobs,
)


def _reachable_through_proxy(hub: Hub, user: str) -> None:
    token = hub.token_for(user, [f"access:servers!user={user}"])
    response = hub.http.get(f"{hub.url}/user/{user}/api/status", headers={"Authorization": f"token {token}"})
    assert response.status_code == 200, response.text
    assert "started" in response.json()


def test_gpu_profile_job_has_requested_resources(hub: Hub) -> None:
    response = hub.spawn("alice", GPU_SPAWN)
    assert response.status_code in (201, 202), response.text
    hub.wait_ready("alice")
    _reachable_through_proxy(hub, "alice")
    assert_gpu_job(job_details(hub.job_id("alice")), "alice")


def test_rest_body_with_only_a_profile_uses_the_profile_defaults(hub: Hub) -> None:
    assert hub.spawn("bob", {"profile": "cpu"}).status_code in (201, 202)
    hub.wait_ready("bob")
    job = job_details(hub.job_id("bob"))
    assert (job["Partition"], job["NumCPUs"], job["TimeLimit"]) == ("cpu", "1", "01:00:00")
    assert "mem=2G" in job["TRES"]


def test_power9_profile_runs_on_the_power9_node(hub: Hub) -> None:
    assert hub.spawn("carol", {"profile": "power9", "cores": "medium"}).status_code in (201, 202)
    hub.wait_ready("carol")
    job = job_details(hub.job_id("carol"))
    assert job["Features"] == "power9"
    assert job["NodeList"] == "p9-01"
    assert job["NumCPUs"] == "4"


def test_server_environment_and_script_carry_only_hub_values(hub: Hub) -> None:
    assert hub.spawn("alice", {"profile": "cpu", "cores": "min"}).status_code in (201, 202)
    hub.wait_ready("alice")
    job_id = hub.job_id("alice")
    script = batch_script(job_id)
    assert not re.search(r"^#SBATCH", script, re.MULTILINE)
    options = re.search(r"^export DAAS_OPTIONS='(.*)'$", script, re.MULTILINE)
    assert options is not None
    assert json.loads(options.group(1))["profile"] == "cpu"


def test_no_token_at_rest_and_the_bootstrap_secret_works_once(hub: Hub) -> None:
    assert hub.spawn("alice", {"profile": "cpu"}).status_code in (201, 202)
    hub.wait_ready("alice")
    _reachable_through_proxy(hub, "alice")  # the server has its token: it answers through the hub
    job_id = hub.job_id("alice")
    token = server_environment(job_id)["JUPYTERHUB_API_TOKEN"]
    assert len(token) >= 32

    script = batch_script(job_id)
    shown = subprocess.run(["scontrol", "show", "job", "-dd", job_id], capture_output=True, text=True, check=True)
    places = {
        "scontrol write batch_script": script,
        "scontrol show job -dd": shown.stdout,
        "the job log": Path(job_details(job_id)["StdOut"]).read_text(),
        **{path: data.decode(errors="replace") for path, data in stored_job_files(job_id).items()},
    }
    assert any(path.endswith("/environment") for path in places), places.keys()  # slurmctld's copy of the env
    for place, text in places.items():
        assert token not in text, f"the server's token is in {place}"

    # The one-time secret the script carries was used by the job: worthless now.
    secret = exported(script, "DAAS_BOOTSTRAP")
    response = hub.http.post(f"{hub.api_url}/daas/server-secrets", json={"secret": secret})
    assert response.status_code == 403, response.text


def test_stop_cancels_the_job_and_leaves_nothing(hub: Hub) -> None:
    assert hub.spawn("bob", {"profile": "cpu"}).status_code in (201, 202)
    hub.wait_ready("bob")
    job_id = hub.job_id("bob")
    hub.stop_server("bob")
    assert job_id not in user_jobs("bob")
    state = subprocess.run(["squeue", "-h", "-j", job_id, "-t", "all", "-o", "%T"], capture_output=True, text=True)
    assert state.stdout.strip() in ("CANCELLED", "COMPLETED", "")


def test_named_servers_are_separate_jobs_and_hub_polls_cost_no_query(slurm_hub: SlurmHub, hub: Hub) -> None:
    for name in ("one", "two"):
        assert hub.spawn("alice", {"profile": "cpu"}, server=name).status_code in (201, 202)
    for name in ("one", "two"):
        hub.wait_ready("alice", name)
    assert hub.job_id("alice", "one") != hub.job_id("alice", "two")
    assert len(user_jobs("alice")) == 2

    # JupyterHub polls both servers every second here; the shared view answers from memory.
    time.sleep(slurm_hub.poll_interval)
    before = slurm_hub.commands.count("squeue")
    time.sleep(2 * slurm_hub.poll_interval)
    assert slurm_hub.commands.count("squeue") - before <= 3


def test_apptainer_environment_runs_the_server_through_apptainer_exec(slurm_hub: SlurmHub, hub: Hub) -> None:
    assert hub.spawn("alice", {"profile": "cpu", "environment": "container"}).status_code in (201, 202)
    hub.wait_ready("alice")
    _reachable_through_proxy(hub, "alice")
    calls = slurm_hub.apptainer_log.read_text().splitlines()
    assert len(calls) == 1
    assert calls[0].startswith("exec --bind=/tmp:/scratch:ro /images/daas.sif python3 -c ")
    # The launcher, then the server with its session's settings (the cpu profile's idle timeout is an hour).
    server = calls[0].rstrip().rsplit(" jupyterhub-singleuser ", 1)[1].split(" ")
    assert all(re.fullmatch(r"--[A-Za-z]+\.[a-z_]+=[A-Za-z0-9]+", arg) for arg in server), server
    assert "--ServerApp.shutdown_no_activity_timeout=3600" in server
