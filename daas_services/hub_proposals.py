"""A person's proposals as the hub knows them: the authenticator's auth_state, read by the service.

The service's own token needs `admin:auth_state` (and `read:users`) on the hub; the user's
token never grants that, so a user cannot make the service believe in other proposals.
Answers are cached briefly per user: a page view makes several API calls.
"""

from __future__ import annotations

import os
import time
import urllib.parse

import httpx

from daas_auth.proposals import Proposal, proposals_from_auth_state


class HubProposals:
    """Looks up users' proposals in the hub's REST API, with a short per-user cache."""

    def __init__(self, api_url: str | None = None, token: str | None = None, max_age: float = 30.0) -> None:
        self.api_url = (api_url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.token = token or os.environ["JUPYTERHUB_API_TOKEN"]
        self.max_age = max_age
        self.http = httpx.AsyncClient(timeout=10, headers={"Authorization": f"token {self.token}"})
        self._cache: dict[str, tuple[float, list[Proposal]]] = {}

    async def of(self, username: str) -> list[Proposal]:
        cached = self._cache.get(username)
        if cached and time.monotonic() - cached[0] < self.max_age:
            return cached[1]
        response = await self.http.get(f"{self.api_url}/users/{urllib.parse.quote(username, safe='')}")
        response.raise_for_status()
        proposals = proposals_from_auth_state(response.json().get("auth_state"))
        self._cache[username] = (time.monotonic(), proposals)
        return proposals
