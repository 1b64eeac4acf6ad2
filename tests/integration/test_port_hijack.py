"""A port taken between the moment it is picked and the moment the server binds it (issue #14, item 2).

The server here needs SLOW_START_SECONDS before it binds (slow imports on a shared filesystem).
Meanwhile bob, on the same node, learns the port and listens on it first. The hub must never route
alice's browser to bob's process: her spawn fails, saying why, and bob's process gets no request.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import SlurmHub, public_tempdir, running_local_hub, write_slow_start_env
from .hub import Hub
from .process import wait_for
from .slurm import job_details

# bob's listener: answers every request as a Jupyter server would, and writes down each one.
LISTENER = r"""
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as log:
            log.write(self.path + "\n")
        body = b'{"started": "hijacked"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
server = http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), Answer)
print("listening", flush=True)
server.serve_forever()
"""


def starting_server_port(user: str, marker: str) -> int | None:
    """The port a starting server of `user` is to bind (its JUPYTERHUB_SERVICE_URL); None until it runs.

    Another user of the node could learn it by probing; reading it here makes the race certain.
    """
    for proc in Path("/proc").iterdir():
        try:
            if proc.owner() != user or marker not in (proc / "cmdline").read_text(errors="replace"):
                continue
            environ = (proc / "environ").read_text(errors="replace").split("\0")
        except (OSError, KeyError):
            continue
        for item in environ:
            if item.startswith("JUPYTERHUB_SERVICE_URL="):
                return urlsplit(item.split("=", 1)[1]).port or None
    return None


@contextmanager
def listening_as(user: str, port: int, log: Path) -> Iterator[None]:
    log.touch()
    log.chmod(0o666)
    process = subprocess.Popen(
        ["sudo", "-n", "-u", user, "--", sys.executable, "-c", LISTENER, str(port), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "listening"
        yield
    finally:
        subprocess.run(["pkill", "-u", user, "-f", "http.server"], check=False)
        process.wait(timeout=30)


@contextmanager
def spawning(hub: Hub, user: str, options: dict) -> Iterator[Future[httpx.Response]]:
    """Start a spawn without waiting: the hub's POST returns only after up to slow_spawn_timeout (10 s)."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(hub.spawn, user, options)


def failure_message(hub: Hub, user: str, request: Future[httpx.Response]) -> str:
    """Why the spawn failed: the POST's answer if it failed within slow_spawn_timeout, else the progress's."""
    response = request.result(timeout=60)
    if response.status_code >= 400:
        return response.json()["message"]
    assert response.status_code != 201, "the spawn succeeded: the hub routes alice to whoever holds her port"
    assert response.status_code == 202, response.text
    events = hub.progress(user)
    assert events and events[-1].get("failed"), events
    return events[-1]["message"]


def test_on_slurm_a_taken_port_never_gets_the_servers_traffic(slurm_hub: SlurmHub, hub: Hub) -> None:
    requests = slurm_hub.workdir / "bob-listener.log"
    with spawning(hub, "alice", {"profile": "cpu", "environment": "slow-start"}) as request:
        port = wait_for(lambda: starting_server_port("alice", "slow-start-env"), 120, "alice's starting server")
        job_id = hub.job_id("alice")
        with listening_as("bob", port, requests):
            message = failure_message(hub, "alice", request)
            assert f"Slurm job {job_id}" in message
            assert hub.server_model("alice") is None
            assert "/user/alice/" not in hub.routes()
            assert requests.read_text() == "", "the hub sent alice's traffic to bob's process"
    log = Path(job_details(job_id)["StdOut"]).read_text()
    assert f"port {port} was taken by another account" in log, log[-2000:]


@pytest.fixture
def slow_local_hub() -> Iterator[Hub]:
    slow_start = write_slow_start_env(public_tempdir("daas-local-slow-env-") / "slow-start-env")
    yield from running_local_hub("daas-local-slow-", str(slow_start / "bin" / "jupyterhub-singleuser"))


def test_locally_a_taken_port_never_gets_the_servers_traffic(slow_local_hub: Hub) -> None:
    hub = slow_local_hub
    requests = hub.workdir / "bob-listener.log"
    with spawning(hub, "alice", {}) as request:
        port = wait_for(lambda: starting_server_port("alice", "slow-start-env"), 60, "alice's starting server")
        with listening_as("bob", port, requests):
            message = failure_message(hub, "alice", request)
            assert f"port {port} was taken by another account" in message
            assert hub.server_model("alice") is None
            assert requests.read_text() == "", "the hub sent alice's traffic to bob's process"
    # Nothing of the refused server is left running.
    wait_for(
        lambda: subprocess.run(["pgrep", "-u", "alice", "-f", "slow-start-env"]).returncode == 1,
        30,
        "alice's refused server to end",
    )
