"""The host/port endpoint: only host and port, only with the starting server's own token."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .conftest import SlurmHub
from .hub import Hub, wait_for
from .slurm import batch_script, exported, hold_gpus, job_details, server_environment

ENDPOINT = "/daas/server-address"
SECRETS = "/daas/server-secrets"


def _redeem(hub: Hub, body: object) -> tuple[int, dict]:
    response = hub.http.post(f"{hub.api_url}{SECRETS}", json=body)
    return response.status_code, response.json() if response.status_code == 200 else {}


def _report(hub: Hub, token: str | None, body: object) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    kwargs = {"content": body} if isinstance(body, (bytes, str)) else {"json": body}
    return hub.http.post(f"{hub.api_url}{ENDPOINT}", headers=headers, **kwargs).status_code


def test_only_the_starting_servers_own_token_and_exact_fields_count(hub: Hub, slurm_hub: SlurmHub) -> None:
    # carol's running server: its token belongs to a server that is not starting.
    assert hub.spawn("carol", {"profile": "cpu"}).status_code in (201, 202)
    hub.wait_ready("carol")
    carol_token = server_environment(hub.job_id("carol"))["JUPYTERHUB_API_TOKEN"]

    blocker = hold_gpus("bob", 2)
    try:
        assert hub.spawn("alice", {"profile": "gpu", "gpus": 1}).status_code == 202

        def submitted() -> str | None:  # the first checkpoint (before sbatch) has no job id yet
            stored = (hub.server_model("alice") or {}).get("state", {}).get("daas") or {}
            return stored.get("state", {}).get("job_id")

        job_id = wait_for(submitted, 60, "job id")
        assert job_details(job_id)["JobState"] == "PENDING"
        # Whoever reads the stored script (an operator) can redeem its secret, once, before the job does.
        secret = exported(batch_script(job_id), "DAAS_BOOTSTRAP")
        assert _redeem(hub, {"secret": secret, "more": 1})[0] == 400
        assert _redeem(hub, [secret])[0] == 400
        assert _redeem(hub, {"secret": "x" + secret})[0] == 403
        status, answer = _redeem(hub, {"secret": secret})
        assert status == 200 and set(answer) == {"env"}
        assert set(answer["env"]) == {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"}
        alice_token = answer["env"]["JUPYTERHUB_API_TOKEN"]
        assert _redeem(hub, {"secret": secret})[0] == 403
        alice_user_token = hub.token_for("alice", ["inherit"])

        assert _report(hub, alice_token, {"host": "vm", "port": 1234, "cmd": ["/bin/sh"]}) == 400
        assert _report(hub, alice_token, {"host": "vm", "port": 1234, "api_token": "x"}) == 400
        assert _report(hub, alice_token, {"port": 1234}) == 400
        assert _report(hub, alice_token, {"host": "vm;id", "port": 1234}) == 400
        assert _report(hub, alice_token, {"host": "vm", "port": "1234"}) == 400
        assert _report(hub, alice_token, {"host": "vm", "port": 70000}) == 400
        assert _report(hub, alice_token, "not json") == 400
        # Only names of the server's own data locations (this one has none), never text for the person.
        assert _report(hub, alice_token, {"host": "vm", "port": 1234, "unreachable_data": ["20231234/raw"]}) == 400
        assert _report(hub, alice_token, {"host": "vm", "port": 1234, "unreachable_data": ["<b>hi</b>"]}) == 400
        # Well-formed, but the job is not running anywhere yet: 409. A job's reports query Slurm at most
        # once per busy_interval (1 s), besides the busy poller's own query per second (each used to run one).
        before = len(slurm_hub.commands.entries("squeue"))
        started = time.monotonic()
        for _ in range(8):
            assert _report(hub, alice_token, {"host": "vm", "port": 1234}) == 409
        elapsed = time.monotonic() - started
        queries = len(slurm_hub.commands.entries("squeue")) - before
        assert queries <= 2 * elapsed + 3, (queries, elapsed)
        assert _report(hub, carol_token, {"host": "vm", "port": 1234}) == 403
        assert _report(hub, alice_user_token, {"host": "vm", "port": 1234}) == 403
        assert _report(hub, None, {"host": "vm", "port": 1234}) == 403
        assert hub.server_model("alice")["ready"] is False
    finally:
        subprocess.run(["scancel", blocker], check=True)

    # The job's own redemption now fails: the server never gets a token, and the job log says why.
    events = hub.progress("alice")
    assert events[-1].get("failed"), events
    log = Path(job_details(job_id)["StdOut"]).read_text()
    assert "no tokens for this server" in log and "403" in log, log[-2000:]

    assert hub.spawn("alice", {"profile": "gpu", "gpus": 1}).status_code in (201, 202)
    model = hub.wait_ready("alice")
    alice_token = server_environment(hub.job_id("alice"))["JUPYTERHUB_API_TOKEN"]
    target = hub.routes()["/user/alice/"]["target"]
    assert target.startswith("http://127.0.0.1:")
    assert model["url"] == "/user/alice/"
    response = hub.http.get(
        f"{hub.url}/user/alice/api/status",
        headers={"Authorization": f"token {hub.token_for('alice', ['access:servers!user=alice'])}"},
    )
    assert response.status_code == 200

    # Once running, the address is fixed: a new report is refused and the route stays.
    assert _report(hub, alice_token, {"host": "vm", "port": 1}) == 403
    assert hub.routes()["/user/alice/"]["target"] == target
