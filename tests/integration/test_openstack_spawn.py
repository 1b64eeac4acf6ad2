"""The OpenStack backend on a real Keystone, Nova, Placement and Glance (tests/cluster/openstack.sh): spawns by
REST and form, what the VM carries and what it must not, refusals, the cloud's faults, one list per interval.
The boot agent plays the VMs, so JupyterLab behind a spawn is real (os_site.py).
"""

from __future__ import annotations

import json
import pwd
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from .html_form import browser_submission, choose
from .hub import Hub
from .openstack import nova_requests, wait_booted
from .os_site import CPU, GPU, OpenStackSite
from .process import wait_for


@pytest.fixture(scope="module")
def site() -> Iterator[OpenStackSite]:
    site = OpenStackSite()
    yield site
    site.close()


@pytest.fixture
def hub(site: OpenStackSite) -> Iterator[Hub]:
    yield site.hub
    site.stop_all_servers()


def process_environment(address: str) -> dict[str, str]:
    """The environment of the VM's server process (the one bound to the VM's address)."""
    for entry in Path("/proc").iterdir():
        try:
            raw = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        if env.get("DAAS_BIND_IP") == address and "JUPYTERHUB_API_TOKEN" in env:
            return env
    raise AssertionError(f"no server process with DAAS_BIND_IP={address}")


def check_vm(site: OpenStackSite, username: str, flavor: str, image: str) -> dict:
    """The user's VM as the cloud describes it: flavor, image, tags, owner; no token where lists show it."""
    admin = site.admin
    server = admin.server_of(username)
    assert server["flavor"]["original_name"] == flavor
    assert server["image"]["id"] == admin.image_id(image)
    assert server["tags"] == ["daas"]
    metadata = server["metadata"]
    assert (metadata["daas-hub"], metadata["daas-user"], metadata["daas-server"]) == ("daas", username, username)
    assert metadata["cost-centre"] == "daas-tests"
    vm = wait_booted(server["id"])
    env = process_environment(vm.address())
    token = env["JUPYTERHUB_API_TOKEN"]
    listed = json.dumps({key: server[key] for key in ("name", "metadata", "tags", "description")})
    assert token not in listed
    user_data = admin.user_data(server["id"])
    assert token not in user_data and "\nJUPYTERHUB_API_TOKEN=" not in user_data  # no line of server.env
    assert "DAAS_BOOTSTRAP=" in user_data  # only the one-time secret, which is worthless now
    return server


def test_gpu_spawn_via_rest_reaches_jupyterlab_through_the_proxy(site: OpenStackSite, hub: Hub) -> None:
    started = time.time()
    response = hub.spawn("alice", {"profile": GPU, "environment": "desktop", "walltime": "8:00:00"})
    assert response.status_code in (201, 202), response.text
    hub.wait_ready("alice")
    server = check_vm(site, "alice", "daas.gpu.a100", "daas-desktop")
    expires = datetime.fromisoformat(server["metadata"]["daas-expires"]).timestamp()
    assert started + 8 * 3600 - 5 <= expires <= time.time() + 8 * 3600
    vm = wait_booted(server["id"])
    # The proposal's data is mounted by cloud-init, raw read-only.
    mounts = {target: (source, options) for source, target, _, options, *_ in vm.boot()["mounts"]}
    source, options = mounts["/data/proposals/20231234/raw"]
    assert source == f"nfs.daas.test:{site.tree.raw('20231234')}" and options.startswith("ro,")
    assert mounts["/data/proposals/20231234/processed"][1].startswith("rw,")
    # Routed to the VM's own address, which the cloud gives its port; JupyterLab answers through the proxy.
    port = hub.server_model("alice")["state"]["daas"]["start"]["address"]["port"]
    assert hub.routes()["/user/alice/"]["target"] == f"http://{vm.address()}:{port}"
    token = hub.token_for("alice", ["access:servers!user=alice"])
    lab = hub.http.get(f"{hub.url}/user/alice/api/status", headers={"Authorization": f"token {token}"})
    assert lab.status_code == 200, lab.text
    assert "unhandled user_options" not in hub.log_tail(2000)  # the spawner takes them (JupyterHub 5.3+'s warning)
    hub.stop_server("alice")
    assert site.admin.server(server["id"]) is None  # the stop waited until the VM was gone


def test_gpu_spawn_via_the_form(site: OpenStackSite, hub: Hub) -> None:
    with hub.logged_in("bob") as bob:
        page = bob.get("/hub/spawn").text
        assert 'data-flavor="daas.gpu.a100"' in page
        assert "8 vCPUs, 32G, 1 GPU" in " ".join(page.split())  # Nova's flavor, its extra specs' GPU
        action, fields = browser_submission(page)
        fields = choose(fields, profile=GPU, **{f"{GPU}.flavor": "daas.gpu.a100", f"{GPU}.walltime": "1:00:00"})
        response = bob.post(action, data=dict(fields))
        assert response.status_code == 200, response.text[:500]
    hub.wait_ready("bob")
    check_vm(site, "bob", "daas.gpu.a100", "daas-jupyter")


def test_progress_follows_the_vm_in_words(site: OpenStackSite, hub: Hub) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(hub.spawn, "carol", {"profile": CPU})
        wait_for(lambda: hub.server_model("carol"), 10, "the start to begin")
        events = hub.progress("carol", timeout=120)
    messages = [event["message"] for event in events]
    assert "Your VM is running: cloud-init is starting JupyterLab" in messages, messages
    assert events[-1].get("ready"), messages


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"profile": CPU, "flavor": "daas.gpu.a100"}, "flavor: 'daas.gpu.a100' is not offered by profile 'vm-cpu'"),
        ({"profile": CPU, "flavor": "daas.small; rm -rf /"}, "is not offered by profile"),
        ({"profile": CPU, "cores": 4}, "cores: is not offered by profile 'vm-cpu'"),
        ({"profile": CPU, "image": "cirros"}, "image: is not a known option"),
        ({"profile": CPU, "walltime": "2-00:00:00"}, "outside the allowed range"),
        ({"profile": GPU, "flavor": ["daas.gpu.a100"]}, "must be a string"),
    ],
)
def test_bad_options_are_a_400_and_make_no_vm(site: OpenStackSite, hub: Hub, options: dict, words: str) -> None:
    response = hub.spawn("carol", options)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    assert site.admin.servers() == []


def failed_start(hub: Hub, username: str, options: dict) -> str:
    """Spawn, and return why the start failed: the spawn request's answer (a start that fails within
    JupyterHub's slow_spawn_timeout), or the last message of the person's progress page."""
    response = hub.spawn(username, options)
    if response.status_code not in (201, 202):
        assert response.status_code >= 500, response.text
        message = response.json()["message"]
    else:
        events = hub.progress(username, timeout=120)
        assert events[-1].get("failed"), events
        message = events[-1]["message"]
    hub.wait_stopped(username)
    return message


def test_no_valid_host_is_said_in_the_persons_words_and_leaves_no_vm(site: OpenStackSite, hub: Hub) -> None:
    message = failed_start(hub, "carol", {"profile": CPU, "flavor": "daas.huge"})
    assert "The cloud has no host with room for this size now (No valid host was found)" in message
    wait_for(lambda: site.admin.servers() == [], 30, "the failed VM to be deleted")


def test_quota_exceeded_is_said_in_the_persons_words_and_leaves_no_vm(site: OpenStackSite, hub: Hub) -> None:
    site.admin.set_quota("daas", instances=0)
    try:
        message = failed_start(hub, "carol", {"profile": CPU})
    finally:
        site.admin.set_quota("daas", instances=100)
    assert "The project's quota for instances is used up" in message
    assert site.admin.servers() == []


def test_ten_vms_cost_one_list_per_interval(site: OpenStackSite, hub: Hub) -> None:
    """With 10 VMs running, the hub's only compute calls are its one tagged list per interval."""
    servers = [f"vm{index}" for index in range(10)]  # alice's named servers
    for server in servers:
        assert hub.spawn("alice", {"profile": CPU}, server).status_code in (201, 202)
    for server in servers:
        hub.wait_ready("alice", server, timeout=240)
    time.sleep(site.interval * 2)  # the starts' busy lists are over
    since = time.time()
    time.sleep(30)
    requests = [r for r in nova_requests(since) if "all_tenants" not in r.path]  # not the tests' or the agent's
    lists = [r for r in requests if r.method == "GET" and r.path.startswith("/v2.1/servers/detail?tags=daas")]
    assert requests == lists, [r.path for r in requests if r not in lists]
    assert 30 / site.interval - 2 <= len(lists) <= 30 / site.interval + 2, len(lists)
    for server in servers:
        hub.api("DELETE", hub.server_path("alice", server))
    for server in servers:
        hub.wait_stopped("alice", server, timeout=120)
    assert site.admin.servers() == []


def test_the_form_shows_the_flavors_and_the_quota(site: OpenStackSite, hub: Hub) -> None:
    with hub.logged_in("alice") as alice:
        answer = alice.get("/hub/api/daas/availability").json()["openstack"]
    flavors = answer["partitions"]
    assert set(flavors) == {"daas.small", "daas.medium", "daas.huge", "daas.gpu.a100"}
    assert (flavors["daas.small"]["vcpus"], flavors["daas.small"]["ram_mb"]) == (2, 4096)
    assert flavors["daas.gpu.a100"]["gpus"] == 1
    assert flavors["daas.small"]["room"] >= 1  # the project's quota leaves room


def test_user_data_is_a_valid_cloud_config_for_the_person(site: OpenStackSite, hub: Hub) -> None:
    assert hub.spawn("alice", {"profile": CPU}).status_code in (201, 202)
    hub.wait_ready("alice")
    server = site.admin.server_of("alice")
    config = yaml.safe_load(site.admin.user_data(server["id"]))
    unit = next(f["content"] for f in config["write_files"] if f["path"].endswith(".service"))
    account = pwd.getpwnam("alice")
    assert f"User={account.pw_uid}\nGroup={account.pw_gid}\n" in unit
    assert config["runcmd"][-1] == ["systemctl", "start", "--no-block", "daas-server.service"]
