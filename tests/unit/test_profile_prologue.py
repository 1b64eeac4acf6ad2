"""A profile's set-up (env, module_use, prologue): the site's alone, checked at load, run where a backend can.

The Slurm batch script runs all three before the launcher (bash reads them here as the job
would); the local, Kubernetes and OpenStack backends start servers without a shell script, so
they take `env` and refuse the rest when the profiles load.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from daas_spawner.backends.base import Launch
from daas_spawner.backends.local.backend import LocalBackend, LocalState
from daas_spawner.backends.slurm.commands import batch_script
from daas_spawner.options import OptionsError, UserAccess, option_fields, resolve_options
from daas_spawner.profiles import ProfileConfigError, parse_profiles

from .conftest import site_profiles_raw
from .test_slurm_commands import _export_section, make_spec, run_bash

REPO = Path(__file__).resolve().parents[2]

SETUP = {
    "env": {"OMP_NUM_THREADS": "4", "GREETING": "it's $HOME; `id`"},
    "module_use": ["/opt/site/module files"],
    "prologue": ['export SITE_READY="from $GREETING"', "umask 027"],
}


def site_with(index: int, **setup):
    raw = site_profiles_raw()
    raw["profiles"][index].update(setup)
    return parse_profiles(raw, "test-site.yaml")


def refusal(index: int, **setup) -> str:
    with pytest.raises(ProfileConfigError) as caught:
        site_with(index, **setup)
    return str(caught.value)


def cpu_script(**setup) -> str:
    options = resolve_options({"profile": "cpu", "environment": "mods"}, site_with(0, **setup), UserAccess())
    return batch_script(options, make_spec(env={"OMP_NUM_THREADS": "1", "SITE_WIDE": "hub"}))


# -- the profile model ------------------------------------------------------------------------


def test_the_setup_fields_load_on_a_slurm_profile() -> None:
    cpu = site_with(0, **SETUP).get("cpu")
    assert cpu is not None
    assert (cpu.env, cpu.module_use, cpu.prologue) == (SETUP["env"], SETUP["module_use"], SETUP["prologue"])


@pytest.mark.parametrize(
    "index, backend",
    [(4, "local"), (5, "openstack")],
)
@pytest.mark.parametrize("field, value", [("prologue", ["module load x"]), ("module_use", ["/opt/modules"])])
def test_backends_without_a_shell_script_refuse_prologue_and_module_use(index, backend, field, value) -> None:
    message = refusal(index, **{field: value})
    assert f"{field}: a {backend} server starts without a shell script to run them (slurm profiles can)" in message


def test_a_kubernetes_profile_refuses_a_prologue_and_takes_env() -> None:
    raw = yaml.safe_load((REPO / "profiles" / "kubernetes.yaml").read_text())
    raw["profiles"][0]["env"] = {"OMP_NUM_THREADS": "2"}
    assert parse_profiles(raw, "kubernetes.yaml").profiles[0].env == {"OMP_NUM_THREADS": "2"}
    raw["profiles"][0]["prologue"] = ["source /etc/site.sh"]
    with pytest.raises(ProfileConfigError, match="prologue: a kubernetes server starts without a shell script"):
        parse_profiles(raw, "kubernetes.yaml")


def test_a_local_profile_takes_env() -> None:
    local = site_with(4, env={"OMP_NUM_THREADS": "2"}).get("local")
    assert local is not None and local.env == {"OMP_NUM_THREADS": "2"}


@pytest.mark.parametrize("name", ["JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "DAAS_BOOTSTRAP", "DAAS_X", "HOME", "USER"])
def test_the_hubs_variables_are_refused(name: str) -> None:
    assert f"profiles[cpu].env: Value error, {name}: set by the hub or its backends" in refusal(0, env={name: "x"})


@pytest.mark.parametrize(
    "setup, where",
    [
        ({"env": {"BAD-NAME": "x"}}, "profiles[cpu].env.BAD-NAME.[key]"),
        ({"env": {"X": "a\nb"}}, "profiles[cpu].env.X"),
        ({"prologue": ["echo a\nid"]}, "profiles[cpu].prologue[0]"),
        ({"prologue": [""]}, "profiles[cpu].prologue[0]"),
        ({"module_use": ["relative/modules"]}, "profiles[cpu].module_use[0]"),
        ({"module_use": ["/opt/a\nb"]}, "profiles[cpu].module_use[0]"),
    ],
)
def test_setup_that_cannot_be_written_safely_is_refused(setup, where) -> None:
    assert f"test-site.yaml: {where}: String should match pattern" in refusal(0, **setup)


def test_users_cannot_set_the_setup() -> None:
    """The options model knows no such option: a form post or REST body naming one is refused (HTTP 400)."""
    assert {"env", "module_use", "prologue"}.isdisjoint(option_fields())
    for field, value in [("prologue", ["id"]), ("env", {"X": "1"}), ("module_use", ["/tmp"])]:
        with pytest.raises(OptionsError, match=f"^{field}: is not a known option$"):
            resolve_options({"profile": "cpu", field: value}, site_with(0, **SETUP), UserAccess())


# -- Slurm: the batch script ---------------------------------------------------------------------


def test_the_script_sets_up_in_order_before_the_environments_modules() -> None:
    lines = cpu_script(**SETUP).splitlines()
    assert lines[0] == "#!/bin/bash -l"  # `module` and the site's login set-up
    start = lines.index("module use '/opt/site/module files'")
    assert lines[start : start + 4] == [
        "module use '/opt/site/module files'",
        'export SITE_READY="from $GREETING"',  # the admin's text, as written
        "umask 027",
        "module load python/3.11 cuda/12.2",
    ]
    exports = [line for line in lines[:start] if line.startswith("export ")]
    assert "export OMP_NUM_THREADS=4" in exports and "export OMP_NUM_THREADS=1" not in exports  # the profile's


def test_bash_reads_the_profiles_variables_as_written_and_over_the_hubs(tmp_path: Path) -> None:
    script = cpu_script(**{**SETUP, "module_use": []})
    section = _export_section(script).replace("module load python/3.11 cuda/12.2\n", "")
    result = run_bash(
        section + 'printf "%s|%s|%s|%s" "$OMP_NUM_THREADS" "$GREETING" "$SITE_READY" "$SITE_WIDE"', tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("|") == ["4", "it's $HOME; `id`", "from it's $HOME; `id`", "hub"]


def test_a_failing_prologue_line_stops_the_job_before_the_server(tmp_path: Path) -> None:
    script = cpu_script(prologue=["false", "touch reached"])
    section = _export_section(script).replace("module load python/3.11 cuda/12.2\n", "")
    assert run_bash(section, tmp_path).returncode != 0
    assert not (tmp_path / "reached").exists()


def test_without_setup_the_script_is_as_before() -> None:
    options = resolve_options({"profile": "cpu", "environment": "daas"}, site_with(0), UserAccess())
    script = batch_script(options, make_spec())
    assert script.splitlines()[0] == "#!/bin/bash"
    assert "module" not in script


# -- local: the process environment ----------------------------------------------------------------


async def ended(backend: LocalBackend, state: LocalState) -> None:
    while await backend.poll(state) is None:  # noqa: ASYNC110 (a backend tells an end only when polled)
        await asyncio.sleep(0.05)


async def test_a_local_server_gets_the_profiles_variables(tmp_path: Path) -> None:
    site = site_with(4, env={"OMP_NUM_THREADS": "2", "GREETING": "$HOME"})
    options = resolve_options({"profile": "local"}, site, UserAccess())
    seen = tmp_path / "environ.json"
    write = f"import json, os; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))"
    launch = Launch(
        username="alice",
        server="alice",
        options=options,
        env={"PATH": os.environ.get("PATH", os.defpath), "OMP_NUM_THREADS": "8"},
        command=[sys.executable, "-c", write],
        secret_env={"JUPYTERHUB_API_TOKEN": "t" * 32},
    )
    backend = LocalBackend()
    states = [state async for state in backend.start(launch)]
    try:
        await asyncio.wait_for(ended(backend, states[-1]), 30)
    finally:
        await backend.stop(states[-1])
    env = json.loads(seen.read_text())
    assert (env["OMP_NUM_THREADS"], env["GREETING"]) == ("2", "$HOME")  # the profile's, over the spawner's
    assert env["JUPYTERHUB_API_TOKEN"] == "t" * 32
