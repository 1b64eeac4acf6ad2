"""A site that logs in through OIDC: a real OpenID provider, a user-office API and a Slurm hub.

alice (Keycloak-style groups) has proposals 20231234 (ID11) and 20220001 (BM02), bob
(Umbrella-style entitlements) 20230042 (D22), carol and frank 20225555, dave 20231234; eve has
none; "root" and "slurm" are provider accounts named like system accounts, with proposal 20239999;
sam is in the provider's group "staff" with no proposal, trudy in one named "proposal-20230042" (bob's).
Everyone has an opaque `sub`, as real providers give, and chose their `preferred_username`
(carol chose "bob"). By default the hub takes accounts from `uid`, a claim standing for an
attribute the facility sets (a Keycloak mapper from LDAP); with `account_claim=""` the user
office links people's `sub` to their accounts instead, and "mallory", who calls herself bob and
claims bob's proposal, is linked to none. Access tokens live a few seconds, so expiry and
refresh happen within a test.
"""

from __future__ import annotations

import secrets
import textwrap

import httpx
import yaml

from .conftest import SlurmHub, public_tempdir
from .oidc import OidcProvider, complete_login
from .user_office import UserOfficeService

PASSWORD = "correct horse battery"
ACCESS_TOKEN_TTL = 8
PROPOSALS_MAX_AGE = 3
ENTITLEMENT = "urn:geant:umbrellaid.org:group:daas-demo:proposal:{}#umbrellaid.org"
SUBS = {  # login name at the provider -> its stable, opaque `sub`
    "alice": "3f6c1a7e@idp.test",
    "bob": "b0b5e2d4@idp.test",
    "carol": "ca7011f9@idp.test",
    "eve": "e7e00c12@idp.test",
    "dave": "da7e3b58@idp.test",
    "frank": "f4a9c021@idp.test",
    "grace": "96ace7b2@idp.test",
    "root": "0a0b0c0d@idp.test",
    "slurm": "5107a3e1@idp.test",
    "mallory": "6d411027@idp.test",
    "alice-newline": "a11ce0a0@idp.test",
    "alice-upper": "a11ce0a1@idp.test",
    "sam": "5a3f0e21@idp.test",
    "trudy": "7d0e5b9c@idp.test",
}
CLAIMS = {
    "alice": {  # Keycloak style: proposals as groups
        "preferred_username": "alice",
        "uid": "alice",
        "name": "Alice Example",
        "email": "alice@example.org",
        "groups": ["/proposals/20231234", "/proposals/20220001", "/staff"],
        # numeric ids for pods (c.KubernetesBackend.identity_source = "auth_state"), as LDAP gives them
        "uidNumber": "41234",
        "gidNumber": "4100",
        "gidNumbers": ["5001", "5002"],
    },
    "bob": {  # Umbrella / eduTEAMS style: proposals as entitlements
        "preferred_username": "bob",
        "uid": "bob",
        "name": "Bob Example",
        "eduperson_entitlement": [ENTITLEMENT.format("20230042"), "urn:geant:umbrellaid.org:group:other"],
    },
    # carol chose the user name "bob" at her provider (eduTEAMS lets people choose).
    "carol": {"preferred_username": "bob", "uid": "carol", "groups": ["/proposals/20225555"]},
    "eve": {"preferred_username": "eve", "uid": "eve", "groups": ["/visitors"]},
    # Accounts one test each logs in (or fails to): dave never gets in, frank first logs in with the office down,
    # grace is linked to another account while logged in.
    "dave": {"preferred_username": "dave", "uid": "dave", "groups": ["/proposals/20231234"]},
    "frank": {"preferred_username": "frank", "uid": "frank", "groups": ["/proposals/20225555"]},
    "grace": {"preferred_username": "grace", "uid": "grace", "groups": ["/proposals/20225555"]},
    # People who chose the names of system accounts: they have a proposal, but nothing may run as those accounts.
    "root": {"preferred_username": "root", "uid": "root", "groups": ["/proposals/20239999"]},
    "slurm": {"preferred_username": "slurm", "uid": "slurm", "groups": ["/proposals/20239999"]},
    # Someone who calls herself bob and claims his proposal; the user office knows her as nobody.
    "mallory": {"preferred_username": "bob", "eduperson_entitlement": [ENTITLEMENT.format("20230042")]},
    # Account claims that are not account names as they stand (a site attribute gone wrong, or forged).
    "alice-newline": {"preferred_username": "alice", "uid": "alice\n", "groups": ["/proposals/20231234"]},
    "alice-upper": {"preferred_username": "alice", "uid": "Alice", "groups": ["/proposals/20231234"]},
    # The provider's own groups: staff (site admins, say), and one named like the group of bob's proposal.
    "sam": {"preferred_username": "sam", "uid": "sam", "groups": ["staff"]},
    "trudy": {"preferred_username": "trudy", "uid": "trudy", "groups": ["/proposals/20225555", "proposal-20230042"]},
}
ACCOUNTS = {login: {"password": PASSWORD, "sub": SUBS[login], "claims": claims} for login, claims in CLAIMS.items()}
# The user office's links from a person's sub to their Unix account (root, slurm, mallory, sam, trudy and the
# alice-* test accounts have none).
OFFICE_ACCOUNTS = {SUBS[login]: login for login in ("alice", "bob", "carol", "eve", "dave", "frank", "grace")}
OFFICE = {
    "alice": [
        {
            "id": "20231234",
            "title": "Strain in additively manufactured alloys",
            "instrument": "ID11",
            "start": "2026-11-20",
            "end": "2026-11-25",
            "role": "PI",
            "raw_data": "/data/visitor/20231234/raw",
            "processed_data": "/data/visitor/20231234/processed",
        },
        {"id": "20220001", "title": "Earlier beamtime", "instrument": "BM02", "role": "member"},
    ],
    "bob": [{"id": "20230042", "title": "SANS on micelles", "instrument": "D22", "role": "PI"}],
    "carol": [{"id": "20225555", "title": "Carol's proposal"}],
}
RULES = [
    {"claim": "groups", "pattern": r"/proposals/(?P<id>[0-9]+)"},
    {
        "claim": "eduperson_entitlement",
        "pattern": r"urn:geant:umbrellaid\.org:group:daas-demo:proposal:(?P<id>[0-9]+)"
        r"#umbrellaid\.org",
    },
]


def add_proposal_profiles(path) -> None:
    """`mx` for alice's two proposals, `sans` for bob's; neither names an account, so jobs bill the proposal."""
    data = yaml.safe_load(path.read_text())
    cpu = data["profiles"][0]
    data["profiles"] += [
        dict(cpu, id="mx", display_name="MX beamtime", slurm={}, allowed_proposals=["20231234", "20220001"]),
        dict(cpu, id="sans", display_name="SANS beamtime", slurm={}, allowed_proposals=["2023004?"]),
    ]
    path.write_text(yaml.safe_dump(data))


class OidcSite:
    """Provider, user office and a Slurm hub logging in through them."""

    def __init__(
        self, extra_config: str = "", prefix: str = "daas-oidc-", account_claim: str = "uid", db_url: str | None = None
    ) -> None:
        workdir = public_tempdir(prefix)
        self.workdir = workdir
        self.client_secret = secrets.token_hex(16)
        self.provider = OidcProvider(workdir / "oidc", ACCOUNTS, clients=[], access_token_ttl=ACCESS_TOKEN_TTL)
        self.office = UserOfficeService(workdir / "office", OFFICE, OFFICE_ACCOUNTS)
        config = f"""
            from daas_auth.useroffice import HttpUserOffice
            from daas_hub import custom_scopes
            c.JupyterHub.custom_scopes.update(custom_scopes())  # the scope add_service_roles() gives services
            c.JupyterHub.authenticator_class = "daas"
            c.Authenticator.allow_all = False
            c.Authenticator.auth_refresh_age = 1
            c.DaaSAuthenticator.issuer = "{self.provider.issuer}"
            c.DaaSAuthenticator.client_id = "jupyterhub"
            c.DaaSAuthenticator.client_secret = "{self.client_secret}"
            c.DaaSAuthenticator.oauth_callback_url = f"http://127.0.0.1:{{c.JupyterHub.port}}/hub/oauth_callback"
            c.DaaSAuthenticator.scope = ["openid", "profile", "email", "groups", "eduperson_entitlement"]
            c.DaaSAuthenticator.proposal_claim_rules = {RULES!r}
            c.DaaSAuthenticator.user_office = HttpUserOffice(
                url="{self.office.url}", account_url="{self.office.account_url}", token="{self.office.token}"
            )
            c.DaaSAuthenticator.uid_claim = "uidNumber"
            c.DaaSAuthenticator.gid_claim = "gidNumber"
            c.DaaSAuthenticator.groups_claim = "gidNumbers"
            c.DaaSAuthenticator.account_claim = "{account_claim}"  # "": the user office links subs to accounts
            c.DaaSAuthenticator.proposals_max_age = {PROPOSALS_MAX_AGE}
        """
        config = textwrap.dedent(config) + textwrap.dedent(extra_config)
        crypt_key = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
        self.slurm = SlurmHub(workdir, extra_config=config, env=crypt_key, db_url=db_url)
        add_proposal_profiles(self.slurm.profiles)
        self.hub = self.slurm.hub
        self.provider.clients = [
            {
                "client_id": "jupyterhub",
                "client_secret": self.client_secret,
                "redirect_uris": [f"{self.hub.url}/hub/oauth_callback"],
            }
        ]

    def start(self) -> OidcSite:
        self.provider.start()
        self.office.start()
        self.slurm.start(create_users=False)
        return self

    def close(self) -> None:
        self.slurm.close()
        self.office.stop()
        self.provider.stop()

    def login_page(self) -> tuple[httpx.Client, httpx.Response]:
        """A fresh browser at the hub's login: the provider's login form (its session cookie is per client)."""
        http = httpx.Client(timeout=30)
        return http, http.get(f"{self.hub.url}/hub/oauth_login", follow_redirects=False)

    def login(self, username: str, password: str = PASSWORD) -> tuple[httpx.Client, httpx.Response]:
        http, response = self.login_page()
        return http, complete_login(http, response, username, password)

    def auth_state(self, username: str) -> dict:
        return self.hub.user_model(username)["auth_state"]
