"""DaaSAuthenticator: OIDC login (Keycloak, Umbrella/eduTEAMS) that knows a person's account and proposals.

All logic lives in `DaaSAuthenticator`; the provider presets below only change defaults.
The hub name is the person's Unix account (the spawner runs servers as it), so it comes from
a source the facility controls: a claim the site trusts (`account_claim`), or the user office's
answer for the person's stable `sub`; never a name people choose at their provider.
At login and at refresh the person's proposals are assembled from the identity claims
(claim rules) and the user office (with its metadata), stored in the encrypted auth_state
and mirrored as JupyterHub groups (`proposal-<id>`), so roles, sharing and the spawner's
profile restrictions can use them; the identity provider's own groups stay beside them.

Tokens are renewed only once they have expired: renewing early would rotate the refresh
token under servers that were handed the current one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler
from pydantic import ValidationError
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Bool, Dict, Float, Instance, List, TraitError, Unicode, default, validate

from daas_core.identity import AUTH_STATE_KEY as POSIX_KEY
from daas_core.identity import identity_from_claims
from daas_core.proposals import Proposal, proposals_from_auth_state

from .accounts import NoAccount, account_name
from .discovery import DiscoveryError, discovery_url, endpoints_from_discovery
from .proposals import ClaimRule, claim_value, merge_proposals, proposals_from_claims
from .useroffice import ProposalCache, UserOffice, UserOfficeError

ACCOUNT_OFFICE_DOWN = (
    "The user office did not answer which facility account is yours (it may be down); try again in a few minutes."
)
OFFICE_DOWN_WARNING = (
    "The user office could not be reached: you see the proposals named by your login only, "
    "without titles or data folders, until it answers again."
)


class DiscoveringLoginHandler(OAuthLoginHandler):
    """Read the provider's endpoints (once) before sending the browser there."""

    async def get(self) -> None:
        await self.authenticator.discover()
        super().get()


class DaaSAuthenticator(GenericOAuthenticator):
    """OIDC login whose users carry their experiment proposals into auth_state and groups."""

    login_handler = DiscoveringLoginHandler

    issuer = Unicode(
        config=True,
        help="""The OpenID provider's issuer URL, e.g. `https://keycloak.example.org/realms/facility`.

        The authorize, token and userinfo URLs are read from its
        `.well-known/openid-configuration` at the first login. URLs set explicitly
        (`authorize_url`, `token_url`, `userdata_url`) take precedence.""",
    )
    account_claim = Unicode(
        config=True,
        help="""The identity claim whose value is the person's Unix account at the facility: the hub
        name, which servers, data reads and Dask clusters run as.

        Only a claim the facility controls, e.g. `uid` from a Keycloak user-attribute mapper fed
        by LDAP, or a Keycloak realm's `preferred_username` where usernames come from LDAP and
        people can neither register nor edit them. Never one people choose: eduTEAMS and
        Umbrella let them pick `preferred_username`. The value must be an account name as it is
        (`[a-z_][a-z0-9_.-]{0,31}`); anything else refuses the login, it is not lower-cased or
        trimmed into a name.

        Empty: the user office links the person's stable id (`person_id_claim`, `sub`) to their
        account (`HttpUserOffice.account_url` or `FileUserOffice.accounts_path`); a person it
        links to no account cannot log in.""",
    )
    person_id_claim = Unicode(
        "sub",
        config=True,
        help="""The claim that identifies a person for the user office's account lookup (used when
        `account_claim` is empty). OIDC's `sub` is unique and never reassigned by its issuer;
        user names and e-mail addresses can be chosen or change hands.""",
    )
    uid_claim = Unicode(
        config=True,
        help="""The claim holding the person's numeric Unix uid (e.g. `uidNumber` from a Keycloak LDAP
        mapper), stored in auth_state for backends whose servers get numeric ids rather than an account
        name: Kubernetes pods with `c.KubernetesBackend.identity_source = "auth_state"`. Like
        `account_claim`, only a claim the facility fills from its directory, never one people edit.
        Empty: no ids in auth_state (backends look the account up with the name service).""",
    )
    gid_claim = Unicode(
        config=True,
        help="The claim holding the person's primary numeric gid (e.g. `gidNumber`); needed with `uid_claim`.",
    )
    groups_claim = Unicode(
        config=True,
        help="""The claim holding the person's supplementary numeric gids (a list, e.g. the proposals' Unix
        groups), which decide the data a pod can read. Empty: the primary group only.""",
    )
    proposal_claim_rules = List(
        Dict(),
        config=True,
        help="""How proposal ids are read from the identity claims: a list of
        `{"claim": "<dotted claim name>", "pattern": "<regex with (?P<id>...)>"}`.

        Every claim value that fully matches a rule's pattern gives one proposal id, e.g.
        `{"claim": "groups", "pattern": "/proposals/(?P<id>[0-9]+)"}`.""",
    )
    user_office = Instance(
        UserOffice,
        allow_none=True,
        config=True,
        help="""Where proposal membership and metadata come from, e.g.
        `HttpUserOffice(url=...)` or `FileUserOffice(path=...)` from `daas_auth.useroffice`.
        None: the claims alone decide.""",
    )
    proposals_max_age = Float(
        600.0,
        config=True,
        help="""Seconds a person's proposals are trusted before refresh asks the user office again.

        This is also the user-office cache lifetime. When the user office is down, the last
        answer is used however old it is (and the failure logged).""",
    )
    proposal_group_template = Unicode(
        "proposal-{id}",
        config=True,
        help="""Name of the JupyterHub group that mirrors a proposal; `{id}` is the proposal id, with fixed
        text around it. Groups named that way come from people's proposals only: the identity provider's
        groups that look like one are dropped (logged), since proposal groups decide sharing.""",
    )
    allow_proposal_members = Bool(
        True,
        config=True,
        help="""Let anyone with at least one proposal log in (besides allowed_users, allowed_groups,
        ...). A facility's users are the people on its proposals.""",
    )

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True  # proposals and tokens live there (needs JUPYTERHUB_CRYPT_KEY)

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email"]

    @default("login_service")
    def _login_service_default(self) -> str:
        return "your facility account"

    @validate("proposal_group_template")
    def _valid_group_template(self, proposal: Any) -> str:
        prefix, found, suffix = proposal.value.partition("{id}")
        if not found or not (prefix or suffix) or any(brace in prefix + suffix for brace in "{}"):
            raise TraitError(
                f"proposal_group_template {proposal.value!r} must hold {{id}} once with fixed text around it "
                "(e.g. 'proposal-{id}'): the text keeps proposal groups apart from the identity provider's groups"
            )
        return proposal.value

    @validate("proposal_claim_rules")
    def _valid_rules(self, proposal: Any) -> list[dict[str, Any]]:
        for index, rule in enumerate(proposal.value):
            try:
                ClaimRule.model_validate(rule)
            except ValidationError as err:
                first = err.errors(include_url=False)[0]
                raise TraitError(f"proposal_claim_rules[{index}]: {first['loc'] or ''} {first['msg']}") from None
        return proposal.value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._discovery_lock = asyncio.Lock()
        self._discovered = not self.issuer
        self._office_cache = ProposalCache(max_age=self.proposals_max_age)
        self._last_accounts: dict[str, str] = {}  # person id -> the user office's last answer, for outages
        if any("username_claim" in (self.config.get(cls.__name__) or {}) for cls in type(self).mro()):
            raise TraitError(
                f"{type(self).__name__} does not name people by username_claim: set account_claim (a claim your "
                "facility controls), or let the user office link people's sub to their accounts"
            )
        if not self.account_claim and not (self.user_office and self.user_office.links_accounts):
            raise TraitError(
                f"{type(self).__name__} needs to know people's Unix accounts: set account_claim to a claim "
                "your facility controls (e.g. an LDAP uid), or give a user_office that links people's "
                f"{self.person_id_claim!r} to accounts (HttpUserOffice.account_url, FileUserOffice.accounts_path)"
            )

    # -- discovery -----------------------------------------------------------------------

    async def discover(self) -> None:
        """Fill the endpoint URLs from the issuer's discovery document, once; 503 while it is unreachable."""
        if self._discovered:
            return
        async with self._discovery_lock:
            if self._discovered:
                return
            url = discovery_url(self.issuer)
            try:
                document = await self.httpfetch(url, "Fetching OIDC discovery", method="GET")
                endpoints = endpoints_from_discovery(self.issuer, document)
            except (HTTPClientError, OSError, ValueError, DiscoveryError) as err:
                self.log.error("OIDC discovery failed: %s: %s", url, err)
                message = "The login service cannot reach the identity provider; try again shortly."
                raise web.HTTPError(503, message) from None
            for trait, endpoint in endpoints.items():
                if not getattr(self, trait):
                    setattr(self, trait, endpoint)
            self._discovered = True
            self.log.info("OIDC discovery of %s: %s", self.issuer, endpoints)

    async def authenticate(self, handler: web.RequestHandler, data: Any = None, **kwargs: Any) -> Any:
        await self.discover()
        return await super().authenticate(handler, data, **kwargs)

    # -- the account -----------------------------------------------------------------------

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        """A placeholder: update_auth_model replaces it by the account (the user office answers asynchronously)."""
        return ""

    async def account(self, claims: Mapping[str, Any]) -> str:
        """The person's Unix account, from the trusted claim or the user office; NoAccount when there is none."""
        if self.account_claim:
            return account_name(claims.get(self.account_claim), f"Your login's {self.account_claim!r}")
        person_id = claims.get(self.person_id_claim)
        if not isinstance(person_id, str) or not person_id:
            raise NoAccount(f"Your login carries no {self.person_id_claim!r} to find your facility account by")
        try:
            found = await self.user_office.account(person_id)
        except UserOfficeError as err:
            found = self._last_accounts.get(person_id)
            if found is None:
                self.log.error("User office failed to name the account of %s: %s", person_id, err)
                raise web.HTTPError(503, ACCOUNT_OFFICE_DOWN) from None
            self.log.warning("User office failed (%s); %s keeps its last known account %s", err, person_id, found)
            return found
        if found is None:
            raise NoAccount(
                f"No facility account is linked to your login ({self.person_id_claim} {person_id}); "
                "please ask the user office to link it"
            )
        account = account_name(found, "The user office")
        self._last_accounts[person_id] = account
        return account

    # -- proposals -----------------------------------------------------------------------

    def claim_rules(self) -> list[ClaimRule]:
        return [ClaimRule.model_validate(rule) for rule in self.proposal_claim_rules]

    async def _office_proposals(self, username: str, claims: Mapping[str, Any]) -> list[Proposal] | None:
        """The user office's answer, a cached one when it fails, or None when there is neither."""
        if self.user_office is None:
            return []
        fresh = self._office_cache.fresh(username)
        if fresh is not None:
            return fresh
        try:
            proposals = await self.user_office.proposals(username, claims)
        except UserOfficeError as err:
            last = self._office_cache.last(username)
            if last is not None:
                age = time.time() - last[0]
                self.log.warning("User office failed for %s (%s); using its answer from %.0f s ago", username, err, age)
                return last[1]
            self.log.warning("User office failed for %s (%s) and nothing is cached; claims only", username, err)
            return None
        self._office_cache.put(username, proposals)
        return proposals

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Name the person by their account; add their proposals (and a warning when the user office
        could not help) to auth_state."""
        auth_state = auth_model["auth_state"]
        claims = auth_state.get(self.user_auth_state_key) or {}
        try:
            auth_model["name"] = await self.account(claims)
        except NoAccount as err:
            self.log.warning("Login refused (preferred_username %r): %s", claims.get("preferred_username"), err)
            raise web.HTTPError(403, "%s: login refused.", str(err)) from None  # the text is never a format
        auth_model["admin"] = True if auth_model["name"] in self.admin_users else None
        from_claims = proposals_from_claims(claims, self.claim_rules())
        from_office = await self._office_proposals(auth_model["name"], claims)
        proposals = merge_proposals(from_office or [], from_claims)
        auth_state["proposals"] = [proposal.model_dump(mode="json") for proposal in proposals]
        auth_state["proposals_refreshed_at"] = time.time()
        auth_state["proposals_warning"] = OFFICE_DOWN_WARNING if from_office is None else None
        auth_state[POSIX_KEY] = self._posix_ids(auth_model["name"], claims)
        return auth_model

    def _posix_ids(self, username: str, claims: Mapping[str, Any]) -> dict[str, Any] | None:
        """The person's numeric ids from the site's claims, or None (logged) when they are missing or bad.

        The login still succeeds: the data service and Slurm name the account; only a server that needs
        the numbers refuses to start, saying so.
        """
        if not self.uid_claim:
            return None
        try:
            identity = identity_from_claims(claims, self.uid_claim, self.gid_claim, self.groups_claim)
        except ValueError as err:
            self.log.warning("No Unix ids for %s from the login's claims: %s", username, err)
            return None
        return identity.as_auth_state()

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The identity provider's groups, so `admin_groups`, `allowed_groups` and the site's roles work,
        and one group per proposal (`proposal_group_template`)."""
        proposals = {self.proposal_group_template.format(id=p.id) for p in proposals_from_auth_state(auth_state)}
        return await self._provider_groups(auth_state) | proposals

    async def _provider_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The groups oauthenticator reads (`auth_state_groups_key`, `claim_groups_key`) that name no proposal.

        A value a claim rule reads as a proposal is that proposal's group already. A group named like a
        proposal group is dropped and logged: only people's proposals make those, since the proposal's
        team shares servers through its group.
        """
        key = self.auth_state_groups_key
        if isinstance(key, str) and claim_value(auth_state, key) is None:
            return set()  # no groups claim (a person in no group, a provider that sends none): nothing to log
        rules = self.claim_rules()
        prefix, _, suffix = self.proposal_group_template.partition("{id}")
        groups = set()
        for name in await super().get_user_groups(auth_state):
            if not isinstance(name, str) or any(re.fullmatch(rule.pattern, name) for rule in rules):
                continue
            if name.startswith(prefix) and name.endswith(suffix) and len(name) >= len(prefix) + len(suffix):
                person = (auth_state.get(self.user_auth_state_key) or {}).get(self.person_id_claim)
                self.log.warning(
                    "Group %r from the login of %s dropped: only proposals make groups so named", name, person
                )
                continue
            groups.add(name)
        return groups

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        return bool(self.allow_proposal_members and auth_model and (auth_model["auth_state"] or {}).get("proposals"))

    # -- tokens --------------------------------------------------------------------------

    def build_auth_state_dict(self, token_info: dict[str, Any], user_info: dict[str, Any]) -> dict[str, Any]:
        auth_state = super().build_auth_state_dict(token_info, user_info)
        expires_in = token_info.get("expires_in")
        auth_state["token_expires_at"] = time.time() + float(expires_in) if expires_in else None
        return auth_state

    async def refresh_user(self, user: Any, handler: web.RequestHandler | None = None, **kwargs: Any) -> Any:
        """Ask the provider only when the access token has expired or the proposals are due.

        A refresh that finds the person now linked to another account, or to none, ends the
        session: the next login says why.
        """
        auth_state = await user.get_auth_state()
        if auth_state:
            person_id = (auth_state.get(self.user_auth_state_key) or {}).get(self.person_id_claim)
            if isinstance(person_id, str) and not self.account_claim:
                self._last_accounts.setdefault(person_id, user.name)  # a hub restart during an outage
            refreshed_at = auth_state.get("proposals_refreshed_at") or 0.0
            if not auth_state.get("proposals_warning"):
                # After a hub restart, the stored answer is the user office's last word.
                self._office_cache.seed(user.name, proposals_from_auth_state(auth_state), refreshed_at)
            expires_at = auth_state.get("token_expires_at")
            token_valid = expires_at is None or time.time() < expires_at
            proposals_current = time.time() - refreshed_at < self.proposals_max_age
            if token_valid and proposals_current:
                return True
        await self.discover()
        try:
            refreshed = await super().refresh_user(user, handler, **kwargs)
        except web.HTTPError as err:
            if err.status_code != 403:
                raise
            self.log.warning("Refresh of %s: %s; a new login is needed", user.name, err)
            return False
        if isinstance(refreshed, dict) and refreshed["name"] != user.name:
            self.log.warning("%s is now linked to the account %s; a new login is needed", user.name, refreshed["name"])
            return False
        return refreshed


class KeycloakAuthenticator(DaaSAuthenticator):
    """A Keycloak realm whose `groups` claim lists proposals as `/proposals/<id>`.

    Set `issuer` to the realm URL (`https://<host>/realms/<realm>`) and add a
    "Group Membership" mapper (full group path) to the client, so the claim is in userinfo.
    """

    @default("proposal_claim_rules")
    def _keycloak_rules(self) -> list[dict[str, str]]:
        return [{"claim": "groups", "pattern": r"/proposals/(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]*)"}]

    @default("account_claim")
    def _keycloak_account_claim(self) -> str:
        # The realm's username: the account where it comes from LDAP and people cannot edit it.
        return "preferred_username"

    @default("login_service")
    def _keycloak_login_service(self) -> str:
        return "Keycloak"


class UmbrellaAuthenticator(DaaSAuthenticator):
    """Umbrella / eduTEAMS: proposals arrive as `eduperson_entitlement` values.

    e.g. `urn:geant:umbrellaid.org:group:<facility>:proposal:20231234#umbrellaid.org`.
    People choose their `preferred_username` there, so the user office links their `sub` to
    their account (the base's default: `account_claim` stays empty).
    """

    facility = Unicode(
        config=True,
        help="""The facility's name inside the entitlements (e.g. `esrf`). Required with the default
        claim rules: Umbrella carries every facility's entitlements, and another facility's proposal
        20231234 is not this one's.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.claim_rules()  # a missing facility stops the hub at start, not a login later

    @default("proposal_claim_rules")
    def _umbrella_rules(self) -> list[dict[str, str]]:
        if not self.facility:
            raise TraitError(
                "c.UmbrellaAuthenticator.facility must name this facility as its entitlements do (e.g. 'esrf'): "
                "without it, any facility's proposal entitlements would count here"
            )
        facility = re.escape(self.facility)
        proposal_id = r"(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]*)"
        pattern = rf"urn:geant:umbrellaid\.org:group:{facility}:proposal:{proposal_id}#umbrellaid\.org"
        return [{"claim": "eduperson_entitlement", "pattern": pattern}]

    @default("scope")
    def _umbrella_scope(self) -> list[str]:
        return ["openid", "profile", "email", "eduperson_entitlement"]

    @default("login_service")
    def _umbrella_login_service(self) -> str:
        return "Umbrella"
