"""The shared query (controller ping, node list): one call for concurrent callers, its answer held for ttl."""

from __future__ import annotations

import asyncio

from daas_core.shared_query import SharedQuery


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
    controller = SharedQuery(ping, ttl=60)
    waiting = [asyncio.ensure_future(controller.get()) for _ in range(50)]
    await asyncio.sleep(0)
    ping.gate.set()
    assert await asyncio.gather(*waiting) == [True] * 50
    assert ping.calls == 1


async def test_answer_is_reused_within_ttl_and_asked_again_after() -> None:
    ping = ScriptedPing(False, True)
    controller = SharedQuery(ping, ttl=60)
    assert await controller.get() is False
    assert await controller.get() is False
    assert ping.calls == 1
    controller.ttl = 0
    assert await controller.get() is True
    assert ping.calls == 2


async def test_a_cancelled_spawn_does_not_cancel_the_shared_ping() -> None:
    ping = ScriptedPing(True)
    ping.gate = asyncio.Event()
    controller = SharedQuery(ping, ttl=60)
    first = asyncio.ensure_future(controller.get())
    second = asyncio.ensure_future(controller.get())
    await asyncio.sleep(0)
    first.cancel()
    ping.gate.set()
    assert await second is True
    assert ping.calls == 1


async def test_a_background_start_is_joined_by_waiting_callers_and_close_cancels_it() -> None:
    ping = ScriptedPing(True, True)
    ping.gate = asyncio.Event()
    controller = SharedQuery(ping, ttl=0)
    background = controller.start()
    assert controller.start() is background and controller.in_flight is background
    waiting = asyncio.ensure_future(controller.get())
    await asyncio.sleep(0)
    ping.gate.set()
    assert await waiting is True and ping.calls == 1
    assert controller.in_flight is None
    ping.gate.clear()
    running = controller.start()
    await asyncio.sleep(0)
    await controller.close()
    assert running.cancelled() and controller.in_flight is None
