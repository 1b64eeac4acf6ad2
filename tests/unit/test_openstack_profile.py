"""OpenStack profiles: what an admin may write, what a user may choose, and the request that comes out."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pydantic import ValidationError

from daas_spawner.backends.openstack.profile import OpenStackProfile
from daas_spawner.options import OptionsError, UserAccess, resolve_options
from daas_spawner.profiles import load_profiles, parse_profiles

from .conftest import DELETE, set_path


def vm_profile_raw() -> dict:
    """A VM profile with two environments (images), three sizes (one with GPUs) and lifetimes."""
    return {
        "id": "vm",
        "display_name": "Virtual machine",
        "backend": "openstack",
        "environments": [
            {"id": "lab", "display_name": "JupyterLab", "prefix": "/opt/conda"},
            {"id": "desktop", "display_name": "Desktop"},
        ],
        "openstack": {
            "images": {"lab": "daas-jupyter", "desktop": "2b6a1d2c-1a4e-4a3b-9f5e-0d3c2b1a0f9e"},
            "network": "auto",
            "availability_zone": "nova",
            "metadata": {"cost-centre": "ESS-DMSC"},
        },
        "resources": {
            "flavors": [
                {"name": "daas.small", "display_name": "Small"},
                {"name": "daas.large"},
                {"name": "daas.gpu.a100", "display_name": "One A100", "gpus": 1},
            ],
            "walltime": {"choices": ["8:00:00", "1-00:00:00"], "default": "8:00:00", "max": "7-00:00:00"},
        },
    }


def changed(path: str, value) -> dict:
    raw = copy.deepcopy(vm_profile_raw())
    set_path(raw, path, value)
    return raw


@pytest.fixture(scope="module")
def vm() -> OpenStackProfile:
    return OpenStackProfile.model_validate(vm_profile_raw())


def test_the_vm_profile_loads(vm):
    assert [flavor.name for flavor in vm.resources.flavors] == ["daas.small", "daas.large", "daas.gpu.a100"]
    assert vm.openstack.images["desktop"] == "2b6a1d2c-1a4e-4a3b-9f5e-0d3c2b1a0f9e"
    assert vm.resources.walltime.max == 7 * 86400


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("openstack.images.desktop", DELETE, "no image for environment desktop"),
        ("openstack.images.extra", "img", "names no environment of this profile: extra"),
        ("openstack.metadata", {"daas-user": "mallory"}, "keys starting with 'daas' are the backend's"),
        ("openstack.network", "none", None),
        ("openstack.images.lab", "image; rm -rf /", "String should match pattern"),
        ("openstack.security_groups", ["default"], None),
        ("resources.flavors", [], "at least 1 item"),
        ("resources.flavors", [{"name": "a"}, {"name": "a"}], "flavor names must be unique"),
        ("resources.flavors.0.name", "small flavor", "String should match pattern"),
        ("resources.cores", {"max": 4}, "Extra inputs are not permitted"),
        ("environments.0.modules", ["python/3.11"], "modules are for Slurm"),
    ],
)
def test_what_an_admin_may_write(path, value, message):
    raw = changed(path, value)
    if message is None:
        OpenStackProfile.model_validate(raw)
        return
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OpenStackProfile.model_validate(raw)


def test_security_groups_need_a_network():
    raw = changed("openstack.network", "none")
    raw["openstack"]["security_groups"] = ["default"]
    with pytest.raises(ValidationError, match="security_groups need a network"):
        OpenStackProfile.model_validate(raw)


def test_defaults_are_the_first_flavor_and_the_default_lifetime(vm):
    request = vm.resolve_request({})
    assert (request.flavor, request.walltime_seconds) == ("daas.small", 8 * 3600)
    assert request.summary() == {"flavor": "daas.small", "walltime": "8:00:00"}


def test_a_user_picks_a_flavor_of_the_profile_and_a_lifetime_up_to_its_maximum(vm):
    request = vm.resolve_request({"flavor": "daas.gpu.a100", "walltime": "2-00:00:00"})
    assert (request.flavor, request.walltime_seconds) == ("daas.gpu.a100", 2 * 86400)


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        ({"flavor": "daas.huge"}, "flavor", "is not offered by profile 'vm'"),
        ({"flavor": ["daas.small"]}, "flavor", "must be a string"),
        ({"flavor": "x" * 200}, "flavor", "longer than 128"),
        ({"walltime": "8-00:00:00"}, "walltime", "outside the allowed range"),
        ({"walltime": "soon"}, "walltime", "is not a duration"),
    ],
)
def test_what_a_user_may_not_choose(vm, given, field, message):
    with pytest.raises(OptionsError, match=message) as err:
        vm.resolve_request(given)
    assert err.value.field == field


def test_options_of_other_backends_are_refused_for_a_vm():
    profiles = parse_profiles({"profiles": [vm_profile_raw()]}, "test")
    with pytest.raises(OptionsError, match="is not offered by profile 'vm'") as err:
        resolve_options({"profile": "vm", "cores": "4"}, profiles, UserAccess())
    assert err.value.field == "cores"
    resolved = resolve_options(
        {"profile": "vm", "flavor": "daas.large", "environment": "desktop"}, profiles, UserAccess()
    )
    assert resolved.summary() == {
        "profile": "vm",
        "environment": "desktop",
        "flavor": "daas.large",
        "walltime": "8:00:00",
    }


def test_the_example_file_loads():
    profiles = load_profiles(Path(__file__).resolve().parents[2] / "profiles" / "openstack.yaml")
    assert [profile.id for profile in profiles.profiles] == ["vm", "vm-gpu"]
    vm = profiles.get("vm").resolve_request({"flavor": "daas.large", "walltime": "3-00:00:00"})
    assert (vm.flavor, vm.walltime_seconds, vm.openstack.security_groups) == ("daas.large", 3 * 86400, ["daas-jupyter"])
    assert profiles.get("vm-gpu").resolve_request({}).flavor == "daas.gpu.a100"
