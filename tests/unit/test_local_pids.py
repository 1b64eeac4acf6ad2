"""After a hub restart the local backend knows its servers by pid and start time: a reused pid is not ours."""

from __future__ import annotations

import subprocess
import time

from daas_spawner.backends.local.backend import LocalBackend, LocalState, process_start_time


def test_start_time_of_a_process(stranger: subprocess.Popen[bytes]) -> None:
    started = process_start_time(stranger.pid)
    assert isinstance(started, int) and started > 0
    assert process_start_time(stranger.pid) == started
    stranger.kill()
    stranger.wait()
    assert process_start_time(stranger.pid) is None


def test_a_dead_process_has_no_start_time() -> None:
    zombie = subprocess.Popen(["true"])
    try:
        while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)  # until it has exited, not yet reaped
        assert process_start_time(zombie.pid) is None
    finally:
        zombie.wait()


async def test_a_reused_pid_is_neither_polled_as_running_nor_stopped(stranger: subprocess.Popen[bytes]) -> None:
    backend = LocalBackend(stop_timeout=2)
    reused = LocalState(pid=stranger.pid, started=process_start_time(stranger.pid) - 1, uid=0, host="127.0.0.1", port=1)
    assert await backend.poll(reused) == 0  # the server is gone: this pid belongs to someone else now
    await backend.stop(reused)
    assert stranger.poll() is None  # and that someone else was not signalled


async def test_the_same_process_is_running_and_is_stopped(stranger: subprocess.Popen[bytes]) -> None:
    backend = LocalBackend(stop_timeout=2)
    same = LocalState(pid=stranger.pid, started=process_start_time(stranger.pid), uid=0, host="127.0.0.1", port=1)
    assert await backend.poll(same) is None
    await backend.stop(same)
    assert stranger.wait(5) == -15  # SIGTERM
