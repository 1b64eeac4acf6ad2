"""The backend registry: one name per backend, the same in the entry point, the class and its profiles."""

from __future__ import annotations

from typing import Literal

import pytest

from daas_spawner.backends import registry
from daas_spawner.backends.base import Backend, SpawnFailed
from daas_spawner.backends.local.backend import LocalBackend
from daas_spawner.backends.local.profile import LocalProfile
from daas_spawner.backends.slurm.backend import SlurmBackend
from daas_spawner.backends.slurm.profile import SlurmProfile
from daas_spawner.spawner import DaaSSpawner


def test_the_packaged_backends_are_registered_by_their_names():
    assert {"slurm", "local"} <= set(registry.registered())
    assert registry.backend_classes()["slurm"] is SlurmBackend
    assert registry.backend_classes()["local"] is LocalBackend
    assert registry.profile_classes()["slurm"] is SlurmProfile
    assert registry.class_paths()["slurm"] == "daas_spawner.backends.slurm.backend.SlurmBackend"


def test_the_spawner_starts_with_every_registered_backend():
    assert DaaSSpawner().backend_classes == registry.class_paths()


def test_a_restricted_hub_refuses_the_other_backends():
    spawner = DaaSSpawner(backend_classes={"local": "daas_spawner.backends.local.backend.LocalBackend"})
    with pytest.raises(SpawnFailed, match="no backend named 'slurm' is configured"):
        spawner.backend("slurm")


class _Renamed(LocalBackend):
    name = "elsewhere"


class _ForeignProfile(LocalProfile):
    backend: Literal["elsewhere"]  # type: ignore[assignment]


class _WrongProfile(LocalBackend):
    profile_class = _ForeignProfile


class _NoProfile(Backend):
    name = "bare"


@pytest.mark.parametrize(
    "name, cls, words",
    [
        ("local", _Renamed, "_Renamed.name is 'elsewhere'"),
        ("local", _WrongProfile, "Literal['local']"),
        ("bare", _NoProfile, "Literal['bare']"),
    ],
)
def test_names_that_disagree_are_refused(name, cls, words):
    with pytest.raises(registry.BackendRegistryError) as info:
        registry.check(name, cls)
    assert words in str(info.value)


def test_a_site_class_for_a_name_is_checked_when_used():
    spawner = DaaSSpawner(backend_classes={"local": f"{__name__}._Renamed"})
    with pytest.raises(registry.BackendRegistryError):
        spawner.backend("local")


def test_each_backend_kind_has_its_own_singleton():
    """A hub with Slurm and local profiles starts both kinds (the form asks each for its availability)."""
    spawner = DaaSSpawner()
    try:
        slurm, local = spawner.backend("slurm"), spawner.backend("local")
        assert (type(slurm), type(local)) == (SlurmBackend, LocalBackend)
        assert spawner.backend("slurm") is slurm and spawner.backend("local") is local
    finally:
        SlurmBackend.clear_instance()
        LocalBackend.clear_instance()


def test_a_backend_whose_libraries_are_missing_is_left_out_and_named(monkeypatch):
    """A site without kubespawner keeps its Slurm and local profiles; a Kubernetes profile says what to install."""
    from importlib.metadata import EntryPoint

    from daas_spawner.profiles import ProfileSet

    missing = EntryPoint("kubernetes", "daas_no_such_module.backend:Backend", "daas_spawner.backends")
    entries = {**registry.registered(), "kubernetes": missing}
    monkeypatch.setattr(registry, "registered", lambda: entries)
    registry._loaded.cache_clear()
    try:
        assert "kubernetes" not in registry.backend_classes()
        assert "slurm" in registry.backend_classes()
        with pytest.raises(ValueError) as info:
            ProfileSet.model_validate({"profiles": [{"id": "k", "display_name": "K", "backend": "kubernetes"}]})
        assert "cannot be used on this hub" in str(info.value)
        assert "jupyterhub-daas[kubernetes]" in str(info.value)
    finally:
        registry._loaded.cache_clear()
