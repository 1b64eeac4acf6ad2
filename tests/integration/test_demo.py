"""The README's demo command, as a person would use it: log in, pick a profile, get JupyterLab."""

from __future__ import annotations

import html
import os
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from .conftest import ARTIFACTS, REPO
from .oidc import complete_login
from .process import LoggedProcess, free_port, wait_for


class Demo:
    def __init__(self, mode: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log = ARTIFACTS / f"demo-{mode}.log"
        flags = {"local": [], "slurm": ["--slurm"], "oidc": ["--oidc"]}[mode]
        args = ["bash", str(REPO / "examples" / "demo" / "run.sh"), *flags]
        env = dict(
            os.environ,
            DAAS_DEMO_PORT=str(self.port),
            DAAS_DEMO_OIDC_PORT=str(free_port()),
            DAAS_DEMO_DATA_PORT=str(free_port()),
            DAAS_DEMO_PASSWORD="demo-test",
        )
        self.log.unlink(missing_ok=True)
        self.process = LoggedProcess("the demo", self.log)
        self.process.start(args, env=env)

    def wait_up(self) -> None:
        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.process.wait_answering(up, 300)

    def stop(self) -> None:
        self.process.stop(60, whole_group=True)


@pytest.fixture
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    running = Demo(request.param)
    try:
        running.wait_up()
        yield running
    finally:
        running.stop()


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


@pytest.mark.parametrize("demo", ["local"], indirect=True)
def test_demo_local(demo: Demo) -> None:
    assert "JupyterLab" in _spawn_through_the_form(demo, "scientist", "lab")


@pytest.mark.parametrize("demo", ["slurm"], indirect=True)
def test_demo_on_the_slurm_test_cluster(slurm_cluster: None, demo: Demo) -> None:
    assert "JupyterLab" in _spawn_through_the_form(demo, "bob", "cpu")
    jobs = subprocess.run(["squeue", "-h", "-u", "bob", "-o", "%j %T"], capture_output=True, text=True).stdout
    assert "jupyterhub-daas RUNNING" in jobs


@pytest.mark.parametrize("demo", ["oidc"], indirect=True)
def test_demo_with_oidc_login_and_file_proposals(demo: Demo) -> None:
    proposal = "20231234 — Strain in additively manufactured alloys (ID11)"  # from examples/demo/proposals.yaml
    page = _spawn_through_the_form(demo, "alice", "lab", oidc=True, shows=proposal, data="20231234")
    assert "JupyterLab" in page
