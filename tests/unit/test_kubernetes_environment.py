"""The pod's environment: the spawner's, the site's variables for pods over it, the backend's own last."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from traitlets import TraitError

from daas_spawner.backends.kubernetes.backend import KubernetesBackend

PUBLIC = "https://hub.example.org/services/daas-dask/"
IN_CLUSTER = "http://proxy-public/services/daas-dask/"


def launch(env: dict[str, str], profile_env: dict[str, str] | None = None) -> SimpleNamespace:
    options = SimpleNamespace(
        profile=SimpleNamespace(id="k8s-cpu", env=profile_env or {}),
        environment=SimpleNamespace(prefix="/opt/env"),
        summary=lambda: {"profile": "k8s-cpu"},
    )
    return SimpleNamespace(
        username="alice", env=env, bootstrap="one-time", options=options, mounts=(), data_locations=None
    )


def test_the_sites_pod_variables_replace_the_spawners() -> None:
    spawner_env = {
        "DAAS_DASK_URL": PUBLIC,
        "JUPYTERHUB_API_URL": "http://10.0.0.1:8081/hub/api",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:0/user/alice/",
        "SITE": "kept",
    }
    backend = KubernetesBackend(environment={"DAAS_DASK_URL": IN_CLUSTER, "PATH": "/site/bin"})
    env = backend._env(launch(spawner_env))
    assert env["DAAS_DASK_URL"] == IN_CLUSTER
    assert env["SITE"] == "kept" and env["JUPYTERHUB_API_URL"] == "http://10.0.0.1:8081/hub/api"
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8888/user/alice/"
    assert env["DAAS_BOOTSTRAP"] == "one-time" and env["HOME"] == "/home/alice"
    assert env["PATH"] == "/opt/env/bin:/usr/local/bin:/usr/bin:/bin"  # the environment's prefix wins
    assert json.loads(env["DAAS_OPTIONS"]) == {"profile": "k8s-cpu"}


def test_the_profiles_variables_replace_the_sites_pod_variables() -> None:
    backend = KubernetesBackend(environment={"OMP_NUM_THREADS": "8", "SITE": "pods"})
    env = backend._env(launch({"SITE": "spawner", "LANG": "C.UTF-8"}, {"OMP_NUM_THREADS": "2", "TOOLS": "$HOME/x"}))
    assert (env["OMP_NUM_THREADS"], env["SITE"], env["LANG"]) == ("2", "pods", "C.UTF-8")
    assert env["TOOLS"] == "$HOME/x"  # as written: the container's env has no shell


def test_without_pod_variables_the_spawners_stand() -> None:
    assert KubernetesBackend()._env(launch({"DAAS_DASK_URL": PUBLIC}))["DAAS_DASK_URL"] == PUBLIC


@pytest.mark.parametrize("name", ["JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "DAAS_BOOTSTRAP", "HOME", "DAAS_DATA"])
def test_the_hubs_and_the_backends_variables_are_refused(name: str) -> None:
    with pytest.raises(TraitError, match=f"environment: {name} are set by the hub or the backend"):
        KubernetesBackend(environment={name: "x", "DAAS_DASK_URL": IN_CLUSTER})
