"""add_service_roles on a real hub: with a site's own `user` and `server` roles, and with JupyterHub's defaults.

JupyterHub refuses a role defined twice ("Role user multiply defined"), so a hub that starts and hands out
these scopes is the proof. The JupyterHub 5.x run of the suite runs this file too (no `extra_user_scopes` there).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from daas_auth.hub_api import PROPOSALS_SCOPE

from .conftest import public_tempdir
from .hub import Hub

DATA, DASK = "access:services!service=daas-data", "access:services!service=daas-dask"
SITE_ROLES = [
    {"name": "user", "scopes": ["self", "read:groups"]},
    {"name": "server", "scopes": ["users:activity!user", "access:servers!server", "read:groups"]},
]


class RolesHub:
    """A hub with the two services' tokens, the site's roles (or none) and add_service_roles after them."""

    def __init__(self, own_roles: bool) -> None:
        self.own_roles = own_roles
        self.tokens = {name: secrets.token_hex(16) for name in ("daas-data", "daas-dask")}
        services = [{"name": name, "api_token": token} for name, token in self.tokens.items()]
        config = "\n".join(
            [
                "from daas_hub import add_service_roles, custom_scopes",
                "c.JupyterHub.custom_scopes.update(custom_scopes())",
                f"c.JupyterHub.services.extend({services!r})",
                *(f"c.JupyterHub.load_roles.append({role!r})" for role in (SITE_ROLES if own_roles else [])),
                'add_service_roles(c, "daas-data", "daas-dask")',
            ]
        )
        self.hub = Hub(public_tempdir("daas-site-roles-") / "hub", config)

    def scopes(self, token: str) -> set[str]:
        response = self.hub.api("GET", "/user", token=token)
        assert response.status_code == 200, response.text
        return set(response.json()["scopes"])

    def token_with_roles(self, user: str, roles: list[str]) -> str:
        response = self.hub.api("POST", f"/users/{user}/tokens", json={"roles": roles, "note": "test"})
        assert response.status_code == 201, response.text
        return response.json()["token"]


@pytest.fixture(scope="module", params=["site roles", "JupyterHub's defaults"])
def site(request: pytest.FixtureRequest) -> Iterator[RolesHub]:
    site = RolesHub(own_roles=request.param == "site roles")
    site.hub.start()
    site.hub.create_users("alice")
    yield site
    site.hub.stop()


def test_users_keep_the_sites_scopes_and_may_use_the_services(site: RolesHub) -> None:
    scopes = site.scopes(site.hub.token_for("alice", ["inherit"]))
    assert {DATA, DASK} <= scopes
    assert ("read:groups" in scopes) is site.own_roles
    assert "read:users!user=alice" in scopes  # JupyterHub's `self`, kept either way
    assert not any(scope.startswith("admin:") for scope in scopes)


def test_servers_may_use_the_services(site: RolesHub) -> None:
    """A token with the `server` role is what a server gets as $JUPYTERHUB_API_TOKEN (from the role's scopes)."""
    scopes = site.scopes(site.token_with_roles("alice", ["server"]))
    assert {DATA, DASK, "users:activity!user=alice"} <= scopes
    assert ("read:groups" in scopes) is site.own_roles  # a scope the site's server role adds


@pytest.mark.parametrize("service", ["daas-data", "daas-dask"])
def test_the_services_read_servers_and_proposals_not_auth_state(site: RolesHub, service: str) -> None:
    scopes = site.scopes(site.tokens[service])
    assert {"read:users", "read:servers", PROPOSALS_SCOPE} <= scopes
    assert not any(scope.startswith("admin:auth_state") for scope in scopes)
    assert site.hub.api("GET", "/users/alice", token=site.tokens[service]).status_code == 200
