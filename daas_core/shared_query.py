"""One scheduler query shared by every concurrent caller, its answer reused for `ttl` seconds.

Used for `scontrol ping` before each sbatch (sbatch against a stopped controller retries for
9-18 s before it gives up, and killing it early could lose a job it did submit; a ping changes
nothing and fails at once, so it can be cut short safely): a burst of 50 spawns costs one ping.
And for the node list (`sinfo`) a server's address report is checked against: 50 servers
reporting at once on a fresh hub ran 50 sinfo before (benchmarks/spawns.py), now one.
And the single flight behind the form's availability view (AvailabilityCache), which never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        return await asyncio.shield(self.start())

    def start(self) -> asyncio.Future[T]:
        """The query in flight, or a new one: for a caller that does not wait for it (a background refresh)."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._ask())
        return self._inflight

    @property
    def in_flight(self) -> asyncio.Future[T] | None:
        """The running query, if there is one."""
        return self._inflight if self._inflight is not None and not self._inflight.done() else None

    async def close(self) -> None:
        """Cancel a running query (the hub stops)."""
        running = self.in_flight
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    async def _ask(self) -> T:
        asked = time.monotonic()
        answer = await self._query()
        self._answer = (asked, answer)
        return answer
