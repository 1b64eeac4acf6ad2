"""What the hub tells Nova about a VM (names, tags, metadata, body) and what Nova's answers mean for the person."""

from __future__ import annotations

import base64
import json

import pytest

from daas_spawner.backends.base import ProgressEvent
from daas_spawner.backends.openstack.availability import flavor_availability, flavor_gpus, room_for
from daas_spawner.backends.openstack.profile import OpenStackSettings
from daas_spawner.backends.openstack.servers import (
    EXPIRES,
    ServerInputs,
    expires_at,
    server_body,
    server_name,
)
from daas_spawner.backends.openstack.status import end_reason, fault_in_words, progress_event, refusal_in_words

SETTINGS = OpenStackSettings(images={"lab": "daas-jupyter"}, metadata={"cost-centre": "ESS"})


def inputs(**changes) -> ServerInputs:
    values = {
        "name": "daas-alice-exp1",
        "hub_tag": "daas",
        "username": "alice",
        "server": "alice/exp1",
        "profile": "vm",
        "start_id": "0123456789abcdef",
        "expires_at": 1_800_000_000.0,
        "image_id": "img-id",
        "flavor_id": "flv-id",
        "settings": SETTINGS,
        "user_data": "#cloud-config\nDAAS_BOOTSTRAP=the-one-time-secret\n",
    }
    return ServerInputs(**(values | changes))


@pytest.mark.parametrize(
    ("username", "server", "name"),
    [
        ("alice", "alice", "daas-alice"),
        ("alice", "alice/Exp 1", "daas-alice-exp-1"),
        ("a.b@facility.eu", "a.b@facility.eu/x", "daas-a-b-facility-eu-x"),
        ("u" * 80, "u" * 80, "daas-" + "u" * 58),
    ],
)
def test_server_names_are_host_names(username, server, name):
    assert server_name(username, server) == name


def test_the_body_names_hub_owner_start_and_end_and_carries_user_data_only_encoded():
    body = server_body(inputs())
    assert body["tags"] == ["daas"]
    assert body["networks"] == "auto"
    assert (body["imageRef"], body["flavorRef"], body["name"]) == ("img-id", "flv-id", "daas-alice-exp1")
    assert body["metadata"] == {
        "cost-centre": "ESS",
        "daas-hub": "daas",
        "daas-user": "alice",
        "daas-server": "alice/exp1",
        "daas-profile": "vm",
        "daas-start": "0123456789abcdef",
        EXPIRES: "2027-01-15T08:00:00+00:00",
    }
    assert base64.b64decode(body["user_data"]).decode() == inputs().user_data
    assert "availability_zone" not in body and "security_groups" not in body
    visible = json.dumps({key: value for key, value in body.items() if key != "user_data"})
    assert "the-one-time-secret" not in visible  # names, tags, metadata and description are listed to the project


def test_a_named_network_security_groups_and_zone():
    settings = OpenStackSettings(
        images={"lab": "x"},
        network="6e3f0c4a-0d5b-4e0c-9b8e-2f3a4b5c6d7e",
        security_groups=["jupyter"],
        availability_zone="az1",
    )
    body = server_body(inputs(settings=settings))
    assert body["networks"] == [{"uuid": "6e3f0c4a-0d5b-4e0c-9b8e-2f3a4b5c6d7e"}]
    assert body["security_groups"] == [{"name": "jupyter"}]
    assert body["availability_zone"] == "az1"


def test_the_end_of_a_lifetime_is_read_back_from_metadata():
    assert expires_at(server_body(inputs())["metadata"]) == 1_800_000_000.0
    assert expires_at({}) is None
    assert expires_at({EXPIRES: "soon"}) is None


@pytest.mark.parametrize(
    ("server", "event"),
    [
        (None, None),
        (
            {"status": "BUILD", "OS-EXT-STS:task_state": "scheduling"},
            ProgressEvent(35, "The cloud is finding a host for your VM"),
        ),
        ({"status": "BUILD", "OS-EXT-STS:task_state": "spawning"}, ProgressEvent(50, "Your VM is booting")),
        (
            {"status": "BUILD", "OS-EXT-STS:task_state": "something-new"},
            ProgressEvent(30, "Your VM is queued in the cloud"),
        ),
        ({"status": "ACTIVE"}, ProgressEvent(60, "Your VM is running: cloud-init is starting JupyterLab")),
    ],
)
def test_progress_follows_status_and_task_state(server, event):
    assert progress_event(server) == event


def test_ends_in_the_persons_words():
    assert end_reason({"status": "ACTIVE"}) is None
    assert end_reason({"status": "BUILD"}) is None
    assert end_reason(None) == "your VM is gone from the cloud (deleted outside the hub)"
    assert end_reason({"status": "SHUTOFF"}) == "your VM was shut down outside the hub"
    no_host = {
        "status": "ERROR",
        "fault": {"code": 500, "message": "No valid host was found. There are not enough hosts"},
    }
    assert "choose a smaller size, or try again later" in end_reason(no_host)
    odd = {
        "status": "ERROR",
        "fault": {"message": "Build of instance aborted: token gAAAAABlc2VjcmV0LXRva2VuLXZhbHVlLWhlcmUtMTIz"},
    }
    assert "gAAAA" not in end_reason(odd)  # nothing token-like is repeated to the person
    assert fault_in_words(None) == "the cloud could not create your VM (no reason given)"


def test_refusals_in_the_persons_words():
    quota = json.dumps(
        {
            "forbidden": {
                "code": 403,
                "message": "Quota exceeded for cores: Requested 16, but already used 8 of 20 cores",
            }
        }
    )
    assert refusal_in_words(403, quota).startswith("The project's quota for cores is used up")
    assert "please tell the facility's support" in refusal_in_words(
        400, '{"badRequest": {"message": "Invalid imageRef"}}'
    )
    assert "try again later" in refusal_in_words(503, "<html>Service Unavailable</html>")


@pytest.mark.parametrize(
    ("specs", "gpus"),
    [
        ({}, 0),
        ({"resources:VGPU": "1"}, 1),
        ({"resources1:PGPU": "2", "hw:cpu_policy": "dedicated"}, 2),
        ({"pci_passthrough:alias": "a100:2"}, 2),
        ({"pci_passthrough:alias": "a100:1, t4"}, 2),
    ],
)
def test_gpus_are_read_from_extra_specs(specs, gpus):
    assert flavor_gpus(specs) == gpus


def test_room_left_by_the_quota():
    small = {"vcpus": 2, "ram": 4096}
    limits = {
        "maxTotalInstances": 10,
        "totalInstancesUsed": 3,
        "maxTotalCores": 20,
        "totalCoresUsed": 14,
        "maxTotalRAMSize": 51200,
        "totalRAMUsed": 8192,
    }
    assert room_for(small, limits) == 3  # cores: 6 left
    assert room_for(small, {"maxTotalCores": -1, "maxTotalInstances": -1, "maxTotalRAMSize": -1}) is None
    assert room_for(small, limits | {"totalCoresUsed": 25}) == 0


def test_flavors_are_found_by_name_and_by_id():
    flavors = [
        {"id": "f1", "name": "daas.gpu", "vcpus": 8, "ram": 32768, "disk": 20, "extra_specs": {"resources:VGPU": "1"}}
    ]
    answer = flavor_availability(flavors, {})
    assert answer["f1"] == answer["daas.gpu"]
    assert answer["daas.gpu"].as_dict() == {"vcpus": 8, "ram_mb": 32768, "gpus": 1, "disk_gb": 20, "room": None}
