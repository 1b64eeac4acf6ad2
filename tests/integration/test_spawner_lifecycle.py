"""The spawner's lifecycle on the fake backend through a real hub (#15, item 6).

start -> report -> state -> hub restart -> poll -> stop, and a start that a killed hub cut off
between two checkpoints: the next hub resumes it. The fake backend (tests/fake_backend.py) is
the only stand-in; the hub, its database, its proxy and its restarts are real.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..fake_backend import find_process
from .conftest import REPO, public_tempdir
from .hub import Hub, wait_for


class FakeSite:
    """A hub whose local profile runs on the fake backend; the fake's world and call log beside it."""

    def __init__(self) -> None:
        workdir = public_tempdir("daas-fake-")
        plugins = workdir / "plugins"
        plugins.mkdir()
        shutil.copy(REPO / "tests" / "fake_backend.py", plugins / "daas_fake_backend.py")
        self.world = workdir / "world"
        self.hub = Hub(
            workdir / "hub",
            f"""
            c.DaaSSpawner.backend_classes = {{"local": "daas_fake_backend.FakeBackend"}}
            c.FakeBackend.world = "{self.world}"
            c.Spawner.poll_interval = 1
            """,
            env={"PYTHONPATH": str(plugins)},
        )

    def calls(self, what: str) -> list[str]:
        log = self.world / "calls.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if line.split()[0] == what]


@pytest.fixture
def site() -> Iterator[FakeSite]:
    site = FakeSite()
    site.hub.start()
    site.hub.create_users("alice")
    yield site
    site.hub.stop()
    volumes = site.world / "volumes"
    for name in [path.name for path in volumes.iterdir()] if volumes.exists() else []:
        pid = find_process(name)  # what a failed test left running
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)


def _stored(hub: Hub) -> dict:
    return ((hub.server_model("alice") or {}).get("state") or {}).get("daas") or {}


def _proxied_to_the_server(hub: Hub) -> None:
    """The proxy routes alice's URL to the fake's HTTP server (whatever it answers, it says who it is)."""
    response = hub.http.get(f"{hub.url}/user/alice/")
    assert response.headers.get("server", "").startswith("SimpleHTTP"), (response.status_code, response.headers)


def test_start_report_state_restart_poll_stop(site: FakeSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {}).status_code in (201, 202)
    hub.wait_ready("alice", timeout=60)
    stored = _stored(hub)
    assert (stored["backend"], stored["version"]) == ("local", 1)
    state, start = stored["state"], stored["start"]
    assert state["volume"] and state["pid"] and not start["starting"]
    assert start["address"] == {"host": "127.0.0.1", "port": state["port"]}
    assert Path(site.world / "volumes" / state["name"]).is_dir()
    _proxied_to_the_server(hub)
    setups = site.calls("setup")
    assert len(setups) == 1, setups  # once per backend and hub, however many calls

    hub.stop()  # SIGTERM: JupyterHub cancels its tasks at shutdown, and the backend closes
    assert site.calls("close") == [f"close {setups[0].split()[1]}"]
    polls = len(site.calls("poll"))
    hub.start()
    model = hub.wait_ready("alice", timeout=30)
    assert model["state"]["daas"]["state"] == state  # the same server, from stored state alone
    wait_for(lambda: len(site.calls("poll")) > polls, 10, "the next hub to poll")
    assert len(site.calls("setup")) == 2
    _proxied_to_the_server(hub)

    hub.stop_server("alice")
    assert site.calls("stop")[-1] == f"stop {state['name']}"
    assert not Path(site.world / "volumes" / state["name"]).exists()
    assert find_process(state["name"]) is None


def test_a_start_cut_off_between_checkpoints_is_resumed(site: FakeSite) -> None:
    hub, hold = site.hub, site.world / "hold"
    site.world.mkdir(parents=True, exist_ok=True)
    hold.touch()  # the start waits after its volume checkpoint, as a queued job does
    assert hub.spawn("alice", {}).status_code == 202
    wait_for(lambda: _stored(hub).get("state", {}).get("volume"), 30, "the volume checkpoint")
    name = _stored(hub)["state"]["name"]
    hub.kill()
    hub.start()
    wait_for(lambda: site.calls("resume") == [f"resume {name}"], 30, "the next hub to resume the start")
    hold.unlink()
    hub.wait_ready("alice", timeout=60)
    stored = _stored(hub)
    assert stored["state"]["name"] == name and not stored["start"]["starting"]
    assert find_process(name) == stored["state"]["pid"]
    _proxied_to_the_server(hub)
    hub.stop_server("alice")
    assert find_process(name) is None
