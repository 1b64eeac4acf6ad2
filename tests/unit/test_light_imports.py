"""What importing a module costs: readers, services and tools must not load the hub's web stack.

The data reader runs as a fresh process per request, as the person: loading JupyterHub, Jinja2 or
oauthenticator there would cost every preview, and registering hub handlers from it would be wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("jupyterhub", "jinja2", "oauthenticator")


def loaded_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after `statement`."""
    probe = f"import sys\n{statement}\nimport json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    "statement",
    [
        "import daas_services.data.reader",
        "from daas_core.accounts import UNIX_NAME",
        "import daas_core.mounts, daas_core.proposals, daas_core.loading, daas_core.commands",
        "import daas_spawner, daas_auth",
        "from daas_spawner.profiles import load_profiles",
        "from daas_auth.proposals import ClaimRule",
    ],
)
def test_import_loads_no_hub_web_stack(statement):
    assert loaded_after(statement).isdisjoint(HEAVY)


def test_the_spawner_still_loads_by_its_public_name():
    """`c.JupyterHub.spawner_class = "daas"` resolves `daas_spawner:DaaSSpawner` through the lazy package."""
    assert "jupyterhub" in loaded_after("from daas_spawner import DaaSSpawner")


def test_importing_the_spawner_registers_no_hub_handler():
    probe = (
        "from jupyterhub import apihandlers\nbefore = len(apihandlers.default_handlers)\n"
        "import daas_spawner.spawner, daas_auth.authenticator, daas_auth.hub_api\n"
        "print(len(apihandlers.default_handlers) - before)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"
