"""User-office sources: who takes part in which proposal, with titles, dates and data paths.

The user office is the facility's source of truth for proposal membership. A source is a
small class with one coroutine, `proposals(username, claims)`; it raises UserOfficeError
for anything that is not a clean answer, so the authenticator can fall back to its cache.
`HttpUserOffice` talks to a REST API; `FileUserOffice` reads a YAML/JSON file, for sites
without an API and for the demo.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from traitlets import Bool, Dict, Float, Unicode, default
from traitlets.config import LoggingConfigurable

from .proposals import Proposal, parse_proposals


class UserOfficeError(RuntimeError):
    """The user office gave no usable answer (down, slow, refused, or nonsense)."""


class UserOffice(LoggingConfigurable):
    """A source of proposals for a person."""

    async def proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal]:
        raise NotImplementedError

    def _valid(self, items: Any, source: str) -> list[Proposal]:
        if not isinstance(items, list):
            raise UserOfficeError(f"{source}: expected a list of proposals, got {type(items).__name__}")
        proposals, problems = parse_proposals(items, source)
        for problem in problems:
            self.log.warning("Skipping a proposal the user office sent: %s", problem)
        return proposals


class HttpUserOffice(UserOffice):
    """A user-office REST API: GET `url` (with the person filled in) returns their proposals as JSON."""

    url = Unicode(
        config=True,
        help="""URL of a person's proposals, e.g. `https://useroffice.example.org/api/users/{username}/proposals`.

        `{username}`, `{sub}` and `{email}` are replaced (URL-quoted) by the hub user name and the
        identity claims of the same names.""",
    )
    token = Unicode(
        config=True,
        help="Bearer token for the API. Defaults to $DAAS_USER_OFFICE_TOKEN, so it can stay out of config files.",
    )
    timeout = Float(
        5.0,
        config=True,
        help="Seconds for the whole request. A slow user office must not hold a login for long.",
    )
    validate_cert = Bool(True, config=True, help="Verify the API's TLS certificate.")
    proposals_key = Unicode(
        "proposals",
        config=True,
        help="Key of the proposal list when the API answers with an object; a bare JSON list is also accepted.",
    )
    field_names = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""The API's names for proposal fields, e.g. `{"id": "proposal_number", "instrument": "beamline"}`.

        Fields: id, title, instrument, start, end, role, raw_data, processed_data.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: httpx.AsyncClient | None = None

    @default("token")
    def _token_default(self) -> str:
        return os.environ.get("DAAS_USER_OFFICE_TOKEN", "")

    def request_url(self, username: str, claims: Mapping[str, Any]) -> str:
        values = {"username": username, "sub": claims.get("sub", ""), "email": claims.get("email", "")}
        return self.url.format(**{key: quote(str(value), safe="") for key, value in values.items()})

    def _renamed(self, item: Any) -> Any:
        if not isinstance(item, Mapping):
            return item
        renamed = dict(item)
        for field_name, key in self.field_names.items():
            if key in item:
                renamed[field_name] = item[key]
        return renamed

    async def proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal]:
        if not self.url:
            raise UserOfficeError("HttpUserOffice.url is not configured")
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, verify=self.validate_cert)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.request_url(username, claims)
        try:
            response = await self._client.get(url, headers=headers)
        except httpx.HTTPError as err:
            raise UserOfficeError(f"{url}: {type(err).__name__}: {err}") from None
        if response.status_code == 404:
            return []  # the user office does not know this person: no proposals
        if response.status_code != 200:
            raise UserOfficeError(f"{url}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise UserOfficeError(f"{url}: the answer is not JSON") from None
        items = body.get(self.proposals_key) if isinstance(body, Mapping) else body
        return self._valid([self._renamed(item) for item in items] if isinstance(items, list) else items, url)


class FileUserOffice(UserOffice):
    """Proposals from a YAML or JSON file: `{username: [proposal, ...]}`; re-read when it changes."""

    path = Unicode(config=True, help="The file. Edits take effect at the next login or refresh, no restart.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loaded: tuple[float, dict[str, Any]] | None = None

    def _table(self) -> dict[str, Any]:
        path = Path(self.path)
        try:
            mtime = path.stat().st_mtime
            if self._loaded is None or self._loaded[0] != mtime:
                text = path.read_text(encoding="utf-8")
                data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
                if not isinstance(data, dict):
                    raise UserOfficeError(f"{path}: expected a mapping of user name -> proposals")
                self._loaded = (mtime, data)
        except OSError as err:
            raise UserOfficeError(f"{path}: {err.strerror}") from None
        except (ValueError, yaml.YAMLError) as err:
            raise UserOfficeError(f"{path}: cannot parse: {err}") from None
        return self._loaded[1]

    async def proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal]:
        return self._valid(self._table().get(username) or [], f"{self.path} ({username})")


@dataclass
class ProposalCache:
    """Last good user-office answer per person: fresh for `max_age`, kept beyond it for outages."""

    max_age: float
    entries: dict[str, tuple[float, list[Proposal]]] = field(default_factory=dict)

    def fresh(self, username: str) -> list[Proposal] | None:
        entry = self.entries.get(username)
        return entry[1] if entry and time.time() - entry[0] < self.max_age else None

    def last(self, username: str) -> tuple[float, list[Proposal]] | None:
        return self.entries.get(username)

    def put(self, username: str, proposals: list[Proposal], fetched_at: float | None = None) -> None:
        self.entries[username] = (time.time() if fetched_at is None else fetched_at, proposals)

    def seed(self, username: str, proposals: list[Proposal], fetched_at: float) -> None:
        """Remember an answer stored in auth_state (e.g. after a hub restart), unless a newer one is held."""
        entry = self.entries.get(username)
        if entry is None or entry[0] < fetched_at:
            self.put(username, proposals, fetched_at)
