"""The embedded local backend behind a real hub: `spawner_class = "daas"` with its defaults."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from .conftest import running_local_hub
from .hub import VENV_BIN, Hub


@pytest.fixture(scope="module")
def local_hub() -> Iterator[Hub]:
    """Default profiles (one local JupyterLab); servers run as the Unix user via sudo."""
    yield from running_local_hub("daas-local-", f"{VENV_BIN}/jupyterhub-singleuser")


def test_local_spawn_with_empty_body(local_hub: Hub) -> None:
    assert local_hub.spawn("alice", {}).status_code in (201, 202)
    model = local_hub.wait_ready("alice", timeout=90)
    assert model["state"]["daas"]["backend"] == "local"
    pid = model["state"]["daas"]["state"]["pid"]
    owner = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    assert owner in ("alice", "root")  # sudo itself is root-owned; its child runs as alice
    children = subprocess.run(["pgrep", "-u", "alice", "-f", "jupyterhub-singleuser"], capture_output=True, text=True)
    assert children.stdout.split(), "no single-user server runs as alice"
    token = local_hub.token_for("alice", ["access:servers!user=alice"])
    response = local_hub.http.get(f"{local_hub.url}/user/alice/api/status", headers={"Authorization": f"token {token}"})
    assert response.status_code == 200
    local_hub.stop_server("alice")
    assert subprocess.run(["pgrep", "-u", "alice", "-f", "jupyterhub-singleuser"]).returncode == 1


def test_local_profile_refuses_scheduler_options(local_hub: Hub) -> None:
    response = local_hub.spawn("alice", {"profile": "local", "cores": 4})
    assert response.status_code == 400
    assert "cores:" in response.json()["message"]
    assert local_hub.server_model("alice") is None
    # JupyterHub keeps a request's options for the next request without any: refused ones must not stay.
    stored = local_hub.api("GET", "/users/alice?include_stopped_servers=1").json()["servers"]
    assert not (stored.get("", {}) or {}).get("user_options")
    assert local_hub.spawn("alice", {}).status_code in (201, 202)  # an empty body: the defaults, not the refused
    local_hub.wait_ready("alice", timeout=90)
    local_hub.stop_server("alice")


def test_options_of_an_earlier_spawn_are_not_reused(local_hub: Hub) -> None:
    assert local_hub.spawn("alice", {"profile": "local"}).status_code in (201, 202)
    local_hub.wait_ready("alice", timeout=90)
    local_hub.stop_server("alice")
    stored = local_hub.api("GET", "/users/alice?include_stopped_servers=1").json()["servers"]
    assert not (stored.get("", {}) or {}).get("user_options")
