"""The life of OpenStack servers across hub restarts and cloud faults (tests/cluster/openstack.sh): re-attach,
VMs deleted outside the hub, lifetimes that end while the hub is down, idle servers, orphans, a hub killed
mid-create, and Keystone down. Each test has its own site (hub), so restarts and faults do not leak between tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from .hub import Hub
from .openstack import service, wait_booted
from .os_site import CPU, IDLE, OpenStackSite
from .process import wait_for

INTERVAL = 3.0


@pytest.fixture
def site() -> Iterator[OpenStackSite]:
    site = OpenStackSite(interval=INTERVAL)
    yield site
    site.close()


def reachable(hub: Hub, user: str) -> None:
    token = hub.token_for(user, [f"access:servers!user={user}"])
    response = hub.http.get(f"{hub.url}/user/{user}/api/status", headers={"Authorization": f"token {token}"})
    assert response.status_code == 200, response.text


def last_end(hub: Hub, user: str) -> str:
    """Why the user's server ended, as the hub keeps it for the form (the stopped spawner's state)."""
    response = hub.api("GET", f"/users/{user}?include_stopped_servers=1")
    return response.json()["servers"][""]["state"].get("daas_last_end") or ""


def test_a_hub_restart_re_attaches_and_deletes_nothing(site: OpenStackSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU}).status_code in (201, 202)
    hub.wait_ready("alice")
    before = site.admin.server_of("alice")
    hub.stop()
    hub.start()
    hub.wait_ready("alice")
    time.sleep(INTERVAL * 2)  # a reconciliation has run since the restart
    assert [server["id"] for server in site.admin.servers()] == [before["id"]]
    reachable(hub, "alice")
    hub.stop_server("alice")
    assert site.admin.servers() == []


def test_a_vm_deleted_outside_the_hub_is_stopped_within_an_interval(site: OpenStackSite) -> None:
    hub = site.hub
    assert hub.spawn("bob", {"profile": CPU}).status_code in (201, 202)
    hub.wait_ready("bob")
    site.admin.delete(site.admin.server_of("bob")["id"])
    deleted = time.monotonic()
    hub.wait_stopped("bob", timeout=30)
    assert time.monotonic() - deleted < INTERVAL + 3  # one list, the spawner's poll
    assert "outside the hub" in last_end(hub, "bob")  # gone from the list, or listed as deleted


def test_a_lifetime_that_ends_while_the_hub_is_down_is_enforced_at_its_start(site: OpenStackSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU, "walltime": "0:01:00"}).status_code in (201, 202)
    hub.wait_ready("alice")
    server = site.admin.server_of("alice")
    hub.stop()
    end = datetime.fromisoformat(server["metadata"]["daas-expires"]).timestamp()
    wait_for(lambda: time.time() > end + 1, 90, "the end of the server's lifetime")
    assert site.admin.server(server["id"]) is not None  # no one deleted it while the hub was down
    hub.start()
    hub.wait_stopped("alice", timeout=30)
    site.admin.wait_gone(server["id"], timeout=30)
    assert "reached the end of its lifetime" in last_end(hub, "alice")


def test_the_hub_deletes_the_vm_of_a_server_that_ended_itself_when_idle(site: OpenStackSite) -> None:
    hub = site.hub
    assert hub.spawn("carol", {"profile": IDLE}).status_code in (201, 202)
    hub.wait_ready("carol")
    vm = site.admin.server_of("carol")["id"]
    started = time.monotonic()
    # The server stops itself within about two minutes; the VM stays until the hub, seeing no activity for the
    # timeout, a report interval (30 s) and the server's own check (60 s), ends it.
    hub.wait_stopped("carol", timeout=240)
    waited = time.monotonic() - started
    assert waited >= 60 + 30 + 60 - 10, f"the hub ended the VM after {waited:.0f} s: before the idle time was up"
    assert vm not in [server["id"] for server in site.admin.servers()]
    assert "after 1 min without activity (the idle timeout of profile 'vm-idle')" in last_end(hub, "carol")


def test_a_tagged_vm_no_server_owns_is_deleted_by_the_reconciliation(site: OpenStackSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU}).status_code in (201, 202)  # the backend is in use
    hub.wait_ready("alice")
    admin = site.admin
    orphan = admin.create(
        {
            "name": "daas-nobody",
            "imageRef": admin.image_id("daas-jupyter"),
            "flavorRef": admin.flavor_id("daas.small"),
            "networks": "none",
            "tags": ["daas"],
            "metadata": {"daas-start": "0000000000000000"},
        }
    )
    untagged = admin.create(
        {
            "name": "someone-elses",
            "imageRef": admin.image_id("daas-jupyter"),
            "flavorRef": admin.flavor_id("daas.small"),
            "networks": "none",
        }
    )
    admin.wait_gone(orphan["id"], timeout=INTERVAL * 3 + 10)
    assert admin.server(untagged["id"]) is not None  # not the hub's: never touched
    admin.delete(untagged["id"])
    assert [server["metadata"]["daas-server"] for server in admin.servers()] == ["alice"]
    reachable(hub, "alice")
    assert "no server in the hub's database owns it" in hub.process.log_tail(400)


def test_a_hub_killed_between_create_and_active_leaves_no_orphan(site: OpenStackSite) -> None:
    hub = site.hub
    with ThreadPoolExecutor(1) as pool:
        pool.submit(hub.spawn, "carol", {"profile": CPU})
        created = wait_for(site.admin.servers, 30, "the VM to be created")
        hub.kill()
    assert created[0]["status"] == "BUILD"
    hub.start()
    hub.wait_ready("carol", timeout=120)  # the resumed start re-attached to the VM it made
    assert [server["id"] for server in site.admin.servers()] == [created[0]["id"]]
    wait_booted(created[0]["id"])
    reachable(hub, "carol")
    hub.stop_server("carol")
    assert site.admin.servers() == []


def test_keystone_down_stops_no_server_and_spawns_fail_fast(site: OpenStackSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": CPU}).status_code in (201, 202)
    hub.wait_ready("alice")
    service("keystone", "stop")
    try:
        time.sleep(INTERVAL * 2 + 1)  # two intervals without the cloud
        assert hub.server_model("alice")["ready"]
        started = time.monotonic()
        response = hub.spawn("bob", {"profile": CPU})
        assert response.status_code == 503, response.text  # failed within JupyterHub's slow_spawn_timeout
        assert time.monotonic() - started < 5
        assert "The cloud is not answering" in response.json()["message"]
    finally:
        service("keystone", "start")
    hub.wait_stopped("bob")
    assert hub.server_model("alice")["ready"]
    time.sleep(INTERVAL * 2)
    reachable(hub, "alice")
    hub.stop_server("alice")
