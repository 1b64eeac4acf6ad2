"""Every backend keeps the contract (tests/contract.py): the fake backend, and local processes for real.

Slurm runs the same checks on the real cluster (tests/integration/test_backend_contract.py): its
boundary is the scheduler, which a fake here would only imitate.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from traitlets.config import Config

from daas_spawner.backends.base import Backend, BackendState, Launch, ServerAddress
from daas_spawner.backends.local.backend import LocalBackend
from daas_spawner.options import UserAccess, resolve_options
from daas_spawner.profiles import local_demo

from ..contract import CHECKS, Harness
from ..fake_backend import SERVE, FakeBackend

MARK = "DAAS_CONTRACT_LAUNCH"


def local_launch() -> Launch:
    """A local-profile launch whose server is a plain HTTP server, marked to be counted."""
    options = resolve_options({}, local_demo(), UserAccess())
    return Launch(
        username="contract",
        server="contract",
        options=options,
        env={"PATH": os.environ.get("PATH", os.defpath), MARK: secrets.token_hex(8)},
        command=[sys.executable, "-c", SERVE],
        secret_env={"JUPYTERHUB_API_TOKEN": secrets.token_hex(16)},
        bootstrap=secrets.token_urlsafe(16),
    )


def marked(wanted: bytes) -> int:
    """How many live processes have this environment entry (dead and zombie ones show no environment)."""
    found = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and wanted in (entry / "environ").read_bytes().split(b"\0"):
                found += 1
        except OSError:
            continue
    return found


async def count_processes(launch: Launch) -> int:
    return marked(f"{MARK}={launch.env[MARK]}".encode())


async def never_reported(backend: Backend, state: BackendState) -> ServerAddress:
    """These backends check the port themselves: no report comes."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def harness(kind: str, tmp_path: Path) -> Harness:
    config = Config()
    config.FakeBackend.world = str(tmp_path / "world")
    factories: dict[str, Callable[[], Backend]] = {
        "fake": lambda: FakeBackend(config=config),
        "local": lambda: LocalBackend(config=config, stop_timeout=5),
    }
    return Harness(factories[kind], local_launch, never_reported, count_processes, timeout=20)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("kind", ["fake", "local"])
async def test_backend_keeps_the_contract(kind: str, check: Callable, tmp_path: Path) -> None:
    await check(harness(kind, tmp_path))


async def test_the_fake_removes_its_volume_with_a_cut_off_start(tmp_path: Path) -> None:
    """What a VM's start leaves besides the server (a volume) goes too, from the first checkpoint alone."""
    config = Config()
    config.FakeBackend.world = str(tmp_path)
    backend, launch = FakeBackend(config=config), local_launch()
    checkpoints = [checkpoint async for checkpoint in backend.start(launch)]
    assert [c.volume for c in checkpoints] == [False, True, True]
    assert backend.volume(checkpoints[0]).is_dir()
    await FakeBackend(config=config).stop(checkpoints[0])
    assert not backend.volume(checkpoints[0]).exists()
    assert await count_processes(launch) == 0
