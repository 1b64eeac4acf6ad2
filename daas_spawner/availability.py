"""Live cluster availability: one cached view shared by every viewer, and its hub endpoint.

A page that shows free cores and GPUs is opened by many users at once; asking the scheduler
for each view would put the controller's load in the users' hands. `AvailabilityCache`
instead runs at most one query per `ttl` for the whole hub (single flight: concurrent
callers join the running query) and always answers at once from the last good data,
marked stale when it is older than `ttl` or the last refresh failed. A failed refresh
waits `ttl` before the next try, so a dead controller is not hammered either.

`GET /hub/api/daas/availability` shows a user, per backend, what the profiles they may use can get now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from jupyterhub.apihandlers import APIHandler
from jupyterhub.user import User
from tornado import web

from daas_core.shared_query import SharedQuery

log = logging.getLogger(__name__)

PATH = r"/api/daas/availability"


class PartitionView(Protocol):
    """What a backend's per-partition record must offer (e.g. slurm_availability.PartitionAvailability)."""

    def as_dict(self) -> dict[str, Any]: ...


Query = Callable[[], Awaitable[Mapping[str, PartitionView]]]


@dataclass(frozen=True)
class ClusterAvailability:
    """One answer: the partitions, when they were taken, and whether they can be trusted as current."""

    partitions: Mapping[str, PartitionView] = field(default_factory=dict)
    taken_at: str | None = None  # ISO 8601 UTC, when the query behind the data started
    age: float | None = None  # seconds since then
    stale: bool = True
    error: str | None = None  # why the last refresh failed, if it did

    def only(self, names: Iterable[str]) -> ClusterAvailability:
        """The same answer restricted to some partitions (the ones a user may ask for)."""
        wanted = set(names)
        partitions = {name: part for name, part in self.partitions.items() if name in wanted}
        return ClusterAvailability(partitions, self.taken_at, self.age, self.stale, self.error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "partitions": {name: part.as_dict() for name, part in sorted(self.partitions.items())},
            "taken_at": self.taken_at,
            "age": None if self.age is None else round(self.age, 3),
            "stale": self.stale,
            "error": self.error,
        }


class AvailabilityCache:
    """At most one scheduler query per ttl for the whole hub; snapshot() never waits for it (but once)."""

    def __init__(
        self,
        query: Query,
        *,
        ttl: float,
        first_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._query = query
        self.ttl = ttl
        self.first_wait = first_wait
        self._clock = clock
        self._wall_clock = wall_clock
        self._partitions: Mapping[str, PartitionView] | None = None
        self._taken: float | None = None  # clock() when the query behind the data started
        self._taken_wall: float | None = None
        self._failed_at: float | None = None  # clock() when the last refresh failed; None after a success
        self._refreshes = SharedQuery(self._refresh, ttl=0)  # the single flight; this class keeps the data
        self.error: str | None = None
        self.queries = 0

    def _age(self, now: float) -> float | None:
        return None if self._taken is None else max(now - self._taken, 0.0)

    @property
    def age(self) -> float | None:
        """Seconds since the query behind the data began; None before the first answer (the hub's metrics)."""
        return self._age(self._clock())

    def _due(self, now: float) -> bool:
        if self._refreshes.in_flight is not None:
            return False  # single flight: join the running query
        if self._failed_at is not None and now - self._failed_at < self.ttl:
            return False  # back off from a failing scheduler
        age = self._age(now)
        return age is None or age >= self.ttl

    def _start_refresh(self) -> asyncio.Future[None]:
        self.queries += 1
        return self._refreshes.start()

    async def _refresh(self) -> None:
        started, started_wall = self._clock(), self._wall_clock()
        try:
            partitions = await self._query()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a broken query must never reach a viewer
            self._failed_at = self._clock()
            self.error = str(err) or type(err).__name__
            log.warning("Availability query failed; keeping the last data (retry in %g s): %s", self.ttl, self.error)
        else:
            self._partitions = dict(partitions)
            self._taken, self._taken_wall = started, started_wall
            self._failed_at = None
            self.error = None

    async def snapshot(self, wait: float | None = None) -> ClusterAvailability:
        """The current view, at once; starts one background refresh when the data is due.

        Only while there has never been data does it wait, at most `wait` seconds
        (default `first_wait`), for the query it started or joined.
        """
        try:
            if self._due(self._clock()):
                self._start_refresh()
            inflight = self._refreshes.in_flight
            if self._partitions is None and inflight is not None:
                bound = self.first_wait if wait is None else wait
                if bound > 0:
                    await asyncio.wait({inflight}, timeout=bound)
            return self._view()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # never raise to a viewer, whatever went wrong
            log.exception("Availability snapshot failed")
            return ClusterAvailability(error=f"availability unavailable: {err}")

    def _view(self) -> ClusterAvailability:
        now = self._clock()
        age = self._age(now)
        stale = age is None or age > self.ttl or self.error is not None
        taken_at = None
        if self._taken_wall is not None:
            taken_at = datetime.fromtimestamp(self._taken_wall, tz=timezone.utc).isoformat(timespec="seconds")
        return ClusterAvailability(dict(self._partitions or {}), taken_at, age, stale, self.error)

    async def close(self) -> None:
        """Cancel a running refresh (tests, shutdown)."""
        await self._refreshes.close()


class AvailabilityAPIHandler(APIHandler):
    """GET /hub/api/daas/availability: for each backend of this user's profiles, what it shows as free now.

    The answer maps a backend's name to its `Backend.availability` (e.g. `slurm`: the partitions
    these profiles offer); backends that tell nothing are left out.
    """

    def get_login_url(self) -> str:
        # An API answers 403 without credentials; @web.authenticated would redirect a GET to the login page.
        raise web.HTTPError(403, "authentication required")

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        if not isinstance(user, User):
            raise web.HTTPError(403, "availability is shown per user (their profiles' backends)")
        spawner = user.spawner
        answer: dict[str, Any] = {}
        if hasattr(spawner, "allowed_profiles") and hasattr(spawner, "availability"):
            answer = await spawner.availability(await spawner.allowed_profiles())
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(answer)
