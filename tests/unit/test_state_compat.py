"""State stored by the release before typed state (main 055a6f9) still loads, and polls (#15, item 3).

The fixtures are the spawner state that release stored in the hub database for a running Slurm
server and a running local server (captured from its integration tests' hub database).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from daas_spawner.backends.local.backend import LocalBackend, LocalState, process_start_time
from daas_spawner.backends.slurm.backend import SlurmBackend, SlurmState
from daas_spawner.spawner import STATE_KEY, DaaSSpawner, StartRecord, StoredServer

FIXTURES = Path(__file__).parent / "state_055a6f9"


def stored(kind: str) -> dict:
    return json.loads((FIXTURES / f"{kind}.json").read_text())


def fake_squeue(tmp_path: Path, rows: str) -> Path:
    """A squeue that prints these rows (the scheduler boundary; everything above it is real)."""
    script = tmp_path / "squeue"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{rows}'\n")
    script.chmod(0o755)
    return tmp_path


def test_a_slurm_server_of_055a6f9_loads_as_version_1() -> None:
    record = StoredServer.load(stored("slurm")[STATE_KEY])
    assert (record.backend, record.version, record.start) == ("slurm", 1, StartRecord())
    assert record.options is not None and record.options["partition"] == "cpu"
    state = SlurmBackend().load_state(record.state, record.version)
    assert state == SlurmState(username="alice", job_id="25", log="/home/alice/jupyterhub-daas-25.log")


@pytest.mark.parametrize(("rows", "status"), [("25|RUNNING|None|cpu01|N/A\n", None), ("", 1)])
async def test_a_slurm_server_of_055a6f9_polls(tmp_path: Path, rows: str, status: int | None) -> None:
    record = StoredServer.load(stored("slurm")[STATE_KEY])
    backend = SlurmBackend(slurm_bin_dir=str(fake_squeue(tmp_path, rows)))
    assert await backend.poll(backend.load_state(record.state, record.version)) == status
    await backend.close()


async def test_a_local_server_of_055a6f9_loads_and_polls(stranger: subprocess.Popen[bytes]) -> None:
    record = StoredServer.load(stored("local")[STATE_KEY])
    backend = LocalBackend()
    state = backend.load_state(record.state, record.version)
    assert state == LocalState(pid=17365, started=102383, uid=1001, host="127.0.0.1", port=49041)
    assert await backend.poll(state) == 0  # that process is gone (or its pid is another's now)
    alive = record.state | {"pid": stranger.pid, "started": process_start_time(stranger.pid)}
    assert await backend.poll(backend.load_state(alive, record.version)) is None


@pytest.mark.parametrize("kind", ["slurm", "local"])
def test_the_spawner_loads_055a6f9_state_and_stores_the_new_layout(kind: str) -> None:
    spawner = DaaSSpawner()
    spawner.load_state(stored(kind))
    assert spawner.backend_name == kind
    saved = spawner.get_state()[STATE_KEY]
    assert saved["backend"] == kind and saved["version"] == spawner.backend_state.version
    assert saved["state"] == spawner.backend_state.dump()
    assert saved["options"] == stored(kind)[STATE_KEY]["options"]
    assert not saved["start"]["starting"]  # a server of that release is resumed by nothing: it had started


def test_state_that_no_longer_loads_is_treated_as_gone() -> None:
    spawner = DaaSSpawner()
    broken = {STATE_KEY: {"backend": "slurm", "version": 9, "state": {"job_id": "1"}}}
    spawner.load_state(broken)
    assert spawner.backend_state is None and spawner.backend_name is None
