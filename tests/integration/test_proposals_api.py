"""Services read people's proposals through the hub's narrow endpoint, never their auth_state and tokens.

A real hub with the services' roles from daas_hub (tokens of their own, as a
hub-managed service gets) and alice's auth_state written by an admin, tokens included.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from daas_auth.hub_api import PROPOSALS_SCOPE
from daas_services.hub_users import HubUsers

from .conftest import public_tempdir
from .hub import Hub

SERVICES = ("daas-data", "daas-dask")
PROPOSALS = [{"id": "20231234", "title": "Strain", "instrument": "ID11"}, {"id": "20220001"}]
OIDC_TOKENS = {"access_token": "alice-access-" + secrets.token_hex(8), "refresh_token": "alice-refresh-secret"}


class ServicesHub:
    def __init__(self) -> None:
        self.tokens = {name: secrets.token_hex(16) for name in SERVICES}
        services = [{"name": name, "api_token": token} for name, token in self.tokens.items()]
        config = f"""
            from daas_hub import add_service_roles, custom_scopes
            c.Authenticator.enable_auth_state = True
            c.JupyterHub.custom_scopes.update(custom_scopes())
            c.JupyterHub.services += {services!r}
            add_service_roles(c, *{SERVICES!r})
        """
        workdir = public_tempdir("daas-proposals-api-") / "hub"
        self.hub = Hub(workdir, config, env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)})

    def start(self) -> ServicesHub:
        self.hub.start()
        self.hub.create_users("alice", "bob")
        state = {"proposals": PROPOSALS, "proposals_warning": None, **OIDC_TOKENS}
        assert self.hub.api("PATCH", "/users/alice", json={"auth_state": state}).status_code == 200
        return self

    def proposals(self, user: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return self.hub.http.get(f"{self.hub.api_url}/daas/users/{user}/proposals", headers=headers)


@pytest.fixture(scope="module")
def site() -> Iterator[ServicesHub]:
    site = ServicesHub().start()
    yield site
    site.hub.stop()


@pytest.mark.parametrize("service", SERVICES)
def test_a_services_token_cannot_read_auth_state(site: ServicesHub, service: str) -> None:
    token = site.tokens[service]
    scopes = site.hub.api("GET", "/user", token=token).json()["scopes"]
    assert not any(scope.startswith("admin:auth_state") for scope in scopes), scopes
    assert PROPOSALS_SCOPE in scopes
    model = site.hub.api("GET", "/users/alice", token=token)
    assert model.status_code == 200
    assert "auth_state" not in model.json()
    assert OIDC_TOKENS["access_token"] not in model.text and "alice-refresh-secret" not in model.text
    # The admin sees the tokens there: they are what the service must not get.
    assert site.hub.user_model("alice")["auth_state"]["access_token"] == OIDC_TOKENS["access_token"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reads_proposals_and_nothing_else(site: ServicesHub, service: str) -> None:
    response = site.proposals("alice", site.tokens[service])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"name", "proposals"} and body["name"] == "alice"
    assert [(p["id"], p["title"]) for p in body["proposals"]] == [("20231234", "Strain"), ("20220001", "")]
    assert "alice-access-" not in response.text and "refresh" not in response.text
    assert site.proposals("bob", site.tokens[service]).json()["proposals"] == []  # no auth_state: none
    assert site.proposals("nobody", site.tokens[service]).status_code == 404


def test_users_and_anonymous_callers_cannot_read_proposals(site: ServicesHub) -> None:
    bob = site.hub.token_for("bob", ["inherit"])
    for token in (bob, None):
        response = site.proposals("alice", token)
        assert response.status_code == 403, response.text
        assert "20231234" not in response.text
    assert site.proposals("bob", bob).status_code == 403  # not even one's own: the scope is the services'


async def test_the_services_client_reads_proposals_and_servers(site: ServicesHub) -> None:
    users = HubUsers(api_url=site.hub.api_url, token=site.tokens["daas-data"])
    assert [p.id for p in await users.proposals("alice")] == ["20231234", "20220001"]
    assert (await users.proposals("alice"))[0].instrument == "ID11"
    assert await users.running_servers("alice") == {}
