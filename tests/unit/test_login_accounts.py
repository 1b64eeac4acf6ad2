"""Which Unix account a login becomes: a claim the site trusts, or the user office's link from the person's sub.

Table-driven, through the authenticator's own update_auth_model (what login and refresh call).
The user office is a real FileUserOffice over files; `DownOffice` stands in for one that is down.
The OIDC flow itself runs against a real provider in tests/integration/test_oidc_login.py and
test_oidc_account_claim.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tornado import web
from traitlets import TraitError
from traitlets.config import Config

from daas_auth.authenticator import (
    ACCOUNT_OFFICE_DOWN,
    DaaSAuthenticator,
    KeycloakAuthenticator,
    UmbrellaAuthenticator,
)
from daas_auth.useroffice import FileUserOffice, UserOffice, UserOfficeError

LINKS = {  # the user office's links: sub -> account
    "sub-carol": "carol",
    "sub-root": "root",  # a system account: login works, the spawner refuses to act as it
    "sub-upper": "Carol",
    "sub-newline": "carol\n",
    "sub-spaces": " carol",
    "sub-number": 1001,
}


class DownOffice(UserOffice):
    """A user office that does not answer."""

    @property
    def links_accounts(self) -> bool:
        return True

    async def account(self, person_id: str) -> str | None:
        raise UserOfficeError("connection refused")

    async def proposals(self, username: str, claims: Any) -> list:
        raise UserOfficeError("connection refused")


@pytest.fixture
def office(tmp_path) -> FileUserOffice:
    (tmp_path / "proposals.yaml").write_text(yaml.safe_dump({"carol": [{"id": "20225555"}]}))
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(LINKS))
    return FileUserOffice(path=str(tmp_path / "proposals.yaml"), accounts_path=str(tmp_path / "accounts.yaml"))


def umbrella(office: UserOffice, **config: Any) -> UmbrellaAuthenticator:
    return UmbrellaAuthenticator(facility="esrf", user_office=office, **config)


async def login(auth: DaaSAuthenticator, claims: dict[str, Any]) -> dict[str, Any]:
    return await auth.update_auth_model({"name": "", "admin": None, "auth_state": {"oauth_user": claims}})


@pytest.mark.parametrize(
    "preset, config, claims, expected",
    [
        # Keycloak: the realm's user name is the account (LDAP-fed, not editable by people).
        ("keycloak", {}, {"preferred_username": "alice", "sub": "x"}, "alice"),
        ("keycloak", {}, {"preferred_username": "alice\n"}, "gives 'alice\\n', which is not a Unix account name"),
        ("keycloak", {}, {"preferred_username": "Alice"}, "gives 'Alice', which is not a Unix account name"),
        ("keycloak", {}, {"preferred_username": "al ice"}, "which is not a Unix account name"),
        ("keycloak", {}, {"preferred_username": "a" * 33}, "which is not a Unix account name"),
        ("keycloak", {}, {"preferred_username": ["alice"]}, "gives no text (list)"),
        ("keycloak", {}, {"sub": "x"}, "'preferred_username' gives no text (NoneType)"),
        # A claim the site sets (an LDAP uid mapper): people's own choice does not count.
        ("keycloak", {"account_claim": "uid"}, {"uid": "alice", "preferred_username": "bob"}, "alice"),
        ("keycloak", {"account_claim": "uid"}, {"preferred_username": "bob"}, "'uid' gives no text"),
        # Umbrella / eduTEAMS: the user office links the stable sub to the account.
        ("umbrella", {}, {"sub": "sub-carol", "preferred_username": "bob"}, "carol"),
        ("umbrella", {}, {"sub": "sub-root", "preferred_username": "root"}, "root"),
        ("umbrella", {}, {"sub": "sub-mallory", "preferred_username": "bob"}, "No facility account is linked"),
        ("umbrella", {}, {"preferred_username": "bob"}, "Your login carries no 'sub'"),
        ("umbrella", {}, {"sub": ["sub-carol"]}, "Your login carries no 'sub'"),
        ("umbrella", {}, {"sub": "sub-upper"}, "The user office gives 'Carol', which is not a Unix account name"),
        ("umbrella", {}, {"sub": "sub-newline"}, "The user office gives 'carol\\n', which is not"),
        ("umbrella", {}, {"sub": "sub-spaces"}, "The user office gives ' carol', which is not"),
        ("umbrella", {"person_id_claim": "voperson_id"}, {"voperson_id": "sub-carol", "sub": "other"}, "carol"),
        ("umbrella", {"person_id_claim": "voperson_id"}, {"sub": "sub-carol"}, "carries no 'voperson_id'"),
    ],
)
async def test_the_account_comes_from_the_configured_source(office, preset, config, claims, expected):
    auth = KeycloakAuthenticator(**config) if preset == "keycloak" else umbrella(office, **config)
    if expected.isidentifier():
        assert (await login(auth, claims))["name"] == expected
    else:
        with pytest.raises(web.HTTPError) as refused:
            await login(auth, claims)
        assert refused.value.status_code == 403
        assert expected in refused.value.log_message % refused.value.args


async def test_an_account_that_is_no_name_in_the_office_file_refuses_the_login(office):
    with pytest.raises(web.HTTPError) as refused:
        await login(umbrella(office), {"sub": "sub-number"})
    assert refused.value.status_code == 503  # the user office's own answer is broken: not the person's fault


async def test_a_chosen_name_of_an_admin_gives_no_admin_rights(office):
    auth = umbrella(office, admin_users={"bob"})
    model = await login(auth, {"sub": "sub-carol", "preferred_username": "bob"})
    assert (model["name"], model["admin"]) == ("carol", None)
    assert (await login(umbrella(office, admin_users={"carol"}), {"sub": "sub-carol"}))["admin"] is True


async def test_user_office_down_keeps_known_people_and_asks_newcomers_to_come_back(office):
    auth = umbrella(office)
    assert (await login(auth, {"sub": "sub-carol"}))["name"] == "carol"
    auth.user_office = DownOffice()
    assert (await login(auth, {"sub": "sub-carol"}))["name"] == "carol"  # the last answer
    with pytest.raises(web.HTTPError) as refused:
        await login(auth, {"sub": "sub-root"})
    assert refused.value.status_code == 503 and refused.value.log_message == ACCOUNT_OFFICE_DOWN


def test_a_hub_without_an_account_source_does_not_start(tmp_path):
    (tmp_path / "p.yaml").write_text("{}")
    for auth in (
        lambda: DaaSAuthenticator(),
        lambda: UmbrellaAuthenticator(facility="esrf"),
        lambda: UmbrellaAuthenticator(facility="esrf", user_office=FileUserOffice(path=str(tmp_path / "p.yaml"))),
    ):
        with pytest.raises(TraitError, match="needs to know people's Unix accounts"):
            auth()
    assert KeycloakAuthenticator().account_claim == "preferred_username"
    assert DaaSAuthenticator(account_claim="uid").account_claim == "uid"


@pytest.mark.parametrize("section", ["KeycloakAuthenticator", "DaaSAuthenticator", "OAuthenticator"])
def test_a_username_claim_in_the_config_stops_the_hub(section):
    """oauthenticator's username_claim no longer names anyone: a config that relies on it must not start."""
    config = Config()
    config[section].username_claim = "email"
    with pytest.raises(TraitError, match="does not name people by username_claim: set account_claim"):
        KeycloakAuthenticator(config=config)
