"""The shared controller ping: one `scontrol ping` for concurrent spawns, its answer held for ttl."""

from __future__ import annotations

import asyncio

from daas_spawner.backends.slurm_ping import ControllerPing


class ScriptedPing:
    """Answers in order from `answers`; each call waits for `gate` when one is set."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> bool:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.answers.pop(0)


async def test_concurrent_spawns_share_one_ping() -> None:
    ping = ScriptedPing(True)
    ping.gate = asyncio.Event()
    controller = ControllerPing(ping, ttl=60)
    waiting = [asyncio.ensure_future(controller.answering()) for _ in range(50)]
    await asyncio.sleep(0)
    ping.gate.set()
    assert await asyncio.gather(*waiting) == [True] * 50
    assert ping.calls == 1


async def test_answer_is_reused_within_ttl_and_asked_again_after() -> None:
    ping = ScriptedPing(False, True)
    controller = ControllerPing(ping, ttl=60)
    assert await controller.answering() is False
    assert await controller.answering() is False
    assert ping.calls == 1
    controller.ttl = 0
    assert await controller.answering() is True
    assert ping.calls == 2


async def test_a_cancelled_spawn_does_not_cancel_the_shared_ping() -> None:
    ping = ScriptedPing(True)
    ping.gate = asyncio.Event()
    controller = ControllerPing(ping, ttl=60)
    first = asyncio.ensure_future(controller.answering())
    second = asyncio.ensure_future(controller.answering())
    await asyncio.sleep(0)
    first.cancel()
    ping.gate.set()
    assert await second is True
    assert ping.calls == 1
