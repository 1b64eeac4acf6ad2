"""OIDC login end to end: a real JupyterHub, a real OpenID provider (oidc-provider), a user-office API, Slurm.

The hub is configured with the provider's issuer URL only (discovery), Keycloak-style and
Umbrella-style claim rules, and the HTTP user office, which also links each person's `sub` to
their Unix account. Logins are driven like a browser: hub -> provider login form -> callback ->
hub. Access tokens live a few seconds, so expiry and refresh happen within the test.
(tests/integration/test_oidc_account_claim.py: the same site taking accounts from a claim.)
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest

from daas_auth.authenticator import ACCOUNT_OFFICE_DOWN

from .conftest import cancel_test_jobs
from .hub import Hub
from .oidc import complete_login, deny_login
from .oidc_site import PASSWORD, PROPOSALS_MAX_AGE, SUBS, OidcSite
from .slurm import batch_script, job_details

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[OidcSite]:
    cancel_test_jobs()
    site = OidcSite(account_claim="").start()  # the user office links each sub to an account
    yield site
    site.close()


def logged_in(http: httpx.Client, hub: Hub) -> bool:
    return http.get(f"{hub.url}/hub/home", follow_redirects=False).status_code == 200


def session_user(http: httpx.Client, hub: Hub) -> str:
    """Whom the browser's hub session belongs to: the hub sends them on to their own server's URL
    (through the spawn page, `/hub/spawn/<name>?next=%2Fuser%2F<name>%2F`, while none runs)."""
    location = http.get(f"{hub.url}/hub/user-redirect/", follow_redirects=False).headers["location"]
    found = re.search(r"/user/([^/?]+)/", urllib.parse.unquote(location))
    assert found, f"no session: sent to {location}"
    return found.group(1)


def hub_users(site: OidcSite) -> set[str]:
    return {user["name"] for user in site.hub.api("GET", "/users").json()}


def test_wrong_password_is_no_login(site: OidcSite) -> None:
    before = hub_users(site)
    http, page = site.login("dave", "wrong password")
    assert page.status_code == 200 and "Invalid username or password" in page.text
    assert hub_users(site) == before and "dave" not in before
    assert not logged_in(http, site.hub)


def test_keycloak_style_login_through_discovery(site: OidcSite) -> None:
    assert "authorize_url" not in site.hub.config_path.read_text()  # the issuer alone is configured
    http, page = site.login("alice")
    assert page.status_code == 200, page.text[:500]
    assert str(page.url).startswith(f"{site.hub.url}/hub/")
    assert logged_in(http, site.hub)

    model = site.hub.user_model("alice")
    assert sorted(model["groups"]) == ["/staff", "proposal-20220001", "proposal-20231234"]  # the provider's, too
    state = model["auth_state"]
    assert [p["id"] for p in state["proposals"]] == ["20231234", "20220001"]
    first = state["proposals"][0]
    assert (first["title"], first["instrument"], first["role"]) == (
        "Strain in additively manufactured alloys",
        "ID11",
        "PI",
    )
    assert (first["start"], first["end"], first["raw_data"]) == (
        "2026-11-20",
        "2026-11-25",
        "/data/visitor/20231234/raw",
    )
    assert state["proposals_warning"] is None
    assert state["refresh_token"] and state["oauth_user"]["groups"][0] == "/proposals/20231234"
    assert state["posix"] == {"uid": 41234, "gid": 4100, "groups": [5001, 5002]}  # the ids pods may run with
    # The form offers the proposals with their titles.
    assert "20231234 — Strain in additively manufactured alloys (ID11)" in page.text


def test_umbrella_style_login(site: OidcSite) -> None:
    _http, page = site.login("bob")
    assert page.status_code == 200
    model = site.hub.user_model("bob")
    assert model["groups"] == ["proposal-20230042"]
    assert [(p["id"], p["instrument"]) for p in model["auth_state"]["proposals"]] == [("20230042", "D22")]
    assert model["auth_state"]["posix"] is None  # his provider sends no numeric ids: a pod start would say so


def test_people_without_proposals_are_refused(site: OidcSite) -> None:
    http, page = site.login("eve")
    assert page.status_code == 403
    assert not logged_in(http, site.hub)


def test_authorization_request_uses_pkce_and_a_state(site: OidcSite) -> None:
    _, response = site.login_page()
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith(site.provider.authorize_url)  # read from the discovery document
    assert location.params["code_challenge_method"] == "S256" and len(location.params["code_challenge"]) >= 43
    assert location.params["state"] and location.params["response_type"] == "code"


def test_provider_denial_is_a_clear_error(site: OidcSite) -> None:
    http, response = site.login_page()
    page = deny_login(http, response)
    assert page.status_code == 400
    assert "The user denied access" in page.text
    assert not logged_in(http, site.hub)


def test_tampered_state_is_refused(site: OidcSite) -> None:
    http, response = site.login_page()
    callback = site.hub.url + "/hub/oauth_callback"
    before = hub_users(site)
    redirect = complete_login(http, response, "dave", PASSWORD, stop_at=callback)
    url = httpx.URL(redirect.headers["location"])
    assert url.params.get("code") and url.params.get("state")
    forged = base64.urlsafe_b64encode(json.dumps({"state_id": secrets.token_hex(16)}).encode()).decode()
    page = http.get(url.copy_set_param("state", forged))
    assert page.status_code == 400
    assert "OAuth state mismatch" in page.text
    assert hub_users(site) == before and "dave" not in before
    assert not logged_in(http, site.hub)


def test_token_is_renewed_only_after_expiry_with_the_proposals(site: OidcSite) -> None:
    http, _ = site.login("alice")
    before = site.auth_state("alice")
    assert logged_in(http, site.hub)
    assert site.auth_state("alice")["access_token"] == before["access_token"]  # not expired: not renewed

    time.sleep(max(0.0, before["token_expires_at"] - time.time()) + 1)
    assert logged_in(http, site.hub)  # this request makes the hub refresh
    after = site.auth_state("alice")
    assert after["access_token"] != before["access_token"]
    assert after["token_expires_at"] > before["token_expires_at"]
    assert after["proposals_refreshed_at"] > before["proposals_refreshed_at"]
    assert [p["id"] for p in after["proposals"]] == ["20231234", "20220001"]


def test_revoked_refresh_token_forces_a_new_login(site: OidcSite) -> None:
    http, _ = site.login("bob")
    state = site.auth_state("bob")
    site.provider.revoke(state["refresh_token"], "jupyterhub", site.client_secret)
    time.sleep(max(0.0, state["token_expires_at"] - time.time()) + 1)
    response = http.get(f"{site.hub.url}/hub/home", follow_redirects=False)
    assert response.status_code == 302
    assert "/hub/login" in response.headers["location"]


def test_user_office_down(site: OidcSite) -> None:
    site.login("alice")  # while the user office answers
    site.office.stop()
    try:
        time.sleep(PROPOSALS_MAX_AGE + 0.5)  # the hub's cached answer is no longer fresh: it asks, and fails
        # alice has logged in before: her account and cached proposals, metadata included, and no warning.
        _, page = site.login("alice")
        state = site.auth_state("alice")
        assert [p["title"] for p in state["proposals"]] == [
            "Strain in additively manufactured alloys",
            "Earlier beamtime",
        ]
        assert state["proposals_warning"] is None
        # frank never has (only this test logs him in): nothing says which account is his, so he is
        # told to come back, and no hub user is made for him.
        http, page = site.login("frank")
        assert page.status_code == 503
        assert ACCOUNT_OFFICE_DOWN in page.text
        assert not logged_in(http, site.hub) and "frank" not in hub_users(site)
    finally:
        site.office.start()


def test_people_log_in_as_the_account_their_sub_is_linked_to(site: OidcSite) -> None:
    """carol chose the user name "bob" at her provider: the user office's link from her sub decides."""
    http, page = site.login("carol")
    assert page.status_code == 200, page.text[:500]
    assert logged_in(http, site.hub) and session_user(http, site.hub) == "carol"
    state = site.auth_state("carol")
    assert state["oauth_user"]["preferred_username"] == "bob" and state["oauth_user"]["sub"] == SUBS["carol"]
    assert [p["id"] for p in state["proposals"]] == ["20225555"]


def test_someone_calling_themselves_bob_cannot_log_in_or_spawn_as_bob(site: OidcSite) -> None:
    """mallory's preferred_username is "bob" and she claims bob's proposal; her sub is linked to no account."""
    site.login("bob")
    before = site.hub.user_model("bob")
    sbatch_before = site.slurm.commands.count("sbatch")
    http, page = site.login("mallory")
    assert page.status_code == 403
    assert f"No facility account is linked to your login (sub {SUBS['mallory']})" in page.text
    assert not logged_in(http, site.hub)  # no session: nothing to spawn with
    after = site.hub.user_model("bob")
    assert after["auth_state"]["oauth_user"]["sub"] == SUBS["bob"]  # bob's tokens were not replaced by hers
    assert after["auth_state"]["access_token"] == before["auth_state"]["access_token"]
    assert after["servers"] == {} and site.slurm.commands.count("sbatch") == sbatch_before
    assert "mallory" not in hub_users(site)


@pytest.mark.parametrize("account", ["root", "slurm"])
def test_a_person_named_like_a_system_account_cannot_log_in(site: OidcSite, account: str) -> None:
    """The user office links their subs to no account (with a claim that names one, see test_oidc_account_claim)."""
    http, page = site.login(account)
    assert page.status_code == 403
    assert "No facility account is linked to your login" in page.text
    assert not logged_in(http, site.hub)
    assert site.hub.api("GET", f"/users/{account}").status_code == 404


def test_a_person_linked_to_another_account_must_log_in_again(site: OidcSite) -> None:
    http, _ = site.login("grace")
    assert session_user(http, site.hub) == "grace"
    accounts = json.loads(site.office.accounts_path.read_text())
    site.office.accounts_path.write_text(json.dumps({**accounts, SUBS["grace"]: "carol"}))
    try:
        time.sleep(PROPOSALS_MAX_AGE + 0.5)  # the next request refreshes, and asks the user office again
        response = http.get(f"{site.hub.url}/hub/home", follow_redirects=False)
        assert response.status_code == 302 and "/hub/login" in response.headers["location"]
    finally:
        site.office.accounts_path.write_text(json.dumps(accounts))


def test_spawns_only_for_own_proposals_billed_to_them(site: OidcSite) -> None:
    site.login("alice")
    hub = site.hub
    token = hub.token_for("alice", ["servers!user=alice"])

    def spawn(options: dict, server: str = "") -> httpx.Response:
        return hub.http.post(
            f"{hub.api_url}{hub.server_path('alice', server)}",
            headers={"Authorization": f"token {token}"},
            json=options,
        )

    sbatch_before = site.slurm.commands.count("sbatch")
    refused = [
        ({"profile": "sans"}, "profile: 'sans' is not available to you"),
        ({"profile": "cpu", "proposal": "20230042"}, "proposal: '20230042' is not one of your proposals"),
        ({"profile": "mx", "proposal": "20230042"}, "proposal: '20230042' is not one of your proposals"),
    ]
    for options, message in refused:
        response = spawn(options)
        assert response.status_code == 400, response.text
        assert message in response.json()["message"]
    assert site.slurm.commands.count("sbatch") == sbatch_before
    assert hub.server_model("alice") is None

    assert spawn({"profile": "mx"}).status_code in (201, 202)
    hub.wait_ready("alice")
    job_id = hub.job_id("alice")
    assert job_details(job_id)["Account"] == "20231234"
    script = batch_script(job_id)
    assert "DAAS_PROPOSAL=20231234" in script and "DAAS_PROPOSALS=20231234,20220001" in script

    # One server per proposal: a server named after a proposal works (and bills) for it only.
    server = "proposal-20220001"
    response = spawn({"profile": "mx", "proposal": "20231234"}, server=server)
    assert response.status_code == 400 and "this server is for proposal 20220001" in response.json()["message"]
    assert spawn({"profile": "mx"}, server=server).status_code in (201, 202)
    hub.wait_ready("alice", server)
    assert job_details(hub.job_id("alice", server))["Account"] == "20220001"
    model = hub.server_model("alice", server)
    assert model["state"]["daas"]["options"]["proposal"] == "20220001"
    assert model["display_name"] == "20220001: Earlier beamtime"  # the home page shows it
    home = site.login("alice")[0].get(f"{hub.url}/hub/home")
    assert "20220001: Earlier beamtime" in home.text

    for name in ("", server):
        hub.stop_server("alice", name)
