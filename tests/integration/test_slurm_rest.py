"""Slurm without sudo (#16): a hub that runs as an unprivileged account and talks to slurmrestd only.

The hub runs as daas-hub (no sudo rule, no munge key, no scheduler command in its slurm_bin_dir)
with a copy of the cluster's JWT key; it mints each person's token and acts as them over REST.
Its tokens live TOKEN_LIFETIME seconds, so every test here also runs across token renewals.
"""

from __future__ import annotations

import html
import pwd
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from traitlets.config import Config

from daas_core.commands import CommandFailed
from daas_spawner.backends.slurm.backend import SlurmBackend

from .conftest import HUB_USER, TOKEN_LIFETIME, SlurmHub, cancel_test_jobs
from .hub import Hub, wait_for
from .slurm import (
    CLUSTER_JWT_KEY,
    GPU_SPAWN,
    REST_URL,
    assert_gpu_job,
    batch_script,
    cluster,
    job_details,
    plain_job,
    refused_tokens,
    stored_job_files,
    user_jobs,
)

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+")  # a JWT's header and claims: base64url of '{"...'
CPU = {"profile": "cpu", "cores": 1, "memory": "1G"}


def as_hub_account(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run argv as the hub's account, the way the hub itself is started."""
    return subprocess.run(
        ["setpriv", f"--reuid={HUB_USER}", f"--regid={HUB_USER}", "--init-groups", "--", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def process_ids(pid: int) -> tuple[set[int], set[int]]:
    """The uids (real, effective, saved, fs) and all gids (primary and supplementary) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    uids = {int(value) for value in fields["Uid"].split()}
    gids = {int(value) for value in fields["Gid"].split() + fields["Groups"].split()}
    return uids, gids


def reachable(hub: Hub, user: str, server: str = "") -> None:
    token = hub.token_for(user, [f"access:servers!user={user}"])
    path = f"/user/{user}/{server}/api/status" if server else f"/user/{user}/api/status"
    response = hub.http.get(f"{hub.url}{path}", headers={"Authorization": f"token {token}"})
    assert response.status_code == 200, response.text


def start(hub: Hub, user: str, options: dict, server: str = "") -> str:
    """Spawn, wait until the server is up; its job id."""
    response = hub.spawn(user, options, server=server)
    assert response.status_code in (201, 202), response.text
    hub.wait_ready(user, server)
    return hub.job_id(user, server)


def test_the_hub_and_its_proxy_run_as_an_account_without_sudo_or_munge(rest_slurm_hub: SlurmHub) -> None:
    hub = rest_slurm_hub.hub
    account = pwd.getpwnam(HUB_USER)
    munge_gid = Path("/etc/munge/munge.key").stat().st_gid
    for pid in (hub.pid, hub.proxy_pid):
        uids, gids = process_ids(pid)
        assert uids == {account.pw_uid}, (pid, uids)
        assert munge_gid not in gids and 0 not in gids, (pid, gids)
    # What a sudo-based hub needs, this account has not.
    refused = as_hub_account("sudo", "-n", "-u", "alice", "true")
    assert refused.returncode != 0, refused
    # `test -r`: whether it could read them (never their contents: no secret in a test's output).
    assert as_hub_account("test", "-r", "/etc/munge/munge.key").returncode != 0
    assert as_hub_account("test", "-r", str(CLUSTER_JWT_KEY)).returncode != 0  # only the copy it was handed
    assert as_hub_account("test", "-r", str(rest_slurm_hub.jwt_key)).returncode == 0


def test_gpu_spawn_runs_as_the_person_with_the_profiles_resources(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    submits = rest_slurm_hub.commands.count("sbatch")
    job_id = start(rest_hub, "alice", GPU_SPAWN)
    reachable(rest_hub, "alice")
    assert rest_slurm_hub.commands.count("sbatch") == submits + 1  # submitted through slurmrestd
    assert_gpu_job(job_details(job_id), "alice")


def test_power9_spawn_gets_the_constraint_and_node(rest_hub: Hub) -> None:
    job = job_details(start(rest_hub, "carol", {"profile": "power9", "cores": "medium"}))
    assert job["UserId"].startswith("carol("), job["UserId"]
    assert job["Partition"] == "power9"
    assert job["Features"] == "power9"
    assert job["NodeList"] == "p9-01"
    assert job["NumCPUs"] == "4"
    assert job["Account"] == "daas-demo"


def test_stop_cancels_the_job(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    job_id = start(rest_hub, "bob", CPU)
    cancels = rest_slurm_hub.commands.count("scancel")
    rest_hub.stop_server("bob")
    assert job_id not in user_jobs("bob")
    assert job_details(job_id)["JobState"] == "CANCELLED"
    assert rest_slurm_hub.commands.count("scancel") == cancels + 1


def test_running_servers_cost_one_job_list_per_interval(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    """JupyterHub polls every second here; the shared view answers it from memory: one GET /jobs per interval."""
    for server in ("one", "two", "three"):
        assert rest_hub.spawn("alice", CPU, server=server).status_code in (201, 202)
    for server in ("one", "two", "three"):
        rest_hub.wait_ready("alice", server)
    interval = rest_slurm_hub.poll_interval
    time.sleep(interval)  # let the start-up burst (busy interval) end
    before = len(rest_slurm_hub.commands.requests())
    time.sleep(3 * interval)
    made = rest_slurm_hub.commands.requests()[before:]
    assert 2 <= len(made) <= 4, made
    assert all(re.fullmatch(r"GET /slurm/v0\.0\.38/jobs", request) for request in made), made


def test_an_external_scancel_is_noticed_within_one_interval(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    job_id = start(rest_hub, "bob", CPU)
    subprocess.run(["scancel", job_id], check=True, timeout=30)
    # One poll interval, plus the time one request may take when the controller is busy.
    rest_hub.wait_stopped("bob", timeout=rest_slurm_hub.poll_interval + 3)
    with rest_hub.logged_in("bob") as client:
        page = html.unescape(client.get("/hub/spawn/bob").text)
    # The person learns that the job ended. Not always that it was cancelled: a view taken while
    # Slurm still cleans the job up lists it COMPLETING (for either transport), which reads "exited".
    assert f"Your server's Slurm job {job_id} " in page


def test_a_hub_restart_reattaches_the_running_servers(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    servers = [("alice", ""), ("bob", "b")]
    jobs = {key: start(rest_hub, key[0], CPU, server=key[1]) for key in servers}
    submits, cancels = rest_slurm_hub.commands.count("sbatch"), rest_slurm_hub.commands.count("scancel")
    rest_hub.stop()
    assert all(job_details(job)["JobState"] == "RUNNING" for job in jobs.values())
    rest_hub.start()
    assert process_ids(rest_hub.pid)[0] == {pwd.getpwnam(HUB_USER).pw_uid}
    for user, server in servers:
        rest_hub.wait_ready(user, server, timeout=30)
        assert rest_hub.job_id(user, server) == jobs[user, server]
        reachable(rest_hub, user, server)
    assert rest_slurm_hub.commands.count("sbatch") == submits
    assert rest_slurm_hub.commands.count("scancel") == cancels


def test_expired_tokens_are_renewed_and_no_token_is_written_anywhere(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    refused = refused_tokens()
    first = start(rest_hub, "alice", CPU)
    time.sleep(TOKEN_LIFETIME + 1)  # every token the hub held for alice has expired
    rest_hub.stop_server("alice")  # a cancel as alice: needs a new token
    assert job_details(first)["JobState"] == "CANCELLED"
    second = start(rest_hub, "alice", CPU)
    reachable(rest_hub, "alice")
    # The hub renewed before expiry: slurmctld never saw an expired (or otherwise bad) token.
    assert refused_tokens() == refused

    places = {"the hub log (DEBUG)": rest_hub.log_path.read_text(errors="replace")}
    for job_id in (first, second):
        shown = subprocess.run(["scontrol", "show", "job", "-dd", job_id], capture_output=True, text=True, check=True)
        places[f"job {job_id}'s script"] = batch_script(job_id)
        places[f"scontrol show job -dd {job_id}"] = shown.stdout
        places[f"job {job_id}'s log"] = Path(job_details(job_id)["StdOut"]).read_text(errors="replace")
        places.update({path: data.decode(errors="replace") for path, data in stored_job_files(job_id).items()})
    assert any(place.endswith("/environment") for place in places), places.keys()  # slurmctld's copy of the env
    for place, text in places.items():
        assert not JWT.search(text), f"a token is in {place}"
        assert "SLURM_JWT" not in text, f"SLURM_JWT is in {place}"


def test_slurmrestd_down_for_two_intervals_stops_no_server(rest_slurm_hub: SlurmHub, rest_hub: Hub) -> None:
    servers = [("alice", ""), ("bob", "")]
    jobs = {key: start(rest_hub, key[0], CPU, server=key[1]) for key in servers}
    cluster("stop-rest")
    try:
        time.sleep(2 * rest_slurm_hub.poll_interval + 2)
        for user, server in servers:
            assert (rest_hub.server_model(user, server) or {}).get("ready"), f"{user}/{server} was marked stopped"
        began = time.monotonic()
        response = rest_hub.spawn("carol", CPU)
        took = time.monotonic() - began
        assert response.status_code == 503, response.text
        message = response.json()["message"]
        assert "REST API" in message and "not answering" in message, message
        assert took < 5, f"the spawn took {took:.1f} s to fail"
        assert user_jobs("carol") == []
    finally:
        cluster("start-rest")
    lists = rest_slurm_hub.commands.count("squeue")
    wait_for(lambda: rest_slurm_hub.commands.count("squeue") > lists, 3 * rest_slurm_hub.poll_interval, "a GET /jobs")
    for user, server in servers:
        assert rest_hub.server_model(user, server)["ready"]
        assert job_details(jobs[user, server])["JobState"] == "RUNNING"
    start(rest_hub, "carol", CPU)
    reachable(rest_hub, "carol")


@pytest.fixture
def bobs_job(slurm_cluster: None) -> Iterator[str]:
    """A plain batch job of bob's, running."""
    cancel_test_jobs()
    job_id = plain_job("bob", "bobs-own", ["-p", "cpu", "--mem=500"])
    yield job_id
    cancel_test_jobs()


async def test_a_token_minted_for_alice_cannot_cancel_bobs_job(bobs_job: str) -> None:
    """Slurm refuses (22.05: HTTP 500, error 2002, not 403); the transport carries its words."""
    config = Config()
    config.SlurmBackend.transport = "rest"
    config.SlurmRest.url = REST_URL
    config.SlurmRest.token_source = "key"
    config.SlurmRest.jwt_key_file = str(CLUSTER_JWT_KEY)
    backend = SlurmBackend(config=config)
    await backend.ready()
    try:
        with pytest.raises(CommandFailed, match="Access/permission denied"):
            await backend.slurm.cancel("alice", bobs_job)
        assert job_details(bobs_job)["JobState"] == "RUNNING"
        await backend.slurm.cancel("bob", bobs_job)  # the same transport, as the owner: done
    finally:
        await backend.shutdown()
    wait_for(lambda: job_details(bobs_job)["JobState"] == "CANCELLED", 30, f"job {bobs_job} to be cancelled")
