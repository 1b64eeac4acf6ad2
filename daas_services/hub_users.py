"""A person as the hub knows them: proposals (the authenticator's auth_state) and running servers.

The service's own token needs `admin:auth_state` and `read:users`/`read:servers` on the hub;
the user's token never grants those, so a user cannot make a service believe in other
proposals or profiles. Proposals are cached briefly per user (a page view makes several calls);
servers never are: a limit decided on a server that stopped or started a moment ago is a bypass.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from typing import Any

import httpx

from daas_auth.proposals import Proposal, proposals_from_auth_state


class HubUsers:
    """Looks up users in the hub's REST API, with a short per-user cache."""

    def __init__(self, api_url: str | None = None, token: str | None = None, max_age: float = 30.0) -> None:
        self.api_url = (api_url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.token = token or os.environ["JUPYTERHUB_API_TOKEN"]
        self.max_age = max_age
        self.http = httpx.AsyncClient(timeout=10, headers={"Authorization": f"token {self.token}"})
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def model(self, username: str, fresh: bool = False) -> dict[str, Any]:
        """The hub's user model, from the cache unless `fresh` or older than max_age."""
        cached = self._cache.get(username)
        if cached and not fresh and time.monotonic() - cached[0] < self.max_age:
            return cached[1]
        response = await self.http.get(f"{self.api_url}/users/{urllib.parse.quote(username, safe='')}")
        response.raise_for_status()
        model = response.json()
        self._cache[username] = (time.monotonic(), model)
        return model

    async def proposals(self, username: str) -> list[Proposal]:
        return proposals_from_auth_state((await self.model(username)).get("auth_state"))

    async def server_profile(self, username: str, server_name: str) -> str | None:
        """The DaaS profile a running server of this user was started with (None: no such server).

        Always read from the hub now: servers start and stop at any moment.
        """
        server = (await self.model(username, fresh=True)).get("servers", {}).get(server_name) or {}
        profile = (server.get("user_options") or {}).get("profile")
        return profile if isinstance(profile, str) else None
