"""A person as the hub knows them: proposals (from the hub's proposals endpoint) and running servers.

The service's own token needs `custom:daas-proposals:read` and `read:users`/`read:servers`
on the hub, never `admin:auth_state` (which would hand it every user's OIDC tokens); the
user's token grants none of these, so a user cannot make a service believe in other proposals
or profiles. Proposals are cached briefly, for a bounded number of people (a page view makes
several calls; a service must not grow with everyone who ever called it); servers never are:
a limit decided on a server that stopped or started a moment ago is a bypass.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from daas_core.proposals import Proposal, parse_proposals

Value = TypeVar("Value")


class ExpiringLRU(Generic[Value]):
    """At most `max_entries` values, each for `max_age` seconds; the least recently used leaves first."""

    def __init__(self, max_entries: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_age = max_age
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, Value]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Value | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() - entry[0] >= self.max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: Value) -> None:
        self._entries[key] = (self.clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class HubUsers:
    """Looks up users in the hub's REST API; proposals with a bounded, short-lived cache."""

    def __init__(
        self,
        api_url: str | None = None,
        token: str | None = None,
        max_age: float = 30.0,
        max_entries: int = 1000,
    ) -> None:
        self.api_url = (api_url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.token = token or os.environ["JUPYTERHUB_API_TOKEN"]
        self.http = httpx.AsyncClient(timeout=10, headers={"Authorization": f"token {self.token}"})
        self._proposals: ExpiringLRU[tuple[Proposal, ...]] = ExpiringLRU(max_entries, max_age)

    async def proposals(self, username: str) -> list[Proposal]:
        """The person's proposals (ids and metadata), from the cache while it is fresh."""
        cached = self._proposals.get(username)
        if cached is None:
            name = urllib.parse.quote(username, safe="")
            response = await self.http.get(f"{self.api_url}/daas/users/{name}/proposals")
            response.raise_for_status()
            items = response.json().get("proposals")
            cached = tuple(parse_proposals(items if isinstance(items, list) else [], "hub")[0])
            self._proposals.put(username, cached)
        return list(cached)

    async def running_servers(self, username: str) -> dict[str, str | None]:
        """The person's servers the hub lists now (running or starting), each with its DaaS profile.

        Always read from the hub now: servers start and stop at any moment.
        """
        response = await self.http.get(f"{self.api_url}/users/{urllib.parse.quote(username, safe='')}")
        response.raise_for_status()
        servers: dict[str, Any] = response.json().get("servers") or {}
        running = {}
        for name, server in servers.items():
            if server and server.get("stopped") is not True:
                profile = (server.get("user_options") or {}).get("profile")
                running[name] = profile if isinstance(profile, str) else None
        return running
