"""The Backend contract as checks every backend passes (daas_spawner/backends/base.py says why each holds).

A `Harness` gives a backend kind's test set-up: a fresh backend instance (each one stands for a
hub: a second instance is the hub after a restart, with no memory but the stored state), a
Launch, how the server's address report arrives, and a count of the servers a launch made
that really exist (processes, Slurm jobs). The unit tests run these checks on the fake backend
and on local processes; the integration tests on the Slurm cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daas_spawner.backends.base import Backend, BackendState, Launch, ServerAddress


@dataclass
class Harness:
    """One backend kind's test set-up for the contract checks."""

    new_backend: Callable[[], Backend]
    launch: Callable[[], Launch]
    reported: Callable[[Backend, BackendState], Awaitable[ServerAddress]]
    count: Callable[[Launch], Awaitable[int]]  # servers of this launch that exist now
    timeout: float = 60.0


async def _ready(harness: Harness) -> Backend:
    backend = harness.new_backend()
    await backend.ready()
    return backend


def _restored(backend: Backend, state: BackendState) -> BackendState:
    """The state as the next hub loads it: through JSON and the backend's loader."""
    return backend.load_state(json.loads(json.dumps(state.dump())), state.version)


async def _up(harness: Harness, backend: Backend, state: BackendState) -> ServerAddress:
    reported = asyncio.ensure_future(harness.reported(backend, state))
    redeemed = asyncio.Event()
    redeemed.set()  # these servers have no bootstrap to redeem; a backend that waits for it tests that itself
    try:
        return await asyncio.wait_for(backend.wait_for_address(state, reported, redeemed), harness.timeout)
    finally:
        reported.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reported


async def _gone(harness: Harness, launch: Launch) -> bool:
    """Whether nothing of the launch remains (a scheduler may take a moment to forget a cancelled job)."""
    deadline = asyncio.get_running_loop().time() + harness.timeout
    while await harness.count(launch):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def start_poll_restart_stop(harness: Harness) -> None:
    """Checkpoints hold no secret and load again; poll works from stored state alone; stop is idempotent."""
    backend, launch = await _ready(harness), harness.launch()
    checkpoints = [checkpoint async for checkpoint in backend.start(launch)]
    assert checkpoints, "start yielded no checkpoint"
    for checkpoint in checkpoints:
        assert isinstance(checkpoint, backend.state_class)
        stored = json.dumps(checkpoint.dump())
        for secret in (*launch.secret_env.values(), launch.bootstrap):
            assert not secret or secret not in stored, "a checkpoint holds a secret"
        assert _restored(backend, checkpoint) == checkpoint
    state = checkpoints[-1]
    await _up(harness, backend, state)
    assert await backend.poll(state) is None
    assert await harness.count(launch) == 1

    next_hub = await _ready(harness)
    restored = _restored(next_hub, state)
    assert await next_hub.poll(restored) is None
    await next_hub.stop(restored)
    assert await next_hub.poll(restored) is not None
    await next_hub.stop(restored)  # again: quiet
    assert await _gone(harness, launch)
    await backend.shutdown()
    await next_hub.shutdown()


async def resume_reattaches(harness: Harness) -> None:
    """A start resumed from its last checkpoint makes no second server, and the server comes up."""
    backend, launch = await _ready(harness), harness.launch()
    checkpoints = [checkpoint async for checkpoint in backend.start(launch)]
    next_hub = await _ready(harness)
    resumed = [c async for c in next_hub.start(launch, _restored(next_hub, checkpoints[-1]))]
    assert resumed, "a resumed start yielded no checkpoint"
    await _up(harness, next_hub, resumed[-1])
    assert await harness.count(launch) == 1
    await next_hub.stop(resumed[-1])
    assert await _gone(harness, launch)
    await backend.shutdown()
    await next_hub.shutdown()


async def _cut_off_after_first_checkpoint(harness: Harness) -> tuple[Launch, BackendState]:
    """A start whose hub stored only the first checkpoint, while the backend made everything all the same."""
    backend, launch = await _ready(harness), harness.launch()
    checkpoints = [checkpoint async for checkpoint in backend.start(launch)]
    await backend.shutdown()
    return launch, checkpoints[0]


async def stop_from_the_first_checkpoint(harness: Harness) -> None:
    """The next hub stops a start cut off after its first checkpoint: nothing remains."""
    launch, first = await _cut_off_after_first_checkpoint(harness)
    next_hub = await _ready(harness)
    await next_hub.stop(_restored(next_hub, first))
    assert await _gone(harness, launch)
    await next_hub.shutdown()


async def resume_from_the_first_checkpoint(harness: Harness) -> None:
    """The next hub resumes a start cut off after its first checkpoint: one server, up."""
    launch, first = await _cut_off_after_first_checkpoint(harness)
    next_hub = await _ready(harness)
    resumed = [c async for c in next_hub.start(launch, _restored(next_hub, first))]
    await _up(harness, next_hub, resumed[-1])
    assert await harness.count(launch) == 1
    await next_hub.stop(resumed[-1])
    assert await _gone(harness, launch)
    await next_hub.shutdown()


async def newer_state_is_refused(harness: Harness) -> None:
    """State written by a newer release is a ValueError, not a guess."""
    backend = harness.new_backend()
    fields = {name: None for name in backend.state_class.model_fields}
    try:
        backend.load_state(fields, backend.state_class.version + 1)
    except ValueError:
        return
    raise AssertionError("a newer state version loaded")


CHECKS = (
    start_poll_restart_stop,
    resume_reattaches,
    stop_from_the_first_checkpoint,
    resume_from_the_first_checkpoint,
    newer_state_is_refused,
)
