"""One scheduler query shared by every concurrent caller, its answer reused for `ttl` seconds.

Used for `scontrol ping` before each sbatch (sbatch against a stopped controller retries for
9-18 s before it gives up, and killing it early could lose a job it did submit; a ping changes
nothing and fails at once, so it can be cut short safely): a burst of 50 spawns costs one ping.
And for the node list (`sinfo`) a server's address report is checked against: 50 servers
reporting at once on a fresh hub ran 50 sinfo before (benchmarks/spawns.py), now one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedQuery(Generic[T]):
    """`get()` joins the query in flight, or reuses an answer younger than ttl, or asks anew."""

    def __init__(self, query: Callable[[], Awaitable[T]], *, ttl: float) -> None:
        self._query = query
        self.ttl = ttl
        self._answer: tuple[float, T] | None = None  # (monotonic time asked, answer)
        self._inflight: asyncio.Task[T] | None = None

    async def get(self) -> T:
        if self._answer is not None and time.monotonic() - self._answer[0] < self.ttl:
            return self._answer[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._ask())
        return await asyncio.shield(self._inflight)

    async def _ask(self) -> T:
        asked = time.monotonic()
        answer = await self._query()
        self._answer = (asked, answer)
        return answer
