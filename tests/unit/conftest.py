"""Shared fixtures for the unit tests: one site's profiles, built in code."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator

import pytest

from daas_spawner.profiles import ProfileSet, parse_profiles

_SLURM_DEFAULTS = {
    "backend": "slurm",
    "slurm": {"account": "proj-42"},
}


def site_profiles_raw() -> dict:
    """cpu (presets, whole node, three environments), gpu, power9, a staff-only, a local and a VM profile."""
    walltime = {"choices": ["1:00:00", "4:00:00"], "default": "1:00:00", "max": "12:00:00"}
    raw = {
        "default_profile": "cpu",
        "profiles": [
            {
                **_SLURM_DEFAULTS,
                "id": "cpu",
                "display_name": "CPU",
                "resources": {
                    "partitions": ["cpu", "cpu-long"],
                    "cores": {"presets": {"min": 1, "medium": 4, "max": 8}, "whole_node": True, "max": 16},
                    "memory": {"min": "512M", "default": "2G", "max": "32G"},
                    "walltime": walltime,
                },
                "environments": [
                    {"id": "daas", "display_name": "DaaS Python", "prefix": "/opt/daas/venv"},
                    {"id": "mods", "display_name": "Modules", "modules": ["python/3.11", "cuda/12.2"]},
                    {
                        "id": "box",
                        "display_name": "Container",
                        "image": "/images/lab image.sif",
                        "apptainer_args": ["--nv", "--bind=/data"],
                    },
                ],
            },
            {
                **_SLURM_DEFAULTS,
                "id": "gpu",
                "display_name": "GPU",
                "resources": {
                    "partitions": ["gpu"],
                    "cores": {"presets": {"min": 2, "medium": 4}, "max": 8},
                    "memory": {"min": "1G", "default": "4G", "max": "64G"},
                    "gpus": {"types": ["tesla"], "max": 2, "default": 1},
                    "walltime": {"default": "2:00:00", "max": "8:00:00"},
                },
                "environments": [{"id": "daas", "display_name": "DaaS Python", "prefix": "/opt/daas/venv"}],
            },
            {
                **_SLURM_DEFAULTS,
                "id": "power9",
                "display_name": "Power9",
                "resources": {
                    "partitions": ["power9"],
                    "features": ["power9"],
                    "cores": {"presets": {"min": 1}, "max": 32},
                    "memory": {"default": "2G", "max": "14G"},
                    "walltime": walltime,
                },
            },
            {
                **_SLURM_DEFAULTS,
                "id": "staff",
                "display_name": "Staff only",
                "allowed_groups": ["staff"],
                "resources": {
                    "partitions": ["staff"],
                    "cores": {"max": 4},
                    "memory": {"default": "1G", "max": "4G"},
                    "walltime": walltime,
                },
            },
            {"id": "local", "display_name": "Local", "backend": "local", "default_url": "/lab"},
            {
                "id": "vm",
                "display_name": "Virtual machine",
                "backend": "openstack",
                "openstack": {"images": {"default": "daas-jupyter"}, "network": "none"},
                "resources": {"flavors": [{"name": "daas.small"}, {"name": "daas.gpu.a100"}], "walltime": walltime},
            },
        ],
    }
    return copy.deepcopy(raw)  # a fresh tree: tests change it


@pytest.fixture
def site() -> ProfileSet:
    return parse_profiles(site_profiles_raw(), "test-site.yaml")


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the backend's child, as a server from before a hub restart is not."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


DELETE = object()  # set_path's value that removes the key


def set_path(data: dict, path: str, value) -> None:
    """Set 'profiles.1.resources.cores.max' in nested dicts/lists (value DELETE removes it)."""
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
