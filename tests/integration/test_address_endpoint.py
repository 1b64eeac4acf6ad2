"""The host/port endpoint: only host and port, only with the starting server's own token."""

from __future__ import annotations

import re
import subprocess
import time

from .conftest import SlurmHub
from .hub import Hub, wait_for
from .slurm import batch_script, hold_gpus, job_details

ENDPOINT = "/daas/server-address"


def _server_token(job_id: str) -> str:
    match = re.search(r"^export JUPYTERHUB_API_TOKEN='?([0-9a-f]+)'?$", batch_script(job_id), re.MULTILINE)
    assert match, "no token in the batch script"
    return match.group(1)


def _report(hub: Hub, token: str | None, body: object) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    kwargs = {"content": body} if isinstance(body, (bytes, str)) else {"json": body}
    return hub.http.post(f"{hub.api_url}{ENDPOINT}", headers=headers, **kwargs).status_code


def test_only_the_starting_servers_own_token_and_exact_fields_count(hub: Hub, slurm_hub: SlurmHub) -> None:
    # carol's running server: its token belongs to a server that is not starting.
    assert hub.spawn("carol", {"profile": "cpu"}).status_code in (201, 202)
    hub.wait_ready("carol")
    carol_token = _server_token(hub.job_id("carol"))

    blocker = hold_gpus("bob", 2)
    try:
        assert hub.spawn("alice", {"profile": "gpu", "gpus": 1}).status_code == 202
        job_id = wait_for(lambda: (hub.server_model("alice") or {}).get("state", {}).get("daas"), 60, "job id")
        job_id = job_id["server"]["job_id"]
        assert job_details(job_id)["JobState"] == "PENDING"
        alice_token = _server_token(job_id)
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

    model = hub.wait_ready("alice")
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
