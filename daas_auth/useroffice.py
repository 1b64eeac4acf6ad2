"""User-office sources: who takes part in which proposal, and which Unix account a person has.

The user office is the facility's source of truth for proposal membership. A source is a
small class with the coroutine `proposals(username, claims)` and, where it links people to
accounts, `account(person_id)`: the account of the person with that stable id (OIDC `sub`),
for providers that let people choose their user names. Both raise UserOfficeError for
anything that is not a clean answer, so the authenticator can fall back to its cache.
`HttpUserOffice` talks to a REST API; `FileUserOffice` reads YAML/JSON files, for sites
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

from daas_core.proposals import Proposal, parse_proposals


class UserOfficeError(RuntimeError):
    """The user office gave no usable answer (down, slow, refused, or nonsense)."""


class UserOffice(LoggingConfigurable):
    """A source of proposals for a person, and perhaps of their account."""

    async def proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal]:
        raise NotImplementedError

    @property
    def links_accounts(self) -> bool:
        """Whether `account` is configured: the authenticator refuses to start on one that is not."""
        return False

    async def account(self, person_id: str) -> str | None:
        """The Unix account the user office links to this person id (the `sub` claim); None: no account."""
        raise UserOfficeError(f"{type(self).__name__} is not configured to link people to accounts")

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
    account_url = Unicode(
        config=True,
        help="""URL of the Unix account linked to a person, e.g.
        `https://useroffice.example.org/api/people/{sub}/account`, answering a JSON object with the
        account under `account_key` (`{"username": "bob"}`), or 404 when the person has none.

        `{sub}` is replaced (URL-quoted) by the person's stable id (`DaaSAuthenticator.person_id_claim`).
        Empty: this user office does not link people to accounts.""",
    )
    account_key = Unicode("username", config=True, help="Key of the account name in the `account_url` answer.")
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

    async def _get_json(self, url: str) -> Any:
        """The API's JSON answer at `url`; None for a 404 (the user office does not know the person)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, verify=self.validate_cert)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = await self._client.get(url, headers=headers)
        except httpx.HTTPError as err:
            raise UserOfficeError(f"{url}: {type(err).__name__}: {err}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UserOfficeError(f"{url}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise UserOfficeError(f"{url}: the answer is not JSON") from None

    async def proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal]:
        if not self.url:
            raise UserOfficeError("HttpUserOffice.url is not configured")
        url = self.request_url(username, claims)
        body = await self._get_json(url)
        if body is None:
            return []  # an unknown person has no proposals
        items = body.get(self.proposals_key) if isinstance(body, Mapping) else body
        return self._valid([self._renamed(item) for item in items] if isinstance(items, list) else items, url)

    @property
    def links_accounts(self) -> bool:
        return bool(self.account_url)

    async def account(self, person_id: str) -> str | None:
        if not self.account_url:
            return await super().account(person_id)
        url = self.account_url.format(sub=quote(person_id, safe=""))
        body = await self._get_json(url)
        if body is None:
            return None
        if not isinstance(body, Mapping) or not isinstance(body.get(self.account_key), str):
            raise UserOfficeError(f"{url}: expected an object with a string {self.account_key!r}")
        return body[self.account_key]


@dataclass
class MappingFile:
    """A YAML or JSON file holding one mapping, read again whenever its mtime changes."""

    path: Path
    what: str  # for messages: "user name -> proposals"
    loaded: tuple[float, dict[str, Any]] | None = None

    def table(self) -> dict[str, Any]:
        try:
            mtime = self.path.stat().st_mtime
            if self.loaded is None or self.loaded[0] != mtime:
                text = self.path.read_text(encoding="utf-8")
                data = json.loads(text) if self.path.suffix == ".json" else yaml.safe_load(text)
                if not isinstance(data, dict):
                    raise UserOfficeError(f"{self.path}: expected a mapping of {self.what}")
                self.loaded = (mtime, data)
        except OSError as err:
            raise UserOfficeError(f"{self.path}: {err.strerror}") from None
        except (ValueError, yaml.YAMLError) as err:
            raise UserOfficeError(f"{self.path}: cannot parse: {err}") from None
        return self.loaded[1]


class FileUserOffice(UserOffice):
    """Proposals from a YAML or JSON file: `{username: [proposal, ...]}`; re-read when it changes."""

    path = Unicode(config=True, help="The file. Edits take effect at the next login or refresh, no restart.")
    accounts_path = Unicode(
        config=True,
        help="""A YAML or JSON file `{<person id>: <Unix account>}` linking people (their `sub`) to
        accounts, re-read when it changes; quote ids that YAML would read as numbers. Empty: this
        user office does not link people to accounts.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proposals = MappingFile(Path(self.path), "user name -> proposals")
        self._accounts = MappingFile(Path(self.accounts_path), "person id -> account")

    async def proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal]:
        return self._valid(self._proposals.table().get(username) or [], f"{self.path} ({username})")

    @property
    def links_accounts(self) -> bool:
        return bool(self.accounts_path)

    async def account(self, person_id: str) -> str | None:
        if not self.accounts_path:
            return await super().account(person_id)
        account = self._accounts.table().get(person_id)
        if account is not None and not isinstance(account, str):
            raise UserOfficeError(f"{self.accounts_path}: the account of {person_id!r} is not a name")
        return account


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
