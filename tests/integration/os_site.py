"""A site on the real OpenStack test cloud: VM profiles, the facility data tree, and a real JupyterHub with the
OpenStack backend (tests/cluster/openstack.sh; the boot agent plays the VMs). Test modules share it and may
add hub settings with `extra_config`.

The hub uses the project member `daas-hub` (cloud `daas-hub` in the cloud's clouds.yaml); the tests look with
the admin's. The images carry nothing (the fake driver boots nothing): the VM's "image" is this host, so its
environment is the test venv. Data: locations behind an NFS server name, which the VMs' user_data mounts (the
agent records the mounts; there is no NFS server, so the launcher reports the data unreachable).
alice has proposal 20231234 (ID11), bob 20230042 (D22), carol none.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .conftest import public_tempdir
from .data_tree import PROPOSALS, make_data_tree
from .hub import Hub
from .openstack import CLOUDS, Admin, cloud

VENV = Path(sys.executable).parent.parent
CPU = "vm-cpu"
GPU = "vm-gpu"


def profile(profile_id: str, flavors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": profile_id,
        "display_name": profile_id,
        "backend": "openstack",
        "environments": [
            {"id": "lab", "display_name": "JupyterLab", "prefix": str(VENV)},
            {"id": "desktop", "display_name": "Desktop", "prefix": str(VENV)},
        ],
        "openstack": {
            "images": {"lab": "daas-jupyter", "desktop": "daas-desktop"},
            "network": "none",
            "metadata": {"cost-centre": "daas-tests"},
        },
        "resources": {
            "flavors": flavors,
            "walltime": {"choices": ["1:00:00", "8:00:00"], "default": "1:00:00", "max": "1-00:00:00"},
        },
    }


IDLE = "vm-idle"  # ends after a minute without activity: the hub deletes the VM its server left
PROFILES = {
    "default_profile": CPU,
    "profiles": [
        profile(CPU, [{"name": "daas.small", "display_name": "Small"}, {"name": "daas.medium"}, {"name": "daas.huge"}]),
        profile(GPU, [{"name": "daas.gpu.a100", "display_name": "One A100"}]),
        profile(IDLE, [{"name": "daas.small"}]) | {"idle_timeout": "1m"},
    ],
}


class OpenStackSite:
    """The hub and the cloud, emptied first (`openstack.sh reset`: what an earlier run left).

    `interval` is the backend's list interval (and its reconciliation's); `extra_config(site)` gives more
    hub settings once the workdir and the data tree exist.
    """

    def __init__(self, interval: float = 2.0, extra_config: Callable[[OpenStackSite], str] | None = None) -> None:
        cloud("start")
        cloud("reset")
        subprocess.run(["bash", str(Path(__file__).parents[1] / "cluster" / "slurm.sh"), "users"], check=True)
        self.admin = Admin()
        self.interval = interval
        self.workdir = workdir = public_tempdir("daas-os-")
        self.tree = make_data_tree(workdir / "facility")
        self.data_file = workdir / "data.yaml"
        self.data_file.write_text(self.tree.locations_yaml + "mount_root: /data/proposals\nnfs_server: nfs.daas.test\n")
        profiles = workdir / "profiles.yaml"
        profiles.write_text(yaml.safe_dump(PROFILES))
        config = f"""
            from daas_spawner import load_profiles
            from daas_core.mounts import load_data_locations
            c.DaaSSpawner.profiles = load_profiles("{profiles}")
            c.DaaSSpawner.data_locations = load_data_locations("{self.data_file}")
            c.Authenticator.enable_auth_state = True
            c.OpenStackBackend.cloud = "daas-hub"
            c.OpenStackBackend.interval = {interval}
            c.OpenStackBackend.busy_interval = 1.0
            c.OpenStackBackend.reconcile_interval = {interval}
            c.OpenStackBackend.api_timeout = 20
            c.JupyterHub.named_server_limit_per_user = 0
            c.Spawner.poll_interval = 1
            c.Spawner.start_timeout = 180
        """
        self.hub = Hub(
            workdir / "hub",
            textwrap.dedent(config) + textwrap.dedent(extra_config(self) if extra_config else ""),
            env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32), "OS_CLIENT_CONFIG_FILE": str(CLOUDS)},
        ).start()
        self.hub.create_users_with_proposals(PROPOSALS)

    def stop_all_servers(self) -> None:
        self.hub.stop_all_servers(PROPOSALS)

    def close(self) -> None:
        self.hub.stop()
        cloud("reset")
