"""The JSON Schema of a profiles file: it takes the shipped files as written and refuses broken ones.

It comes from the models themselves (`ProfileSet.model_json_schema()`), every registered backend's
profile class in it; quantities are text or numbers as the files write them, each text grammar the
one its parser reads.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from daas_core.quantities import (
    DURATION_PATTERN,
    MEMORY_PATTERN,
    WALLTIME_PATTERN,
    parse_duration_seconds,
    parse_memory_mb,
    parse_walltime_seconds,
)
from daas_spawner.backends.registry import profile_classes, unavailable
from daas_spawner.profile_check import profiles_schema
from daas_spawner.profiles import ProfileSet, load_profiles

from .conftest import DELETE, set_path

REPO = Path(__file__).resolve().parents[2]
# profiles/ also holds the data locations and the Dask limits, which are other files' models.
OTHER_SITE_FILES = {"data.yaml", "dask.yaml"}
PROFILE_FILES = sorted(path for path in (REPO / "profiles").glob("*.yaml") if path.name not in OTHER_SITE_FILES)
BUILT_IN = {"kubernetes", "local", "openstack", "slurm"}


def validator() -> jsonschema.Draft202012Validator:
    schema = profiles_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(data: dict) -> list[str]:
    """Every message, also those under a oneOf (a profile is one of the backends' profiles)."""

    def messages(error: jsonschema.ValidationError) -> list[str]:
        own = f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        return [own, *(message for sub in error.context or () for message in messages(sub))]

    return [message for error in validator().iter_errors(data) for message in messages(error)]


def facility() -> dict:
    return yaml.safe_load((REPO / "profiles" / "facility.yaml").read_text())


def test_the_profile_files_are_the_ones_shipped() -> None:
    assert {path.name for path in PROFILE_FILES} >= {"facility.yaml", "demo.yaml", "kubernetes.yaml", "openstack.yaml"}


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda path: path.name)
def test_every_shipped_profiles_file_is_valid(path: Path) -> None:
    load_profiles(path)  # the hub takes it ...
    assert errors(yaml.safe_load(path.read_text())) == []  # ... and so does the schema


def test_the_models_own_schema_takes_the_facility_file() -> None:
    """What the issue found broken: the schema pydantic gives the model said integer for '14G' and '12h'."""
    jsonschema.validate(facility(), ProfileSet.model_json_schema())


def test_the_schema_covers_every_registered_backend() -> None:
    items = profiles_schema()["properties"]["profiles"]["items"]
    assert set(items["discriminator"]["mapping"]) == set(profile_classes())
    assert items["discriminator"]["propertyName"] == "backend"


def test_a_plugin_backend_is_in_the_schema_through_the_registry() -> None:
    """tests/plugins holds a backend known only by its entry point: the schema has its profile too."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "plugins"), str(REPO)])}
    out = subprocess.run(
        [sys.executable, "-m", "daas_spawner.profile_check", "schema"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    ).stdout
    schema = json.loads(out)
    assert set(schema["properties"]["profiles"]["items"]["discriminator"]["mapping"]) == BUILT_IN | {"sandbox"}
    assert "greetings" in json.dumps(schema["$defs"])  # the sandbox profile's own settings


# (change to facility.yaml, what the schema must say about it)
BROKEN = [
    ("profiles.0.backend", "vm", "is not valid under any of the given schemas"),
    ("profiles.0.backend", DELETE, "is not valid under any of the given schemas"),
    ("profiles.0.display_name", DELETE, "'display_name' is a required property"),
    ("profiles.0.resources.memory.max", "14 gigs", "is not valid under any of the given schemas"),
    ("profiles.0.resources.memory.max", True, "is not valid under any of the given schemas"),
    ("profiles.0.resources.walltime.max", "1:75:00", "is not valid under any of the given schemas"),
    ("profiles.0.max_lifetime", "12 hours", "is not valid under any of the given schemas"),
    ("profiles.0.resources.cores.colour", "blue", "Additional properties are not allowed"),
    ("profiles.0.resources.partitions", ["cpu;id"], "does not match"),
    ("profiles.0.env", {"BAD-NAME": "x"}, "does not match"),
    ("profiles.0.prologue", ["echo a\nid"], "does not match"),
    ("profiles", [], "should be non-empty"),
]


@pytest.mark.parametrize("path, value, message", BROKEN, ids=[f"{case[0]}={case[1]!r}" for case in BROKEN])
def test_the_schema_refuses_broken_files(path: str, value, message: str) -> None:
    data = copy.deepcopy(facility())
    set_path(data, path, value)
    found = errors(data)
    assert any(message in error for error in found), found


# (pattern, parser, texts its parser reads, texts it refuses)
GRAMMARS = [
    (
        MEMORY_PATTERN,
        parse_memory_mb,
        ["4G", "512M", "1.5T", "4 GiB", "4gb", " 2G ", "100", "64K", "7B"],
        ["4 gigs", "G", "-1G", "4GG", "1.2345G", "4X", "", "0x10", "4G\n#"],
    ),
    (
        WALLTIME_PATTERN,
        parse_walltime_seconds,
        ["90", "4:00:00", "1:30", "1-12", "1-12:00", "1-12:00:00", " 8:00:00 ", "9999:59:59"],
        ["1:75:00", "1-24:00:00", "4h", "1:00:60", "1-1:5", "", "-1", "1:2:3"],
    ),
    (
        DURATION_PATTERN,
        parse_duration_seconds,
        ["30m", "8h", "1h30m", "2d", "90s", "1d 2h", "1d2h3m4s", " 12h "],
        ["12 hours", "h", "", "30", "2m1h", "1.5h", "-1h", "1w"],
    ),
]


@pytest.mark.parametrize("pattern, parse, good, bad", GRAMMARS, ids=["memory", "walltime", "duration"])
def test_each_quantity_pattern_takes_what_its_parser_takes(pattern, parse, good, bad) -> None:
    for text in good:
        parse(text)
        assert re.search(pattern, text), text
    for text in bad:
        with pytest.raises(ValueError):
            parse(text)
        assert not re.search(pattern, text), text


def test_quantities_are_numbers_in_the_parsers_units() -> None:
    memory = profiles_schema()["$defs"]["Memory"]["properties"]["max"]["anyOf"]
    assert memory[0] == {"type": "integer", "minimum": 0, "description": "MiB"}
    assert memory[1]["pattern"] == MEMORY_PATTERN


@pytest.mark.skipif(set(profile_classes()) != BUILT_IN or bool(unavailable()), reason="another set of backends here")
def test_the_committed_schema_is_current() -> None:
    """profiles/schema.json, for editors; refresh it with `daas-profiles schema > profiles/schema.json`."""
    committed = json.loads((REPO / "profiles" / "schema.json").read_text())
    assert committed == profiles_schema()
