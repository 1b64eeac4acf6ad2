"""One shared view of the Slurm queue for the whole hub (kubespawner's reflector, for squeue).

A single background loop runs one batched query per interval while any job is tracked;
every spawner's poll() is a lookup in the last answer. The loop speeds up (one query per
`busy_interval`, still for the whole hub) only while some start or stop is waiting.

A failed query is never an answer about a job: the last good view stays, its age grows,
and the loop retries with backoff. A job counts as ended only when a successful query
that began after the job was submitted shows it finished, or does not list it at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from daas_core.commands import CommandFailed

from .commands import JobInfo

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    UNKNOWN = "unknown"  # no successful query has seen it yet: assume it lives
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(frozen=True)
class JobStatus:
    phase: Phase
    info: JobInfo | None = None

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED


@dataclass
class _Tracked:
    submitted_at: float
    on_end: list[Callable[[], None]] = field(default_factory=list)
    waiters: int = 0


class SlurmQueue:
    """The shared squeue view. `query` runs the one batched command and returns its rows."""

    def __init__(
        self,
        query: Callable[[], Awaitable[dict[str, JobInfo]]],
        *,
        interval: float,
        busy_interval: float,
    ) -> None:
        self._query = query
        self.interval = interval
        self.busy_interval = busy_interval
        self._tracked: dict[str, _Tracked] = {}
        self._jobs: dict[str, JobInfo] = {}
        self._view_started: float | None = None  # monotonic start of the last good query
        self._inflight: asyncio.Task[None] | None = None
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self.failures = 0
        self.last_error: str | None = None
        self.queries = 0

    # -- tracking -----------------------------------------------------------------------

    def track(self, job_id: str, *, submitted_at: float = 0.0) -> None:
        """Follow a job; submitted_at=0 for jobs re-attached after a hub restart."""
        self._tracked.setdefault(job_id, _Tracked(submitted_at))
        self._ensure_loop()

    def untrack(self, job_id: str) -> None:
        self._tracked.pop(job_id, None)

    def on_end(self, job_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call back once when the job is seen to end; returns an unsubscribe function."""
        tracked = self._tracked[job_id]
        tracked.on_end.append(callback)

        def unsubscribe() -> None:
            if callback in tracked.on_end:
                tracked.on_end.remove(callback)

        return unsubscribe

    @contextlib.asynccontextmanager
    async def hurry(self, job_id: str) -> AsyncIterator[None]:
        """While inside, the whole view refreshes every busy_interval (a start or stop waits)."""
        tracked = self._tracked[job_id]
        tracked.waiters += 1
        self._wake.set()
        try:
            yield
        finally:
            tracked.waiters -= 1

    # -- reading ------------------------------------------------------------------------

    def status(self, job_id: str) -> JobStatus:
        """What the last good view says about a job (no query)."""
        info = self._jobs.get(job_id)
        if info is not None:
            if info.pending:
                return JobStatus(Phase.PENDING, info)
            if info.active:
                return JobStatus(Phase.ACTIVE, info)
            return JobStatus(Phase.ENDED, info)
        tracked = self._tracked.get(job_id)
        submitted_at = tracked.submitted_at if tracked else 0.0
        if self._view_started is not None and self._view_started > submitted_at:
            return JobStatus(Phase.ENDED)
        return JobStatus(Phase.UNKNOWN)

    async def current_status(self, job_id: str) -> JobStatus:
        """Like status(), but makes sure there has been at least one query (after a restart)."""
        if self._view_started is None:
            with contextlib.suppress(CommandFailed):
                await self.refresh()
        return self.status(job_id)

    @property
    def age(self) -> float | None:
        """Seconds since the last good view began; None before the first."""
        return None if self._view_started is None else time.monotonic() - self._view_started

    async def changed(self) -> None:
        """Wait for the next query to finish (successfully or not)."""
        await self._changed.wait()

    # -- querying -----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the loop and any query in flight (the hub stops); tracking again starts a new loop."""
        tasks = [task for task in (self._loop, self._inflight) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = self._inflight = None

    async def refresh(self) -> None:
        """Run the batched query now, or join the one already running; raise CommandFailed."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._run_query())
        await asyncio.shield(self._inflight)

    async def _run_query(self) -> None:
        started = time.monotonic()
        self.queries += 1
        try:
            jobs = await self._query()
        except CommandFailed as err:
            self.failures += 1
            self.last_error = str(err)
            log.warning("Slurm queue query failed (%d in a row), keeping last view: %s", self.failures, err)
            raise
        else:
            self._jobs = jobs
            self._view_started = started
            self.failures = 0
            self.last_error = None
            self._fire_end_callbacks()
        finally:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def _fire_end_callbacks(self) -> None:
        for job_id, tracked in list(self._tracked.items()):
            if tracked.on_end and self.status(job_id).ended:
                callbacks, tracked.on_end = tracked.on_end, []
                for callback in callbacks:
                    callback()

    def _next_delay(self) -> float:
        busy = any(tracked.waiters for tracked in self._tracked.values())
        base = self.busy_interval if busy else self.interval
        if self.failures:
            # Back off from a failing controller, but never wait longer than one interval.
            return min(self.interval, max(base, self.busy_interval * 2**self.failures))
        return base

    def _ensure_loop(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.ensure_future(self._run_loop())

    async def _run_loop(self) -> None:
        while self._tracked:
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_delay())
            if self._wake.is_set() and self._view_started is not None:
                # Woken by a new waiter: honour the busy interval since the last query.
                remaining = self.busy_interval - (self.age or 0)
                if remaining > 0:
                    await asyncio.sleep(remaining)
            if not self._tracked:
                break
            try:
                await self.refresh()
            except CommandFailed:
                pass  # logged by _run_query; the loop retries with backoff
            except Exception:
                log.exception("Slurm queue query crashed; retrying at the next interval")
