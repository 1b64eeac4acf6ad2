"""`daas-profiles`: the hub's own loading, the same errors as hub start, the offers in words, the schema."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daas_spawner.profile_check import main, profiles_schema
from daas_spawner.profiles import ProfileConfigError, load_profiles

from .conftest import DELETE, set_path
from .test_light_imports import HEAVY, loaded_after

REPO = Path(__file__).resolve().parents[2]
FACILITY = REPO / "profiles" / "facility.yaml"


def check(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, str, str]:
    status = main(["check", *map(str, paths)])
    out, err = capsys.readouterr()
    return status, out, err


def broken_copy(tmp_path: Path, path: str, value) -> Path:
    data = copy.deepcopy(yaml.safe_load(FACILITY.read_text()))
    set_path(data, path, value)
    broken = tmp_path / "profiles.yaml"
    broken.write_text(yaml.safe_dump(data))
    return broken


def test_the_facility_file_passes_with_its_offers_in_words(capsys) -> None:
    status, out, err = check(capsys, FACILITY)
    assert (status, err) == (0, "")
    assert out.startswith(f"{FACILITY}: OK, 3 profiles, default cpu\n")
    offers = {profile_id: offer for item in yaml.safe_load(out.split("\n", 1)[1]) for profile_id, offer in item.items()}
    assert list(offers) == ["cpu", "gpu", "power9"]
    cpu = offers["cpu"]
    assert (cpu["backend"], cpu["open to"]) == ("slurm", "everyone")
    assert cpu["resources"]["memory"] == {"min": "512M", "max": "14G", "default": "2G"}
    assert cpu["resources"]["walltime"]["max"] == "12:00:00"
    assert (cpu["max_lifetime"], cpu["idle_timeout"]) == ("12 h", "1 h")
    assert [env["id"] for env in cpu["environments"]] == ["daas", "desktop"]
    assert "gpu_type tesla, gpus 1" in offers["gpu"]["default request"]


def test_rules_and_billing_are_spelled_out(capsys) -> None:
    status, out, _ = check(capsys, REPO / "profiles" / "kubernetes.yaml")
    assert status == 0
    gpu = next(item["k8s-gpu"] for item in yaml.safe_load(out.split("\n", 1)[1]) if "k8s-gpu" in item)
    assert gpu["open to"] == "members of proposals 2023*"
    assert gpu["billed to"] == "the chosen proposal (people without one cannot start it)"


# (change to facility.yaml) each gives the hub's error
BROKEN = [
    ("profiles.0.backend", "vm"),
    ("profiles.0.resources.memory.max", "14 gigs"),
    ("profiles.0.display_name", DELETE),
    ("profiles.0.max_lifetime", "30s"),
    ("profiles.1.prologue", ["module load cuda\nid"]),
    ("profiles.1.env", {"DAAS_BOOTSTRAP": "x"}),
    ("default_profile", "nope"),
]


@pytest.mark.parametrize("path, value", BROKEN, ids=[f"{path}={value!r}" for path, value in BROKEN])
def test_a_broken_file_gives_the_hubs_error_text(capsys, tmp_path: Path, path: str, value) -> None:
    broken = broken_copy(tmp_path, path, value)
    with pytest.raises(ProfileConfigError) as hub_start:
        load_profiles(broken)
    status, out, err = check(capsys, broken)
    assert (status, out) == (1, "")
    assert err == f"{hub_start.value}\n"
    assert err.startswith("invalid profiles\n  ") and str(broken) in err


def test_a_local_profile_with_a_prologue_is_refused_as_at_hub_start(capsys, tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "profiles" / "demo.yaml").read_text())
    demo["profiles"][0]["prologue"] = ["module load python"]
    broken = tmp_path / "demo.yaml"
    broken.write_text(yaml.safe_dump(demo))
    status, _, err = check(capsys, broken)
    assert status == 1
    assert "profiles[lab]: Value error, prologue: a local server starts without a shell script" in err


@pytest.mark.parametrize("text", ["profiles: [", "- just a list\n", ""])
def test_files_that_are_no_profiles_give_the_hubs_error_text(capsys, tmp_path: Path, text: str) -> None:
    broken = tmp_path / "profiles.yaml"
    broken.write_text(text)
    with pytest.raises(ProfileConfigError) as hub_start:
        load_profiles(broken)
    assert check(capsys, broken)[1:] == ("", f"{hub_start.value}\n")


def test_every_file_is_checked_and_one_bad_file_fails_the_run(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    status, out, err = check(capsys, missing, FACILITY)
    assert status == 1
    assert err == f"{missing}: cannot read profiles file: No such file or directory\n"
    assert out.startswith(f"{FACILITY}: OK")


def test_schema_prints_the_json_schema(capsys) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == profiles_schema()


def test_help_names_both_commands() -> None:
    run = [sys.executable, "-m", "daas_spawner.profile_check"]
    out = subprocess.run([*run, "--help"], capture_output=True, text=True, check=True, cwd=REPO, timeout=60).stdout
    assert out.startswith("usage: daas-profiles") and "check" in out and "schema" in out
    out = subprocess.run(
        [*run, "check", "--help"], capture_output=True, text=True, check=True, cwd=REPO, timeout=60
    ).stdout
    assert "FILE [FILE ...]" in out and "the hub's own loader" in out


def test_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_the_console_script_is_declared() -> None:
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^daas-profiles = "daas_spawner\.profile_check:main"$', scripts, re.MULTILINE)


def test_importing_the_checker_loads_no_hub() -> None:
    assert loaded_after("import daas_spawner.profile_check").isdisjoint(HEAVY)
