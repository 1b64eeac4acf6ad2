"""A site that takes people's accounts from a claim it controls (`account_claim = "uid"`), end to end.

The same provider, user office and Slurm hub as test_oidc_login.py; the `uid` claim stands for an
attribute the facility sets (a Keycloak mapper from LDAP). It names the account as it stands:
people's own `preferred_username` does not count, and a value that is not an account name
(a trailing newline, capitals) refuses the login instead of being bent into someone's name.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest

from daas_auth.authenticator import OFFICE_DOWN_WARNING

from .conftest import cancel_test_jobs
from .oidc_site import OidcSite
from .slurm import batch_script, server_environment, stored_job_files
from .test_oidc_login import hub_users, logged_in, session_user

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[OidcSite]:
    cancel_test_jobs()
    # This site passes the OIDC access token to servers, as a facility data API may need it.
    site = OidcSite("c.DaaSSpawner.pass_access_token = True", prefix="daas-oidc-claim-", account_claim="uid").start()
    yield site
    site.close()


def test_the_claim_names_the_account_not_the_chosen_user_name(site: OidcSite) -> None:
    """carol chose "bob" as her preferred_username; the site's uid says carol."""
    http, page = site.login("carol")
    assert page.status_code == 200, page.text[:500]
    assert session_user(http, site.hub) == "carol"
    assert "bob" not in hub_users(site)


@pytest.mark.parametrize("login, value", [("alice-newline", "alice\\n"), ("alice-upper", "Alice")])
def test_a_claim_that_is_not_an_account_name_as_it_stands_is_refused(site: OidcSite, login: str, value: str) -> None:
    site.login("alice")
    before = site.auth_state("alice")
    http, page = site.login(login)
    assert page.status_code == 403
    assert f"Your login's 'uid' gives '{value}', which is not a Unix account name" in html.unescape(page.text)
    assert not logged_in(http, site.hub)
    assert hub_users(site) & {"alice\n", "Alice"} == set()
    assert site.auth_state("alice")["access_token"] == before["access_token"]  # alice's login is untouched


@pytest.mark.parametrize("account", ["root", "slurm"])
def test_a_person_named_like_a_system_account_gets_no_server_as_it(site: OidcSite, account: str) -> None:
    http, _ = site.login(account)
    assert logged_in(http, site.hub)  # a proposal lets them in; the Unix account is checked before anything runs
    hub = site.hub
    token = hub.token_for(account, [f"servers!user={account}"])
    sbatch_before = site.slurm.commands.count("sbatch")
    response = hub.http.post(
        f"{hub.api_url}/users/{account}/server", headers={"Authorization": f"token {token}"}, json={"profile": "cpu"}
    )
    assert response.status_code == 503, response.text
    assert f"No server for this account: {account} is a system account" in response.json()["message"]
    assert site.slurm.commands.count("sbatch") == sbatch_before
    assert hub.server_model(account) is None


def test_a_first_login_with_the_user_office_down_gets_the_claims_proposals(site: OidcSite) -> None:
    """The account needs no user office here: frank gets in with the proposals his login names, and is told
    why titles are missing."""
    site.office.stop()
    try:
        _http, page = site.login("frank")
        assert page.status_code == 200
        state = site.auth_state("frank")
        assert state["proposals"] == [
            {
                "id": "20225555",
                **dict.fromkeys(("title", "instrument", "role"), ""),
                **dict.fromkeys(("start", "end", "raw_data", "processed_data")),
            }
        ]
        assert state["proposals_warning"] == OFFICE_DOWN_WARNING
        assert OFFICE_DOWN_WARNING in page.text
        assert site.hub.user_model("frank")["groups"] == ["proposal-20225555"]
    finally:
        site.office.start()


def test_the_access_token_reaches_the_server_but_not_the_stored_job(site: OidcSite) -> None:
    site.login("alice")
    at_login = site.auth_state("alice")["access_token"]
    hub = site.hub
    token = hub.token_for("alice", ["servers!user=alice"])
    response = hub.http.post(
        f"{hub.api_url}/users/alice/server", headers={"Authorization": f"token {token}"}, json={"profile": "cpu"}
    )
    assert response.status_code in (201, 202), response.text
    try:
        hub.wait_ready("alice")
        job_id = hub.job_id("alice")
        access_token = server_environment(job_id)["DAAS_ACCESS_TOKEN"]
        assert access_token in (at_login, site.auth_state("alice")["access_token"])  # hers (maybe refreshed)
        stored = [batch_script(job_id), *(data.decode(errors="replace") for data in stored_job_files(job_id).values())]
        assert not any(access_token in text for text in stored), "the OIDC access token is kept by slurmctld"
    finally:
        hub.stop_server("alice")
