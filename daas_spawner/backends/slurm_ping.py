"""Is slurmctld answering? Asked before every sbatch, so a spawn fails in seconds when it is not.

sbatch against a stopped controller retries for MessageTimeout and more (9-18 s) before it gives up,
and killing it early could lose a job it did submit. `scontrol ping` changes nothing and fails at
once when the controller is gone, so it can be cut short safely. Concurrent spawns share one ping,
and its answer is reused for `ttl` seconds: a burst of 50 spawns costs one ping, not 50.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class ControllerPing:
    """One shared, briefly cached answer to "is the controller up?"."""

    def __init__(self, ping: Callable[[], Awaitable[bool]], *, ttl: float) -> None:
        self._ping = ping
        self.ttl = ttl
        self._answer: tuple[float, bool] | None = None  # (monotonic time asked, answer)
        self._inflight: asyncio.Task[bool] | None = None
        self.pings = 0

    async def answering(self) -> bool:
        if self._answer is not None and time.monotonic() - self._answer[0] < self.ttl:
            return self._answer[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._ask())
        return await asyncio.shield(self._inflight)

    async def _ask(self) -> bool:
        asked = time.monotonic()
        self.pings += 1
        answer = await self._ping()
        self._answer = (asked, answer)
        return answer
