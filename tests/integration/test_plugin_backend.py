"""A backend defined entirely under tests/ (tests/plugins) spawns through the real hub, daas_spawner untouched.

The hub finds it by its entry point alone (tests/plugins on its PYTHONPATH holds the dist-info):
its profiles validate as its own profile class, its option is checked by its own resolver,
its form fragment and its availability show on the spawn page, and its request reaches it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from .conftest import public_tempdir
from .html_form import browser_submission, choose
from .hub import VENV_BIN, Hub

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
PROFILES = {
    "default_profile": "sandbox",
    "profiles": [
        {
            "id": "sandbox",
            "display_name": "Sandbox",
            "backend": "sandbox",
            "sandbox": {"greetings": ["hello", "bonjour"]},
            "default_url": "/lab",
        },
        {"id": "local", "display_name": "Local", "backend": "local"},
    ],
}


@pytest.fixture(scope="module")
def sandbox_hub() -> Iterator[Hub]:
    workdir = public_tempdir("daas-plugin-")
    profiles = workdir / "profiles.yaml"
    profiles.write_text(yaml.safe_dump(PROFILES))
    hub = Hub(
        workdir / "hub",
        f"""
        from daas_spawner import load_profiles
        c.DaaSSpawner.profiles = load_profiles("{profiles}")
        c.SandboxBackend.user_prefix = ["sudo", "-E", "-H", "-n", "-u", "{{username}}", "--"]
        c.Spawner.cmd = ["{VENV_BIN}/jupyterhub-singleuser"]
        """,
        env={"PYTHONPATH": str(PLUGINS)},
    )
    hub.start()
    hub.create_users("alice")
    yield hub
    hub.stop()
    subprocess.run(["pkill", "-u", "alice", "-f", "jupyterhub-singleuser"], check=False)


@pytest.fixture
def alice(sandbox_hub: Hub) -> Iterator[httpx.Client]:
    with sandbox_hub.logged_in("alice") as client:
        yield client


def test_the_form_shows_the_plugins_fragment_and_availability(alice: httpx.Client) -> None:
    page = alice.get("/hub/spawn").text
    assert re.findall(r'name="profile"[^>]*value="([^"]+)"', page) == ["sandbox", "local"]
    assert re.findall(r'<option value="(\w+)"', page) == ["hello", "bonjour"]
    assert 'name="sandbox.greeting"' in page
    assert re.search(r'id="daas-sandbox-availability">Sandbox servers running:\s*0<', page)


def test_its_option_is_validated_by_its_own_resolver(sandbox_hub: Hub) -> None:
    for options, field in (
        ({"profile": "sandbox", "greeting": "hola"}, "greeting"),  # not one the admin offers
        ({"profile": "sandbox", "greeting": "hello\n#x"}, "greeting"),
        ({"profile": "sandbox", "cores": 2}, "cores"),  # Slurm's option: not this profile's
        ({"profile": "local", "greeting": "hello"}, "greeting"),  # the plugin's option: not the local profile's
        ({"profile": "sandbox", "colour": "blue"}, "colour"),  # nobody's
    ):
        response = sandbox_hub.spawn("alice", options)
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(f"Invalid server options: {field}: ")
    assert sandbox_hub.server_model("alice") is None


def test_a_form_post_spawns_a_server_told_the_chosen_greeting(sandbox_hub: Hub, alice: httpx.Client) -> None:
    action, fields = browser_submission(alice.get("/hub/spawn").text)
    response = alice.post(action, data=dict(choose(fields, profile="sandbox", sandbox__greeting="bonjour")))
    assert response.status_code == 200, response.text[:500]
    model = sandbox_hub.wait_ready("alice", timeout=90)
    saved = model["state"]["daas"]
    assert saved["backend"] == "sandbox"
    assert saved["options"] == {"profile": "sandbox", "environment": "default", "greeting": "bonjour"}
    assert saved["state"]["greeting"] == "bonjour"
    pid = saved["state"]["pid"]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    environ = Path(f"/proc/{children[0]}/environ").read_bytes().split(b"\0")
    assert b"SANDBOX_GREETING=bonjour" in environ  # the request reached the process
    token = sandbox_hub.token_for("alice", ["access:servers!user=alice"])
    status = sandbox_hub.http.get(
        f"{sandbox_hub.url}/user/alice/api/status", headers={"Authorization": f"token {token}"}
    )
    assert status.status_code == 200
    own = sandbox_hub.token_for("alice", ["inherit"])
    answer = sandbox_hub.http.get(
        f"{sandbox_hub.api_url}/daas/availability", headers={"Authorization": f"token {own}"}
    ).json()
    assert answer == {"sandbox": {"servers_running": 1}}  # the local backend tells nothing
    sandbox_hub.stop_server("alice")
    assert subprocess.run(["pgrep", "-u", "alice", "-f", "jupyterhub-singleuser"]).returncode == 1
