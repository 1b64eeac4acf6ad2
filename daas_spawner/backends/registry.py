"""The backends this hub knows: the `daas_spawner.backends` entry-point group.

Each entry point names a Backend class; its name is the backend's name everywhere: the
entry-point name, `Backend.name`, and the `backend:` a profile gives (its profile class's
discriminator). A site adds a backend by installing a distribution with such an entry point,
e.g. in its pyproject.toml:

    [project.entry-points."daas_spawner.backends"]
    kubernetes = "my_site.kubernetes.backend:KubernetesBackend"
"""

from __future__ import annotations

import functools
import typing
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from traitlets import Instance
from traitlets.config import Configurable
from traitlets.utils.importstring import import_item

if TYPE_CHECKING:
    from ..profiles import Profile
    from .base import Backend

GROUP = "daas_spawner.backends"


class BackendRegistryError(RuntimeError):
    """A registered backend whose names disagree, or that cannot be loaded."""


@functools.cache
def registered() -> dict[str, EntryPoint]:
    """Backend name -> entry point, by name (of several of one name, the first on the path wins)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=GROUP):
        found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def class_paths() -> dict[str, str]:
    """Backend name -> importable class path ("package.module.Class"), without importing anything."""
    return {name: entry.value.replace(":", ".") for name, entry in registered().items()}


def check(name: str, cls: type[Backend]) -> type[Backend]:
    """`cls`, once its `name` and its profile class's discriminator are both `name`."""
    if getattr(cls, "name", None) != name:
        raise BackendRegistryError(f"backend {name!r}: {cls.__qualname__}.name is {getattr(cls, 'name', None)!r}")
    profile = getattr(cls, "profile_class", None)
    field = None if profile is None else profile.model_fields.get("backend")
    if field is None or typing.get_args(field.annotation) != (name,):
        raise BackendRegistryError(
            f"backend {name!r}: {cls.__qualname__}.profile_class must be a Profile whose backend is Literal[{name!r}]"
        )
    return cls


@functools.cache
def _loaded() -> tuple[dict[str, type[Backend]], dict[str, str]]:
    classes, missing = {}, {}
    for name, entry in registered().items():
        try:
            cls = entry.load()
        except ModuleNotFoundError as err:
            # An optional backend whose libraries this site did not install (e.g. kubespawner):
            # the others work; a profile naming it is refused with this reason.
            missing[name] = f"it needs {err.name!r}, which is not installed (pip install 'jupyterhub-daas[{name}]')"
            continue
        except (ImportError, AttributeError) as err:
            raise BackendRegistryError(f"backend {name!r} ({entry.value}) cannot be loaded: {err}") from err
        classes[name] = check(name, cls)
    return classes, missing


def backend_classes() -> dict[str, type[Backend]]:
    """Backend name -> its class, loaded and checked (backends whose libraries are missing left out)."""
    return _loaded()[0]


def unavailable() -> dict[str, str]:
    """Registered backends that cannot load here -> why, in words for the site admin."""
    return _loaded()[1]


def profile_classes() -> dict[str, type[Profile]]:
    """Backend name -> the profile class its profiles validate as."""
    return {name: cls.profile_class for name, cls in backend_classes().items()}


def configurables() -> list[type[Configurable]]:
    """The `c.<Class>` sections the registered backends read, for `--help-all` and the docs.

    Each backend with its configurable bases (Backend, ContainedBackend) first, and the
    configurables its traits hold (c.SlurmRest, c.UserAccounts); only classes with settings.
    """
    found: list[type[Configurable]] = []
    seen: set[type] = set()

    def add(cls: type[Configurable]) -> None:
        seen.add(cls)
        for klass in reversed(cls.__mro__):
            if issubclass(klass, Configurable) and klass not in found and klass.class_own_traits(config=True):
                found.append(klass)
        for name, trait in cls.class_traits().items():
            held = trait.klass if isinstance(trait, Instance) and name != "parent" else None
            held = import_item(held) if isinstance(held, str) else held
            if isinstance(held, type) and issubclass(held, Configurable) and held not in seen:
                add(held)

    for cls in backend_classes().values():
        add(cls)
    return found
