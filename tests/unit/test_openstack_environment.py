"""A VM's environment: the spawner's, the site's variables for VMs over it, the backend's own last, no token."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from traitlets import TraitError

from daas_spawner.backends.openstack.backend import OpenStackBackend
from daas_spawner.backends.openstack.cloud_init import environment_file


def launch(env: dict[str, str], profile_env: dict[str, str] | None = None) -> SimpleNamespace:
    options = SimpleNamespace(
        profile=SimpleNamespace(id="vm", env=profile_env or {}),
        environment=SimpleNamespace(prefix=None),
        summary=lambda: {"profile": "vm"},
    )
    return SimpleNamespace(
        username="alice", env=env, bootstrap="one-time", options=options, mounts=(), data_locations=None
    )


def test_the_vm_reports_its_own_address_and_runs_as_the_person() -> None:
    backend = OpenStackBackend(environment={"DAAS_DASK_URL": "http://10.1.0.1/services/daas-dask/"})
    env = backend._env(launch({"JUPYTERHUB_API_URL": "https://hub.example.org/hub/api", "PATH": "/usr/bin"}))
    assert env["DAAS_REPORT_ROUTE"] == "1"  # the address it reaches the hub from: its own
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == ("alice", "alice", "/home/alice")
    assert env["DAAS_BOOTSTRAP"] == "one-time" and "JUPYTERHUB_API_TOKEN" not in env
    assert env["DAAS_DASK_URL"] == "http://10.1.0.1/services/daas-dask/"
    assert env["PATH"] == "/usr/bin"  # no environment prefix: the image's
    assert json.loads(env["DAAS_OPTIONS"]) == {"profile": "vm"}


def test_the_profiles_variables_go_into_the_vms_environment_file_over_the_sites() -> None:
    backend = OpenStackBackend(environment={"OMP_NUM_THREADS": "8"})
    env = backend._env(launch({"LANG": "C.UTF-8"}, {"OMP_NUM_THREADS": "2", "GREETING": 'say "$hi"'}))
    assert (env["OMP_NUM_THREADS"], env["LANG"]) == ("2", "C.UTF-8")
    assert 'GREETING="say \\"\\$hi\\""' in environment_file(env).splitlines()  # systemd reads it as written


@pytest.mark.parametrize("name", ["DAAS_REPORT_ROUTE", "USER", "JUPYTERHUB_API_TOKEN", "DAAS_BOOTSTRAP"])
def test_the_hubs_and_the_backends_variables_are_refused(name: str) -> None:
    with pytest.raises(TraitError, match=f"environment: {name} are set by the hub or the backend"):
        OpenStackBackend(environment={name: "x"})
