"""The identity provider's groups reach the hub beside the proposal groups: `admin_groups` makes admins.

The OIDC site of test_oidc_login.py with `c.DaaSAuthenticator.admin_groups = {"staff"}`: sam is in the
provider's group "staff" and on no proposal; trudy's provider names a group like the group of bob's
proposal, which must not make her a member of it (the proposal's team shares servers through its group).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import cancel_test_jobs
from .oidc_site import SUBS, OidcSite
from .test_oidc_login import logged_in

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[OidcSite]:
    cancel_test_jobs()
    site = OidcSite('c.DaaSAuthenticator.admin_groups = {"staff"}', prefix="daas-oidc-groups-").start()
    yield site
    site.close()


def can_list_users(site: OidcSite, name: str) -> bool:
    """What an admin may do and others may not, asked with the person's own token."""
    token = site.hub.token_for(name, ["inherit"])
    return site.hub.api("GET", "/users", token=token).status_code == 200


def test_a_member_of_the_admin_group_is_an_admin(site: OidcSite) -> None:
    http, page = site.login("sam")
    assert page.status_code == 200, page.text[:500]  # no proposal: admins may log in all the same
    assert logged_in(http, site.hub)
    model = site.hub.user_model("sam")
    assert model["admin"] is True
    assert model["groups"] == ["staff"]
    assert can_list_users(site, "sam")


def test_others_are_not_admins_and_keep_their_provider_and_proposal_groups(site: OidcSite) -> None:
    for name in ("alice", "bob"):
        _http, page = site.login(name)
        assert page.status_code == 200, page.text[:500]
    alice, bob = site.hub.user_model("alice"), site.hub.user_model("bob")
    assert alice["admin"] is False and bob["admin"] is False
    # alice's Keycloak-style `/staff` is another group than "staff"; her `/proposals/<id>` values are proposals.
    assert sorted(alice["groups"]) == ["/staff", "proposal-20220001", "proposal-20231234"]
    assert bob["groups"] == ["proposal-20230042"]  # no groups claim: his proposal's group only
    assert not can_list_users(site, "alice")


def test_a_provider_group_named_like_a_proposal_group_is_dropped(site: OidcSite) -> None:
    site.login("bob")  # the group of his proposal 20230042 exists
    _http, page = site.login("trudy")
    assert page.status_code == 200, page.text[:500]
    assert site.hub.user_model("trudy")["groups"] == ["proposal-20225555"]
    members = site.hub.api("GET", "/groups/proposal-20230042").json()["users"]
    assert "trudy" not in members and "bob" in members
    log = site.hub.log_path.read_text()
    assert f"Group 'proposal-20230042' from the login of {SUBS['trudy']} dropped" in log
