"""The generated configuration reference (docs/_ext/daas_reference.py) leaves out no setting and no site-file field.

The classes and models are found here independently of the generator: every `.py` file of the
packages is imported by its path, and nested models are followed through their annotations.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import typing
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel
from traitlets.config import Configurable

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("daas_core", "daas_auth", "daas_spawner", "daas_services", "daas_hub")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("daas_reference", ROOT / "docs" / "_ext" / "daas_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> str:
    return load_generator().reference_markdown()


def module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue  # importing it would run the command
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def config_traits() -> dict[str, list[str]]:
    """Class name -> the config=True traits it defines, for every Configurable class in the packages' files."""
    found: dict[str, list[str]] = {}
    for name in module_names():
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == name and issubclass(cls, Configurable):
                found[cls.__name__] = sorted(cls.class_own_traits(config=True))
    return found


def test_every_config_trait_of_the_packages_is_in_the_reference(reference: str) -> None:
    traits = config_traits()
    # The walk found the classes a site configures (a walk that finds nothing would pass vacuously).
    for cls, trait in [
        ("DaaSSpawner", "profiles"),
        ("SlurmBackend", "poll_interval"),
        ("DataService", "reader_memory"),
    ]:
        assert trait in traits[cls]
    listed = set(re.findall(r"^:::\{confval\} c\.(\w+)\.(\w+)$", reference, re.MULTILINE))
    missing = [f"c.{cls}.{trait}" for cls, names in traits.items() for trait in names if (cls, trait) not in listed]
    assert not missing, f"settings missing from the configuration reference: {missing}"
    # and nothing the code does not define
    assert listed <= {(cls, trait) for cls, names in traits.items() for trait in names}


def test_the_entry_point_classes_have_a_section_even_without_settings_of_their_own(reference: str) -> None:
    for name in ("DaaSSpawner", "DaaSAuthenticator", "KeycloakAuthenticator", "UmbrellaAuthenticator"):
        assert f"### {name}\n" in reference
    for backend in ("SlurmBackend", "LocalBackend", "KubernetesBackend", "OpenStackBackend"):
        section = reference.split(f"### {backend}\n", 1)[1].split("\n### ", 1)[0]
        assert "entry point `daas_spawner.backends: " in section


def nested_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    """`model` and every model its fields hold, through lists, unions, optionals and Annotated."""
    seen.add(model)
    pending = [field.annotation for field in model.model_fields.values()]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                nested_models(annotation, seen)
        else:
            pending.extend(typing.get_args(annotation))


def test_every_field_of_the_site_files_is_in_the_reference(reference: str) -> None:
    from daas_core.mounts import DataLocations
    from daas_services.dask.limits import DaskConfig
    from daas_spawner.backends.registry import backend_classes
    from daas_spawner.profiles import ProfileSet

    models: set[type[BaseModel]] = set()
    for root in [ProfileSet, DataLocations, DaskConfig, *(cls.profile_class for cls in backend_classes().values())]:
        nested_models(root, models)
    assert {"SlurmProfile", "Resources", "Environment", "Location"} <= {model.__name__ for model in models}
    missing = []
    for model in models:
        label = f"(model-{model.__name__.lower()})=\n"
        assert label in reference, f"{model.__name__} has no section"
        section = reference.split(label, 1)[1].split("\n(model-", 1)[0]
        parents = [
            base
            for base in model.__bases__
            if base is not BaseModel and f"(model-{base.__name__.lower()})=" in reference
        ]
        inherited = {name for base in parents for name in base.model_fields}
        for name, field in model.model_fields.items():
            # A backend's profile lists what it adds or changes; the common fields are in Profile's table.
            if f"| `{field.alias or name}` |" not in section and name not in inherited:
                missing.append(f"{model.__name__}.{name}")
    assert not missing, f"fields missing from the reference: {missing}"


def test_the_metrics_page_names_every_metric_the_packages_register() -> None:
    """docs/reference/metrics.md includes the README's table: a metric added in the code must be added there."""
    from prometheus_client import REGISTRY

    load_generator().our_modules()  # the metrics are defined when their modules load
    metrics = (ROOT / "README.md").read_text().split("## Metrics and logs", 1)[1].split("\n## ", 1)[0]
    registered = [family for family in REGISTRY.collect() if family.name.startswith("daas_")]
    assert {"daas_spawn_duration_seconds", "daas_data_reads"} <= {family.name for family in registered}
    # As Prometheus shows them: a counter's samples end in _total.
    names = [family.name + ("_total" if family.type == "counter" else "") for family in registered]
    missing = [name for name in names if f"`{name}`" not in metrics]
    assert not missing, f"metrics missing from the README's table (and so the docs): {missing}"
