"""`Backend.ready`: setup once per instance, again after a failure; close at the hub's shutdown (#15, item 3)."""

from __future__ import annotations

import asyncio

import pytest

from daas_spawner.backends.base import Backend


class Recording(Backend):
    """A backend that records its setup and close calls; its first `failures` setups fail."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.failures = failures

    async def setup(self) -> None:
        self.calls.append("setup")
        await asyncio.sleep(0.01)  # concurrent callers arrive meanwhile
        if self.failures:
            self.failures -= 1
            raise RuntimeError("scheduler client would not open")

    async def close(self) -> None:
        self.calls.append("close")


async def test_concurrent_callers_share_one_setup() -> None:
    backend = Recording()
    await asyncio.gather(*(backend.ready() for _ in range(5)))
    await backend.ready()
    assert backend.calls == ["setup"]
    await backend.shutdown()
    assert backend.calls == ["setup", "close"]


async def test_a_failed_setup_is_tried_again_by_the_next_caller() -> None:
    backend = Recording(failures=1)
    with pytest.raises(RuntimeError):
        await backend.ready()
    await backend.ready()
    assert backend.calls == ["setup", "setup"]
    await backend.shutdown()


def test_cancelling_every_task_closes_the_backend() -> None:
    """What JupyterHub's shutdown does (shutdown_cancel_tasks): cancel all tasks, then wait for them.

    On a loop of its own: the tests share one loop, whose other tasks must live.
    """
    backend = Recording()

    async def hub_life_and_shutdown() -> None:
        await backend.ready()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)

    asyncio.run(hub_life_and_shutdown())
    assert backend.calls == ["setup", "close"]
