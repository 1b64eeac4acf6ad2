"""The hub's one view of its VMs: a single `servers list` filtered by the hub's tag per interval.

Every poll, progress step, end check and reconciliation is a lookup in the last list, never a
compute call per server (the squeue principle). The list runs every `interval` seconds, and
every `busy_interval` while a start or a stop waits on it. A failed list is never an answer
about a server: the last good view stays, `error` says why, and a server counts as gone only
when a list that began after it was created does not show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Servers = dict[str, dict[str, Any]]


class ServerView:
    """The last good list of the hub's servers, by id; `subscribe` to hear about each new list."""

    def __init__(self, query: Callable[[], Awaitable[list[dict[str, Any]]]], interval: float, busy_interval: float):
        self._query = query
        self.interval = interval
        self.busy_interval = busy_interval
        self.servers: Servers = {}
        self.listed_at: float | None = None  # time.monotonic() when the last good list began
        self.taken_at: float | None = None  # time.time() of the same, for people
        self.error: str | None = None  # why the last list failed; None after a good one
        self.lists = 0  # lists asked for (the benchmark and tests count them)
        self._subscribers: list[Callable[[], None]] = []
        self._waiters = 0
        self._wake = asyncio.Event()
        self._listed = asyncio.Event()
        self._asked_at = 0.0  # time.monotonic() when the last list began (good or failed)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call back after each list (good or failed); returns the unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def notify(self) -> None:
        """Call the subscribers now (a poll that found a server ended: its watcher says why before the hub moves on)."""
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.exception("A subscriber of the OpenStack view failed")

    def server(self, server_id: str) -> dict[str, Any] | None:
        return self.servers.get(server_id)

    def find(self, key: str, value: str) -> dict[str, Any] | None:
        """The server whose metadata has `key` = `value` (a start's id), if the view shows one."""
        return next((s for s in self.servers.values() if s.get("metadata", {}).get(key) == value), None)

    def shows_gone(self, server_id: str, created: float) -> bool:
        """Whether a good list that began after `created` (time.monotonic()) lacks the server."""
        return server_id not in self.servers and self.listed_at is not None and self.listed_at > created

    @contextlib.asynccontextmanager
    async def hurry(self) -> AsyncIterator[None]:
        """While inside, list every busy_interval (a start or a stop waits on the view)."""
        self._waiters += 1
        self._wake.set()
        try:
            yield
        finally:
            self._waiters -= 1

    async def next_list(self) -> None:
        """Wait until the next list has finished (good or failed)."""
        await self._listed.wait()

    async def refresh(self) -> None:
        """List now (the first look after a hub start, before any answer is given)."""
        self.lists += 1
        started, taken = time.monotonic(), time.time()
        self._asked_at = started
        try:
            servers = await self._query()
        except Exception as err:  # an answer about the view, never a crash of the hub
            self.error = str(err) or type(err).__name__
            log.warning("Listing the hub's OpenStack servers failed, keeping the last view: %s", self.error)
        else:
            self.servers = {server["id"]: server for server in servers}
            self.listed_at, self.taken_at, self.error = started, taken, None
        listed, self._listed = self._listed, asyncio.Event()
        listed.set()
        self.notify()

    async def _loop(self) -> None:
        """One list per interval, counted from the start of the last (its own duration does not stretch it)."""
        while True:
            self._wake.clear()
            delay = self.busy_interval if self._waiters else self.interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, delay - (time.monotonic() - self._asked_at)))
            if self._wake.is_set():
                # Woken by a new waiter: keep to the busy interval since the last list.
                await asyncio.sleep(max(0.0, self.busy_interval - (time.monotonic() - self._asked_at)))
            await self.refresh()
