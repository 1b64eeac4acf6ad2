"""Loading site profiles: the example files load; a bad file names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from daas_spawner.backends.slurm.profile import SlurmProfile
from daas_spawner.profiles import ProfileConfigError, load_profiles, local_demo

from .conftest import DELETE, set_path, site_profiles_raw

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, default_profile, profile_ids",
    [
        ("facility.yaml", "cpu", ["cpu", "gpu", "power9"]),
        ("demo.yaml", "lab", ["lab", "notebook", "desktop"]),
    ],
)
def test_example_files_load(name, default_profile, profile_ids):
    profiles = load_profiles(REPO / "profiles" / name)
    assert profiles.default_profile == default_profile
    assert [p.id for p in profiles.profiles] == profile_ids


def test_facility_gpu_profile_values():
    gpu = load_profiles(REPO / "profiles" / "facility.yaml").get("gpu")
    assert isinstance(gpu, SlurmProfile) and gpu.resources.gpus is not None
    assert gpu.resources.gpus.types == ["tesla"]
    assert gpu.resources.memory.default == 4096
    assert gpu.resources.walltime.max == 8 * 3600


def test_local_demo_is_valid():
    assert [p.backend for p in local_demo().profiles] == ["local"]


# (change to the valid site file, field path the error must name, words the message must contain)
BAD_CHANGES = [
    ("profiles.1.resources.cores.colour", "blue", "profiles[gpu].resources.cores.colour", "Extra inputs"),
    ("profiles.0.resourcez", {}, "profiles[cpu].resourcez", "Extra inputs"),
    ("profiles.1.resources.cores.max", 0, "profiles[gpu].resources.cores.max", "greater than 0"),
    ("profiles.1.resources.cores.max", "eight", "profiles[gpu].resources.cores.max", "integer"),
    ("profiles.1.resources.cores.max", 3, "profiles[gpu].resources.cores", "preset"),
    ("profiles.1.resources.cores.default", "max", "profiles[gpu].resources.cores", "not among the presets"),
    ("profiles.1.resources.cores.default", "whole_node", "profiles[gpu].resources.cores", "whole_node"),
    ("profiles.1.resources.gpus.default", 3, "profiles[gpu].resources.gpus", "above max"),
    ("profiles.0.resources.memory.default", "64G", "profiles[cpu].resources.memory", "min <= default <= max"),
    ("profiles.0.resources.memory.max", "lots", "profiles[cpu].resources.memory.max", "size"),
    ("profiles.0.resources.walltime.max", "1:75:00", "profiles[cpu].resources.walltime.max", "above 59"),
    ("profiles.0.resources.walltime.choices", ["24:00:00"], "profiles[cpu].resources.walltime", "above max"),
    ("default_profile", "nope", "default_profile", "'nope' is not a profile id"),
    ("profiles.1.id", "cpu", "profiles", "unique"),
    ("profiles.0.id", "cpu;id", "profiles[cpu;id].id", "pattern"),
    ("profiles.0.resources.partitions", ["cpu;id"], "profiles[cpu].resources.partitions[0]", "pattern"),
    ("profiles.0.resources.partitions", ["cpu\n"], "profiles[cpu].resources.partitions[0]", "pattern"),
    ("profiles.0.resources.partitions", ["#SBATCH --uid=0"], "profiles[cpu].resources.partitions[0]", "pattern"),
    ("profiles.0.resources.partitions", ["cpu\n#SBATCH --uid=0"], "profiles[cpu].resources.partitions[0]", "pattern"),
    ("profiles.0.resources.partitions", [], "profiles[cpu].resources.partitions", "at least 1"),
    ("profiles.2.resources.features", ["$(id)"], "profiles[power9].resources.features[0]", "pattern"),
    ("profiles.1.resources.gpus.types", ["tesla`id`"], "profiles[gpu].resources.gpus.types[0]", "pattern"),
    ("profiles.0.slurm.account", "a b", "profiles[cpu].slurm.account", "an account is letters"),
    ("profiles.0.slurm.extra_args", ["--x\n#SBATCH"], "profiles[cpu].slurm.extra_args[0]", "pattern"),
    ("profiles.0.environments.1.modules", ["py;id"], "profiles[cpu].environments[mods].modules[0]", "pattern"),
    ("profiles.0.environments.0.prefix", "relative/venv", "profiles[cpu].environments[daas].prefix", "pattern"),
    ("profiles.0.environments.0.apptainer_args", ["--nv"], "profiles[cpu].environments[daas]", "without an image"),
    ("profiles.0.environments.1.id", "daas", "profiles[cpu]", "environment ids must be unique"),
    ("profiles.0.backend", "vm", "profiles[cpu].backend", "'kubernetes', 'local', 'openstack' or 'slurm'"),
    ("profiles.0.backend", "local", "profiles[cpu]", "a local profile takes no resources"),
    ("profiles.1.resources", DELETE, "profiles[gpu]", "a slurm profile needs resources"),
    ("profiles.4.resources", site_profiles_raw()["profiles"][0]["resources"], "profiles[local]", "no resources"),
    ("profiles.1.display_name", DELETE, "profiles[gpu].display_name", "Field required"),
    ("profiles", [], "profiles", "at least 1"),
]


@pytest.mark.parametrize("change, value, field_path, words", BAD_CHANGES)
def test_bad_file_names_file_and_field(tmp_path, change, value, field_path, words):
    data = site_profiles_raw()
    set_path(data, change, value)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileConfigError) as info:
        load_profiles(path)
    assert f"{path}: {field_path}: " in str(info.value)
    assert words in str(info.value)


def test_every_bad_field_is_listed(tmp_path):
    data = site_profiles_raw()
    set_path(data, "profiles.1.resources.cores.max", 0)
    set_path(data, "profiles.2.resources.partitions", ["a;b"])
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileConfigError) as info:
        load_profiles(path)
    assert "profiles[gpu].resources.cores.max" in str(info.value)
    assert "profiles[power9].resources.partitions[0]" in str(info.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("profiles: [\n  id: cpu\n", "not valid YAML"),
        ("key: value: other\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "expected a mapping"),
        ("just a string\n", "expected a mapping"),
    ],
)
def test_unusable_file(tmp_path, text, words):
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(ProfileConfigError) as info:
        load_profiles(path)
    assert str(info.value).startswith(f"{path}: ")
    assert words in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(ProfileConfigError) as info:
        load_profiles(path)
    assert str(info.value).startswith(f"{path}: cannot read profiles file")


@pytest.mark.parametrize(
    "groups, visible",
    [
        (set(), ["cpu", "gpu", "power9", "local", "vm"]),
        ({"users"}, ["cpu", "gpu", "power9", "local", "vm"]),
        ({"staff"}, ["cpu", "gpu", "power9", "staff", "local", "vm"]),
        ({"users", "staff"}, ["cpu", "gpu", "power9", "staff", "local", "vm"]),
        ({"Staff"}, ["cpu", "gpu", "power9", "local", "vm"]),
    ],
)
def test_allowed_for(site, groups, visible):
    assert [p.id for p in site.allowed_for(groups)] == visible
