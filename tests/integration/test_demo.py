"""The README's demo command as a person uses it: default ports, log in, pick a profile, JupyterLab, Ctrl-C."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import ARTIFACTS, REPO
from .oidc import complete_login
from .process import LoggedProcess, free_port, wait_for

DEFAULT_PORT = 8000  # the README's demo: its parts take 8000-8004
PORT_VARIABLES = {
    "public": "DAAS_DEMO_PORT",
    "proxy API": "DAAS_DEMO_PROXY_API_PORT",
    "data service": "DAAS_DEMO_DATA_PORT",
    "identity provider": "DAAS_DEMO_OIDC_PORT",
    "hub": "DAAS_DEMO_HUB_PORT",
}


def demo_ports(public: int) -> dict[str, int]:
    """The ports run.sh gives each part of the demo, counted up from the public one (see its header)."""
    return {what: public + offset for offset, what in enumerate(PORT_VARIABLES)}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def leftovers(ports: dict[str, int]) -> list[str]:
    """What of a demo still runs: a listener on its ports, a process of its service user or of its tree."""
    found = [f"{what} port {port} still answers" for what, port in ports.items() if listening(port)]
    marker = f"DAAS_DEMO_PORT={ports['public']}".encode()
    demo_uid = next((int(line.split(":")[2]) for line in open("/etc/passwd") if line.startswith("daas-demo:")), None)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            uid = proc.stat().st_uid
        except OSError:
            continue  # gone meanwhile
        if marker in environ or (demo_uid is not None and uid == demo_uid):
            found.append(f"process {proc.name}: {cmdline[:200]}")
    return found


class Demo:
    """examples/demo/run.sh as a person runs it: started from a terminal, stopped with Ctrl-C."""

    def __init__(self, flags: list[str]) -> None:
        env = {name: value for name, value in os.environ.items() if name not in PORT_VARIABLES.values()}
        env["DAAS_DEMO_PASSWORD"] = "demo-test"
        self.ports = demo_ports(DEFAULT_PORT)  # as the README runs it: the default ports
        self.port = self.ports["public"]
        self.url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log = ARTIFACTS / f"demo{''.join(flags) or '-local'}.log"
        self.log.unlink(missing_ok=True)
        self.process = LoggedProcess("the demo", self.log)
        # SIGINT at its default, as a terminal starts it, also where the tests run as a background job
        # (which ignores SIGINT, and a script cannot trap a signal ignored when it started).
        run_sh = ["bash", str(REPO / "examples" / "demo" / "run.sh"), *flags]
        self.process.start(["env", "--default-signal=INT", *run_sh], env=env)

    def wait_up(self) -> None:
        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.process.wait_answering(up, 300)

    def interrupt(self, timeout: float = 120) -> int:
        """Ctrl-C: SIGINT to the script's process group, as a terminal sends it; the script's exit status."""
        assert self.process.process is not None
        os.killpg(self.process.process.pid, signal.SIGINT)
        try:
            return self.process.process.wait(timeout)  # a guard against a hang, not a time limit
        finally:
            self.process.stop(5, whole_group=True)


@pytest.fixture
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    running = Demo(request.param)
    try:
        running.wait_up()
        yield running
    finally:
        if running.process.process is not None:
            running.interrupt()
    assert_nothing_left(running.ports)


def assert_nothing_left(ports: dict[str, int]) -> None:
    try:
        wait_for(lambda: not leftovers(ports), 30, "the demo's processes to end")
    except AssertionError:
        raise AssertionError(f"left running: {leftovers(ports)}") from None


def _spawn_through_the_form(
    demo: Demo, user: str, profile: str, oidc: bool = False, shows: str = "", data: str = ""
) -> str:
    with httpx.Client(base_url=demo.url, follow_redirects=True, timeout=60) as client:
        if oidc:
            response = complete_login(client, client.get("/hub/oauth_login", follow_redirects=False), user, "demo-test")
        else:
            client.get("/hub/login")
            response = client.post(
                "/hub/login", data={"username": user, "password": "demo-test", "_xsrf": client.cookies.get("_xsrf")}
            )
        assert response.status_code == 200
        page = client.get("/hub/spawn")
        assert f'value="{profile}"' in page.text
        assert shows in page.text
        action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', page.text, re.DOTALL).group(1))
        response = client.post(action, data={"profile": profile})
        assert response.status_code == 200, response.text[:500]

        def lab() -> str | None:
            page = client.get(f"/user/{user}/lab")
            return page.text if page.status_code == 200 and "<title>JupyterLab</title>" in page.text else None

        page = wait_for(lab, 180, f"JupyterLab for {user}", interval=1)
        if data:  # the proposal's data: linked into the server, and browsable in the data service
            listing = client.get(f"/user/{user}/api/contents/data/{data}/raw")
            assert listing.status_code == 200, listing.text[:300]
            assert "scan_0001.nxs" in listing.text
            nexus = client.get(f"/services/daas-data/view/{data}/raw/scan_0001.nxs")
            assert nexus.status_code == 200 and "NXentry" in nexus.text, nexus.text[:300]
        return page


@pytest.mark.parametrize("demo", [[]], indirect=True)
def test_demo_local(demo: Demo) -> None:
    assert "JupyterLab" in _spawn_through_the_form(demo, "scientist", "lab")
    assert demo.interrupt() == 130  # Ctrl-C: the script stops the hub, its server and proxy (fixture: nothing left)


@pytest.mark.parametrize("demo", [["--slurm"]], indirect=True)
def test_demo_on_the_slurm_test_cluster(slurm_cluster: None, demo: Demo) -> None:
    assert "JupyterLab" in _spawn_through_the_form(demo, "bob", "cpu")
    assert "jupyterhub-daas RUNNING" in demo_jobs("bob")
    demo.interrupt()
    assert "jupyterhub-daas" not in demo_jobs("bob", states="PENDING,RUNNING")  # the hub stopped its server


@pytest.mark.parametrize("demo", [["--oidc"]], indirect=True)
def test_demo_with_oidc_login_and_file_proposals(demo: Demo) -> None:
    proposal = "20231234 — Strain in additively manufactured alloys (ID11)"  # from examples/demo/proposals.yaml
    page = _spawn_through_the_form(demo, "alice", "lab", oidc=True, shows=proposal, data="20231234")
    assert "JupyterLab" in page


@pytest.mark.parametrize("demo", [["--slurm", "--oidc"]], indirect=True)
def test_demo_on_slurm_with_oidc_login(slurm_cluster: None, demo: Demo) -> None:
    proposal = "20231234 — Strain in additively manufactured alloys (ID11)"
    page = _spawn_through_the_form(demo, "alice", "cpu", oidc=True, shows=proposal, data="20231234")
    assert "JupyterLab" in page
    assert "jupyterhub-daas RUNNING" in demo_jobs("alice")
    demo.interrupt()
    assert "jupyterhub-daas" not in demo_jobs("alice", states="PENDING,RUNNING")


@pytest.mark.parametrize(
    "taken, listen, says",
    [
        # a port in use, as the identity provider once took the proxy API's: refused before anything starts
        ("proxy API", True, "port {port} (for the proxy API) is in use"),
        # a port bound but not yet listening passes that check: the proxy then fails, and the hub with it
        ("public", False, "Failed to start proxy"),
    ],
)
def test_a_demo_that_cannot_start_says_why_and_leaves_nothing_behind(taken: str, listen: bool, says: str) -> None:
    ports = demo_ports(free_port())
    env = {k: v for k, v in os.environ.items() if k not in PORT_VARIABLES.values()}
    env |= {"DAAS_DEMO_PORT": str(ports["public"]), "DAAS_DEMO_PASSWORD": "demo-test"}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports[taken]))
        if listen:
            squatter.listen()
        result = subprocess.run(
            ["bash", str(REPO / "examples" / "demo" / "run.sh"), "--oidc"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode != 0
    assert says.format(port=ports[taken]) in result.stdout + result.stderr, result.stderr[-3000:]
    assert_nothing_left(ports)


def demo_jobs(user: str, states: str = "all") -> str:
    return subprocess.run(
        ["squeue", "-h", "-u", user, "-t", states, "-o", "%j %T"], capture_output=True, text=True, timeout=30
    ).stdout
