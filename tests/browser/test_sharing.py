"""Sharing a running server with the proposal's team: Chromium, a real hub with OIDC login, the user office, Slurm.

alice's server works for her proposal 20231234. bob is a member of it (the user office says so),
carol is not; 20220001 is alice's other proposal. Every grant and revocation is a JupyterHub share,
decided by JupyterHub on every request to the server.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from ..integration.conftest import cancel_test_jobs
from ..integration.hub import Hub, wait_for
from ..integration.oidc_site import PROPOSALS_MAX_AGE, OidcSite
from .conftest import oidc_log_in, screenshot

pytestmark = pytest.mark.slurm

TEAM = "proposal-20231234"
ACCESS_CHECK = 2  # seconds a server trusts the hub's answer on who may use it
CELL = {"cell_type": "code", "id": "c1", "metadata": {}, "source": "print(6 * 7)", "outputs": []}
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [CELL | {"execution_count": None}],
}


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[OidcSite]:
    cancel_test_jobs()
    site = OidcSite(
        prefix="daas-share-",
        extra_config=f"""
            c.DaaSSpawner.access_check_interval = {ACCESS_CHECK}
        """,
    )
    set_membership(site, "bob", member=True)
    site.start()
    yield site
    site.hub.stop_all_servers(["alice"])
    site.close()


def set_membership(site: OidcSite, person: str, member: bool) -> None:
    """Add `person` to proposal 20231234 in the user office, or take them off it."""
    office = json.loads(site.office.data_path.read_text())
    theirs = [p for p in office.get(person, []) if p["id"] != "20231234"]
    if member:
        theirs.append({"id": "20231234", "title": "Strain in additively manufactured alloys", "role": "member"})
    office[person] = theirs
    site.office.data_path.write_text(json.dumps(office))


def shares(hub: Hub, token: str, server: str = "") -> httpx.Response:
    return hub.http.get(f"{hub.api_url}/daas/shares/alice/{server}", headers={"Authorization": f"token {token}"})


def share(hub: Hub, token: str, body: object, method: str = "POST", owner: str = "alice") -> httpx.Response:
    return hub.http.request(
        method,
        f"{hub.api_url}/daas/shares/{owner}/",
        headers={"Authorization": f"token {token}"},
        content=body if isinstance(body, bytes) else json.dumps(body),
    )


def status_for(page: Page, hub: Hub) -> int:
    """What alice's server answers this browser (its cookies) on an API request."""
    return page.request.get(f"{hub.url}/user/alice/api/contents", max_redirects=0).status


def test_alice_shares_with_her_proposal_and_its_members_only(browser: Browser, site: OidcSite) -> None:
    hub = site.hub
    alice = oidc_log_in(browser.new_context(), hub, "alice")
    response = hub.spawn("alice", {"profile": "cpu", "proposal": "20231234"})
    assert response.status_code in (201, 202), response.text
    hub.wait_ready("alice")
    alices = hub.token_for("alice", ["inherit"])
    put = hub.http.put(
        f"{hub.url}/user/alice/api/contents/shared.ipynb",
        headers={"Authorization": f"token {alices}"},
        json={"type": "notebook", "content": NOTEBOOK},
    )
    assert put.status_code in (200, 201), put.text

    # alice shares from the home page
    alice.goto(f"{hub.url}/hub/home")
    row = alice.locator('tr.daas-session[data-server=""]')
    expect(row).to_contain_text("cpu")
    expect(row).to_contain_text("only you")
    row.get_by_role("button", name="Share with the proposal's team").click()
    expect(alice.locator('tr.daas-session[data-server=""]')).to_contain_text(f"{TEAM} (the proposal's team)")
    expect(alice.locator("#daas-shared-with-me")).to_have_count(0)  # her own server, through her team: not listed
    screenshot(alice, "sharing-01-alice-shared-with-her-team")
    assert shares(hub, alices).json()["shares"] == [{"group": TEAM}]  # no other member has logged in yet

    # bob, a member, logs in (and gets his own share as he joins the group), opens it and runs a cell
    bob_context = browser.new_context()
    bob = oidc_log_in(bob_context, hub, "bob")
    assert shares(hub, alices).json()["shares"] == [{"group": TEAM}, {"user": "bob"}]
    bob.goto(f"{hub.url}/hub/home")
    expect(bob.locator("#daas-shared-with-me li")).to_have_text(["alice/default"])  # once, by the team and to him
    bob.goto(f"{hub.url}/user/alice/lab/tree/shared.ipynb")
    bob.get_by_role("button", name="Authorize").click()  # JupyterHub asks once before another's server
    expect(bob.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle"))).to_be_visible(timeout=120_000)
    bob.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content").click()
    bob.keyboard.press("Shift+Enter")
    expect(bob.locator(".jp-OutputArea-output").first).to_contain_text("42", timeout=120_000)
    screenshot(bob, "sharing-02-bob-ran-a-cell-in-alices-server")

    # carol, not in the proposal, is refused
    http, _ = site.login("carol")
    refused = http.get(f"{hub.url}/user/alice/lab", follow_redirects=True)
    assert refused.status_code in (403, 404), refused.url

    # what the rule refuses, and who may ask
    carols, bobs = hub.token_for("carol", ["inherit"]), hub.token_for("bob", ["inherit"])
    for body, status, says in [
        ({"group": "proposal-20220001"}, 400, "share with that group"),  # alice's other proposal
        ({"user": "carol"}, 400, "not a member of this server's proposal"),
        ({"user": "alice"}, 400, "not a member"),  # herself
        ({"group": "no-such-group"}, 400, "share with that group"),
        ({"user": "bob; rm -rf /"}, 400, "String should match pattern"),
        ({"user": "bob", "scopes": ["admin:users"]}, 400, "Extra inputs are not permitted"),
        ({"user": "bob", "group": TEAM}, 400, "exactly one"),
        (b"\x00{", 400, "must be JSON"),
    ]:
        answer = share(hub, alices, body)
        assert (answer.status_code, says in answer.json()["message"]) == (status, True), (body, answer.text)
    for token in (bobs, carols):
        assert share(hub, token, {"user": "carol"}).status_code in (403, 404)  # not their server
    assert share(hub, alices, {"user": "bob"}, owner="bob").status_code in (403, 404)
    own_api = hub.http.post(
        f"{hub.api_url}/shares/alice/", headers={"Authorization": f"token {alices}"}, json={"user": "carol"}
    )
    assert own_api.status_code == 403, own_api.text  # JupyterHub's own sharing API stays closed to users
    assert shares(hub, alices).json()["shares"] == [{"group": TEAM}, {"user": "bob"}]
    assert http.get(f"{hub.url}/user/alice/lab", follow_redirects=True).status_code in (403, 404)

    # alice revokes: bob is refused at his next request after the server's short trust
    assert status_for(bob, hub) == 200
    alice.goto(f"{hub.url}/hub/home")
    alice.locator('tr.daas-session[data-server=""] button.daas-revoke[data-kind="group"]').click()
    expect(alice.locator('tr.daas-session[data-server=""]')).to_contain_text("only you")
    revoked = time.monotonic()
    wait_for(lambda: status_for(bob, hub) == 403, ACCESS_CHECK + 10, "bob to be refused")
    print(f"bob refused {time.monotonic() - revoked:.1f} s after the revocation")

    assert shares(hub, alices).json()["shares"] == []  # the members' shares went with the team's

    # shared with the team again; bob leaves the proposal: refused after his token refresh
    assert share(hub, alices, {"group": TEAM}).status_code == 200
    wait_for(lambda: status_for(bob, hub) == 200, ACCESS_CHECK + 10, "bob to be let in again")
    set_membership(site, "bob", member=False)
    left = time.monotonic()
    wait_for(lambda: status_for(bob, hub) == 403, PROPOSALS_MAX_AGE + ACCESS_CHECK + 20, "bob to be refused")
    print(f"bob refused {time.monotonic() - left:.1f} s after leaving the proposal")
    assert TEAM not in hub.user_model("bob")["groups"]
    assert shares(hub, alices).json()["shares"] == [{"group": TEAM}]  # his own share ended with his membership
    assert share(hub, alices, {"user": "bob"}).status_code == 400  # and he may not be given another

    # every share ends with the server
    hub.stop_server("alice")
    assert shares(hub, alices).json()["shares"] == []
    bob_context.close()
