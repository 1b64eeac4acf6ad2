"""`jupyterhub --help-all` lists the backends' settings with the spawner's.

JupyterHub lists the classes of its own entry-point groups (spawners, authenticators, proxies);
the backends are none of these, so DaaSSpawner's help carries them (and c.SlurmRest, c.UserAccounts).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from daas_spawner.backends.registry import backend_classes, configurables

REPO = Path(__file__).resolve().parents[2]
VENVS = [Path(sys.executable).parent, Path("/opt/jupyterhub-daas/venv-jh5/bin")]  # JupyterHub 6, and 5


def test_the_backends_configurables_are_found_through_the_registry() -> None:
    names = [cls.__name__ for cls in configurables()]
    assert {cls.__name__ for cls in backend_classes().values()} <= set(names)
    assert {"Backend", "ContainedBackend", "SlurmRest", "UserAccounts"} <= set(names)
    assert names.index("Backend") < names.index("SlurmBackend")  # bases first, as --help-all orders them
    assert len(names) == len(set(names))


@pytest.mark.parametrize("bin_dir", VENVS, ids=lambda path: path.parent.name)
def test_help_all_lists_every_backends_options_once(bin_dir: Path) -> None:
    if not (bin_dir / "python").exists():
        pytest.fail(f"{bin_dir.parent} is missing: tests/setup.sh makes it")
    # From the checkout (cwd first on the path), the hub's spawner entry point loads this tree's daas_spawner.
    shown = subprocess.run(
        [str(bin_dir / "python"), "-m", "jupyterhub", "--help-all"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=120,
    ).stdout
    for cls in configurables():
        assert len(re.findall(rf"^{cls.__name__}\(.*\) options$", shown, re.MULTILINE)) == 1, cls.__name__
    for setting in (
        "--SlurmBackend.transport",
        "--SlurmRest.url",
        "--LocalBackend.user_prefix",
        "--KubernetesBackend.identity_source",
        "--OpenStackBackend.environment",
        "--UserAccounts.min_uid",
    ):
        assert f"\n{setting}=" in shown, setting
