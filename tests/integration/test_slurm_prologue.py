"""A Slurm profile's set-up on the real cluster: its env, module_use and prologue reach the kernel.

The site's modulefiles folder holds one module; the profile puts the folder on the module path
(`module_use`), loads the module in a prologue line, and sets a variable (`env`) that the next
prologue line reads. Environment Modules is the real one (Debian's environment-modules), as on a
facility's nodes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import SlurmHub, cancel_test_jobs, public_tempdir
from .hub import Hub
from .kernel import run_in_kernel
from .slurm import batch_script

MODULEFILE = """#%Module1.0
setenv SITE_TOOLS_VERSION 2.1
"""
SETUP = {
    "env": {"SITE_GREETING": "hello from 'the site' $HOME"},
    "prologue": ["module load site-tools/2.1", 'export SITE_SEEN_BY_PROLOGUE="$SITE_GREETING"'],
}


def module_system_here() -> None:
    found = subprocess.run(["bash", "-lc", "type module"], capture_output=True, text=True, timeout=30, check=False)
    if found.returncode != 0:
        pytest.fail("no `module` command in a login shell: install environment-modules (tests/setup.sh)")


@pytest.fixture(scope="module")
def prologue_site(slurm_cluster: None) -> Iterator[tuple[Hub, Path]]:
    """The test hub whose cpu profile carries a set-up, and the site's modulefiles folder."""
    module_system_here()
    cancel_test_jobs()
    site = SlurmHub(public_tempdir("daas-it-prologue-"))
    modules = site.workdir / "site modules"  # a space: the path is quoted in the script
    (modules / "site-tools").mkdir(parents=True)
    (modules / "site-tools" / "2.1").write_text(MODULEFILE)
    for path in (modules, modules / "site-tools"):
        path.chmod(0o755)
    (modules / "site-tools" / "2.1").chmod(0o644)
    data = yaml.safe_load(site.profiles.read_text())
    data["profiles"][0].update(SETUP, module_use=[str(modules)])
    site.profiles.write_text(yaml.safe_dump(data))
    hub = site.start()
    yield hub, modules
    site.close()


def test_the_kernel_sees_the_profiles_env_modules_and_prologue(prologue_site: tuple[Hub, Path]) -> None:
    hub, modules = prologue_site
    response = hub.spawn("alice", {"profile": "cpu"})
    assert response.status_code in (201, 202), response.text
    try:
        hub.wait_ready("alice")
        token = hub.token_for("alice", ["access:servers!user=alice"])
        names = ["SITE_GREETING", "SITE_TOOLS_VERSION", "SITE_SEEN_BY_PROLOGUE", "MODULEPATH"]
        code = "import os\n" + "".join(f"print(os.environ.get({name!r}))\n" for name in names)
        ran = run_in_kernel(hub, "alice", token, code)
        assert ran.error is None, ran.error
        greeting, version, seen, module_path = ran.lines()
        assert greeting == seen == "hello from 'the site' $HOME"  # as written, and set before the prologue ran
        assert version == "2.1"  # the module the prologue loaded, found through module_use
        assert str(modules) in module_path.split(":")
        script = batch_script(hub.job_id("alice"))
        assert script.startswith("#!/bin/bash -l\n")
    finally:
        hub.stop_server("alice")


def test_a_rest_body_cannot_set_a_prologue(prologue_site: tuple[Hub, Path]) -> None:
    hub, _ = prologue_site
    for field, value in [("prologue", ["id > /tmp/pwned"]), ("env", {"X": "1"}), ("module_use", ["/tmp"])]:
        response = hub.spawn("bob", {"profile": "cpu", field: value})
        assert response.status_code == 400, response.text
        assert f"{field}: is not a known option" in response.json()["message"]
    assert hub.server_model("bob") is None
