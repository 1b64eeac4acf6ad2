"""Every YAML file in profiles/ names its JSON Schema on its first line, and that schema takes it.

The schemas are for editors (yaml-language-server reads the `$schema` comment) and CI; each comes from
the model its file is loaded with: profiles/schema.json (`daas-profiles schema`), data.schema.json
(`daas-data schema`), dask.schema.json (`daas-dask schema`). A file with no schema fails here, and so
does a committed schema that no longer matches its model. Broken data and Dask files are refused by
the schema and by the loader alike.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from daas_core.loading import SiteFileError, site_file_schema
from daas_core.mounts import ROOT_PATTERN, TEMPLATE_PATTERN, DataLocations, Location, load_data_locations
from daas_services.dask.limits import DaskConfig, load_dask_config
from daas_spawner.profile_check import profiles_schema
from daas_spawner.profiles import load_profiles

from .conftest import DELETE, set_path

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
HEADER = re.compile(r"# yaml-language-server: \$schema=(?P<schema>[A-Za-z0-9_.-]+\.json)")


class SiteFile:
    """A kind of site file: how the hub or a service loads it, and where its schema comes from."""

    def __init__(self, load: Callable[[Path], Any], schema: Callable[[], dict], command: list[str]) -> None:
        self.load, self.schema, self.command = load, schema, command


# The schema file a site file names -> its kind.
KINDS = {
    "schema.json": SiteFile(load_profiles, profiles_schema, ["daas-profiles", "schema"]),
    "data.schema.json": SiteFile(load_data_locations, lambda: site_file_schema(DataLocations), ["daas-data", "schema"]),
    "dask.schema.json": SiteFile(load_dask_config, lambda: site_file_schema(DaskConfig), ["daas-dask", "schema"]),
}
# Each command as a module, so that it is this checkout's (the venv's scripts may be an older install).
MODULES = {"daas-data": "daas_services.data", "daas-dask": "daas_services.dask"}
YAML_FILES = sorted([*PROFILES.glob("*.yaml"), *PROFILES.glob("*.yml")])


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(schema: dict, data: Any) -> list[str]:
    """Every message, also those under an anyOf (a quantity is a number or a text)."""

    def messages(error: jsonschema.ValidationError) -> list[str]:
        own = f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        return [own, *(message for sub in error.context or () for message in messages(sub))]

    return [message for error in validator(schema).iter_errors(data) for message in messages(error)]


def committed(name: str) -> dict:
    return json.loads((PROFILES / name).read_text())


def test_profiles_holds_the_site_files_and_their_schemas() -> None:
    assert {"facility.yaml", "demo.yaml", "data.yaml", "dask.yaml"} <= {path.name for path in YAML_FILES}
    assert {path.name for path in PROFILES.glob("*.json")} == set(KINDS)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: path.name)
def test_every_yaml_file_names_its_schema_and_is_valid_under_it(path: Path) -> None:
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    header = HEADER.fullmatch(first)
    assert header, (
        f"{path.name}: its first line must name its JSON Schema, e.g. '# yaml-language-server: $schema=schema.json'"
    )
    name = header["schema"]
    assert name in KINDS, f"{path.name} names {name}, which is none of {sorted(KINDS)}"
    KINDS[name].load(path)  # the hub or the service takes it ...
    assert errors(committed(name), yaml.safe_load(path.read_text())) == []  # ... and so does its schema


@pytest.mark.parametrize("name", ["data.schema.json", "dask.schema.json"])
def test_the_committed_schema_is_current(name: str) -> None:
    """profiles/schema.json has its own test (test_profile_schema.py): it depends on the backends installed."""
    command = " ".join(KINDS[name].command)
    assert committed(name) == KINDS[name].schema(), f"profiles/{name} is stale: run `{command} > profiles/{name}`"


@pytest.mark.parametrize("name", ["data.schema.json", "dask.schema.json"])
def test_the_service_prints_its_schema_with_no_config_or_site_file(name: str, tmp_path: Path) -> None:
    """`daas-data schema` / `daas-dask schema`: the command the stale-schema message names."""
    program, *argv = KINDS[name].command
    done = subprocess.run(
        [sys.executable, "-m", MODULES[program], *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # no daas_config.py there
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == KINDS[name].schema()


# (file, change to it, what the schema says about it)
BROKEN = [
    ("data.yaml", "locations.0.name", "Raw Data", "does not match"),
    ("data.yaml", "locations.0.path", "data/visitor/{proposal}/raw", "does not match"),
    ("data.yaml", "locations.0.path", "/data/{proposal} raw", "does not match"),
    ("data.yaml", "locations.0.path", DELETE, "'path' is a required property"),
    ("data.yaml", "locations.0.writable", "sometimes", "is not of type 'boolean'"),
    ("data.yaml", "locations.0.colour", "blue", "Additional properties are not allowed"),
    ("data.yaml", "locations", {"name": "raw"}, "is not of type 'array'"),
    ("data.yaml", "mount_root", "data/proposals", "does not match"),
    ("data.yaml", "mount_root", "/", "does not match"),
    ("data.yaml", "nfs_server", "nfs.example.org;id", "does not match"),
    ("dask.yaml", "defaults.max_memory", "16 gigs", "is not valid under any of the given schemas"),
    ("dask.yaml", "defaults.max_walltime", "8 hours", "is not valid under any of the given schemas"),
    ("dask.yaml", "defaults.max_workers", 0, "is less than or equal to the minimum of 0"),
    ("dask.yaml", "defaults.idle_timeout", "30m", "is not of type 'integer'"),
    ("dask.yaml", "defaults.partitions", [], "should be non-empty"),
    ("dask.yaml", "defaults.partitions", ["cpu;id"], "does not match"),
    ("dask.yaml", "defaults.max_wrokers", 16, "Additional properties are not allowed"),
    ("dask.yaml", "proposals.0.limits.max_wrokers", 32, "Additional properties are not allowed"),
    ("dask.yaml", "proposals.0.limits.max_memory", "lots", "is not valid under any of the given schemas"),
    ("dask.yaml", "proposals.0.limits", DELETE, "'limits' is a required property"),
    ("dask.yaml", "proposals.0.match", "2023 *", "does not match"),
    ("dask.yaml", "require_proposal", "sometimes", "is not of type 'boolean'"),
]


@pytest.mark.parametrize(
    "file, path, value, message", BROKEN, ids=[f"{case[0]}:{case[1]}={case[2]!r}" for case in BROKEN]
)
def test_the_schema_and_the_loader_refuse_broken_files(
    file: str, path: str, value: Any, message: str, tmp_path: Path
) -> None:
    lines = (PROFILES / file).read_text().splitlines()
    name = HEADER.fullmatch(lines[0])["schema"]  # type: ignore[index]
    data = copy.deepcopy(yaml.safe_load("\n".join(lines)))
    set_path(data, path, value)
    found = errors(committed(name), data)
    assert any(message in error for error in found), found
    broken = tmp_path / file
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(SiteFileError):
        KINDS[name].load(broken)


def test_the_dask_schema_takes_a_rule_that_sets_any_limit_as_written() -> None:
    """A rule's `limits` are Limits' fields, each optional, quantities as text or numbers."""
    data = yaml.safe_load((PROFILES / "dask.yaml").read_text())
    data["proposals"] = [{"match": "MX-*", "limits": {"max_memory": "64G", "max_walltime": "1-00:00:00"}}]
    data["proposals"].append({"profile": "big*", "limits": {"max_memory": 65536, "max_walltime": 1440}})
    assert errors(committed("dask.schema.json"), data) == []
    assert DaskConfig.model_validate(data).limits_for("MX-1").max_memory == 65536


# Location templates and roots the loader takes, and ones the patterns catch (the loader refuses them too).
TEMPLATES = ["/data/{proposal}/raw", "{raw_data}", "{processed_data}/reduced", "/gpfs/{year}/{beamline}/{proposal}"]
BAD_TEMPLATES = ["data/{proposal}", "/data/{proposal} raw", "/data/$HOME", "/data;id/{proposal}", ""]
ROOTS = ["/data/proposals", "/mnt/x", "/a_b/c-d.e"]
BAD_ROOTS = ["/", "data", "/data/", "//data", "/data dir", "/data/.hidden"]


def test_the_data_patterns_take_what_the_loader_takes() -> None:
    for template in TEMPLATES:
        Location(name="raw", path=template)
        assert re.search(TEMPLATE_PATTERN, template), template
    for template in BAD_TEMPLATES:
        with pytest.raises(ValueError):
            Location(name="raw", path=template)
        assert not re.search(TEMPLATE_PATTERN, template), template
    for root in ROOTS:
        DataLocations(mount_root=root)
        assert re.search(ROOT_PATTERN, root), root
    for root in BAD_ROOTS:
        with pytest.raises(ValueError):
            DataLocations(mount_root=root)
        assert not re.search(ROOT_PATTERN, root), root
