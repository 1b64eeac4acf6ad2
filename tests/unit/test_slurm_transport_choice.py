"""`c.SlurmBackend.transport`: which transport a backend gets, and what its setup refuses before any spawn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from daas_spawner.backends.base import SpawnFailed
from daas_spawner.backends.slurm.backend import SlurmBackend
from daas_spawner.backends.slurm.cli import CliTransport
from daas_spawner.backends.slurm.rest import RestTransport, SlurmRest


def backend(tmp_path: Path, **settings: object) -> SlurmBackend:
    config = Config()
    config.SlurmBackend.slurm_bin_dir = str(tmp_path / "no-slurm-here")
    for name, value in settings.items():
        section, _, trait = name.partition("__")
        setattr(config[section], trait, value)
    return SlurmBackend(config=config)


async def test_the_command_line_is_the_default_and_needs_the_commands(tmp_path: Path) -> None:
    cli = backend(tmp_path)
    assert isinstance(cli.slurm, CliTransport)
    with pytest.raises(SpawnFailed, match=r"cannot run sbatch, squeue, scancel, sinfo, scontrol in .*no-slurm-here"):
        await cli.setup()


async def test_rest_needs_no_command_only_its_key(tmp_path: Path) -> None:
    key = tmp_path / "jwt_hs256.key"
    key.write_bytes(os.urandom(32))
    rest = backend(tmp_path, SlurmBackend__transport="rest", SlurmRest__jwt_key_file=str(key))
    assert isinstance(rest.slurm, RestTransport)
    await rest.setup()  # no sbatch anywhere: fine
    await rest.close()


async def test_rest_without_a_key_or_helper_is_refused_at_setup(tmp_path: Path) -> None:
    with pytest.raises(SpawnFailed, match=r"needs c\.SlurmRest\.jwt_key_file"):
        await backend(tmp_path, SlurmBackend__transport="rest").setup()
    missing = str(tmp_path / "missing.key")
    with pytest.raises(SpawnFailed, match="cannot get Slurm tokens: the Slurm JWT key cannot be read"):
        await backend(tmp_path, SlurmBackend__transport="rest", SlurmRest__jwt_key_file=missing).setup()
    helper = backend(
        tmp_path,
        SlurmBackend__transport="rest",
        SlurmRest__token_source="command",
        SlurmRest__token_command=[str(tmp_path / "no-helper")],
    )
    with pytest.raises(SpawnFailed, match="no-helper is not executable"):
        await helper.setup()


@pytest.mark.parametrize(
    "setting, value",
    [("url", "ftp://slurm:6820"), ("url", "127.0.0.1:6820"), ("api_version", "v0.0.40"), ("token_lifetime", 1)],
)
def test_rest_settings_are_checked_when_set(setting: str, value: object) -> None:
    with pytest.raises(TraitError):
        SlurmRest(**{setting: value})
