"""DaaSAuthenticator's proposal logic: claims + user office, its cache, and what happens when it fails.

The user office is a boundary: `DownOffice` stands in for one that is down. The OIDC flow
itself is tested against a real provider in tests/integration/test_oidc_login.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from traitlets import TraitError

from daas_auth.authenticator import OFFICE_DOWN_WARNING, KeycloakAuthenticator
from daas_auth.useroffice import FileUserOffice, UserOffice, UserOfficeError

CLAIMS = {"preferred_username": "alice", "groups": ["/proposals/20231234", "/proposals/20239999", "/staff"]}
OFFICE = {
    "alice": [
        {"id": "20231234", "title": "Strain in alloys", "instrument": "ID11", "role": "PI"},
        {"id": "20230001", "title": "Only in the office"},
    ]
}


class DownOffice(UserOffice):
    """A user office that does not answer."""

    calls = 0

    async def proposals(self, username: str, claims: Any) -> list:
        self.calls += 1
        raise UserOfficeError("connection refused")


def auth_model(claims: dict[str, Any] = CLAIMS) -> dict[str, Any]:
    return {"name": claims["preferred_username"], "admin": None, "auth_state": {"oauth_user": dict(claims)}}


@pytest.fixture
def office_file(tmp_path):
    path = tmp_path / "proposals.yaml"
    path.write_text(yaml.safe_dump(OFFICE))
    return path


async def test_office_metadata_and_claim_ids_are_merged(office_file):
    auth = KeycloakAuthenticator(user_office=FileUserOffice(path=str(office_file)))
    model = await auth.update_auth_model(auth_model())
    state = model["auth_state"]
    assert [p["id"] for p in state["proposals"]] == ["20231234", "20230001", "20239999"]
    assert state["proposals"][0]["title"] == "Strain in alloys" and state["proposals"][0]["instrument"] == "ID11"
    assert state["proposals_warning"] is None
    # The provider's own groups stay beside the proposals' (its `/proposals/<id>` values are those proposals).
    groups = {"proposal-20231234", "proposal-20230001", "proposal-20239999", "/staff"}
    assert await auth.get_user_groups(state) == groups


async def test_claims_alone_without_a_user_office():
    model = await KeycloakAuthenticator().update_auth_model(auth_model())
    assert [p["id"] for p in model["auth_state"]["proposals"]] == ["20231234", "20239999"]
    assert model["auth_state"]["proposals_warning"] is None


async def test_office_down_without_cache_gives_claim_proposals_and_a_warning():
    office = DownOffice()
    model = await KeycloakAuthenticator(user_office=office).update_auth_model(auth_model())
    assert [p["id"] for p in model["auth_state"]["proposals"]] == ["20231234", "20239999"]
    assert model["auth_state"]["proposals_warning"] == OFFICE_DOWN_WARNING
    assert office.calls == 1


async def test_office_down_uses_the_last_answer_however_old(office_file):
    auth = KeycloakAuthenticator(user_office=FileUserOffice(path=str(office_file)), proposals_max_age=60)
    await auth.update_auth_model(auth_model())
    auth.user_office = DownOffice()
    auth._office_cache.entries["alice"] = (time.time() - 86400, auth._office_cache.entries["alice"][1])
    model = await auth.update_auth_model(auth_model())
    assert [p["id"] for p in model["auth_state"]["proposals"]] == ["20231234", "20230001", "20239999"]
    assert model["auth_state"]["proposals_warning"] is None
    assert auth.user_office.calls == 1


async def test_fresh_answers_are_not_asked_again(office_file):
    auth = KeycloakAuthenticator(user_office=FileUserOffice(path=str(office_file)), proposals_max_age=60)
    await auth.update_auth_model(auth_model())
    auth.user_office = DownOffice()
    await auth.update_auth_model(auth_model())
    assert auth.user_office.calls == 0


async def test_file_office_rereads_an_edited_file(office_file):
    office = FileUserOffice(path=str(office_file))
    assert [p.id for p in await office.proposals("alice", {})] == ["20231234", "20230001"]
    office_file.write_text(yaml.safe_dump({"alice": [{"id": "20240001"}]}))
    office._proposals.loaded = (0.0, office._proposals.loaded[1])  # as if the file's mtime had moved on
    assert [p.id for p in await office.proposals("alice", {})] == ["20240001"]
    assert await office.proposals("nobody", {}) == []


@pytest.mark.parametrize("content", ["- a list\n", "{unclosed: [", ""])
async def test_file_office_bad_file_is_an_office_error(tmp_path, content):
    path = tmp_path / "p.yaml"
    path.write_text(content)
    with pytest.raises(UserOfficeError, match=str(path)):
        await FileUserOffice(path=str(path)).proposals("alice", {})
    with pytest.raises(UserOfficeError, match="No such file"):
        await FileUserOffice(path=str(tmp_path / "missing.yaml")).proposals("alice", {})


async def test_people_with_proposals_may_log_in():
    auth = KeycloakAuthenticator()
    member = await auth.update_auth_model(auth_model())
    outsider = await auth.update_auth_model(auth_model({"preferred_username": "eve", "groups": ["/staff"]}))
    assert await auth.check_allowed("alice", member)
    assert not await auth.check_allowed("eve", outsider)
    auth.allow_proposal_members = False
    assert not await auth.check_allowed("alice", member)


class StoredUser:
    """The one thing refresh_user reads from a hub user: its stored auth_state."""

    name = "alice"

    def __init__(self, auth_state: dict[str, Any]) -> None:
        self.auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any]:
        return self.auth_state


async def test_refresh_leaves_a_valid_token_and_current_proposals_alone():
    auth = KeycloakAuthenticator(issuer="http://127.0.0.1:9/unreachable")  # any network use would fail
    state = {"token_expires_at": time.time() + 60, "proposals_refreshed_at": time.time(), "proposals": []}
    assert await auth.refresh_user(StoredUser(state)) is True


@pytest.mark.parametrize(
    "state",
    [
        {"token_expires_at": time.time() - 1, "proposals_refreshed_at": time.time()},
        {"token_expires_at": time.time() + 60, "proposals_refreshed_at": time.time() - 3600},
    ],
)
async def test_refresh_asks_the_provider_once_the_token_expired_or_proposals_are_due(state):
    auth = KeycloakAuthenticator(issuer="http://127.0.0.1:9/unreachable")
    with pytest.raises(Exception, match="cannot reach the identity provider"):
        await auth.refresh_user(StoredUser(state))


def test_bad_claim_rules_fail_at_configuration():
    with pytest.raises(Exception, match=r"proposal_claim_rules\[0\]"):
        KeycloakAuthenticator(proposal_claim_rules=[{"claim": "groups", "pattern": "(no id group)"}])


async def test_numeric_ids_from_the_sites_claims_go_to_auth_state():
    auth = KeycloakAuthenticator(uid_claim="uidNumber", gid_claim="gidNumber", groups_claim="gids")
    claims = {**CLAIMS, "uidNumber": "41234", "gidNumber": "4100", "gids": ["5001"]}
    model = await auth.update_auth_model(auth_model(claims))
    assert model["auth_state"]["posix"] == {"uid": 41234, "gid": 4100, "groups": [5001]}


@pytest.mark.parametrize("claims", [CLAIMS, {**CLAIMS, "uidNumber": "0", "gidNumber": "4100"}])
async def test_missing_or_root_ids_log_in_without_ids(claims):
    auth = KeycloakAuthenticator(uid_claim="uidNumber", gid_claim="gidNumber")
    model = await auth.update_auth_model(auth_model(claims))
    assert model["name"] == "alice" and model["auth_state"]["posix"] is None


async def test_no_uid_claim_configured_stores_no_ids():
    model = await KeycloakAuthenticator().update_auth_model(auth_model({**CLAIMS, "uidNumber": "41234"}))
    assert model["auth_state"]["posix"] is None


def state_with(groups: Any = None, proposals: tuple[str, ...] = ("20231234",)) -> dict[str, Any]:
    """An auth_state as update_auth_model leaves it; `groups` None: the login carries no groups claim."""
    claims: dict[str, Any] = {"preferred_username": "alice", "sub": "a11ce"}
    if groups is not None:
        claims["groups"] = groups
    return {"oauth_user": claims, "proposals": [{"id": proposal} for proposal in proposals]}


@pytest.mark.parametrize(
    "template, kept, dropped",
    [
        ("proposal-{id}", "beamtime-20230042", ["proposal-20230042", "proposal-"]),
        ("beamtime-{id}", "proposal-20230042", ["beamtime-20230042", "beamtime-"]),
    ],
)
async def test_a_provider_group_named_like_a_proposal_group_is_dropped(caplog, template, kept, dropped):
    """Proposal groups decide sharing: a provider's group cannot make someone a member of a proposal's."""
    auth = KeycloakAuthenticator(proposal_group_template=template)
    groups = await auth.get_user_groups(state_with(["staff", kept, *dropped]))
    assert groups == {"staff", kept, template.format(id="20231234")}
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    for name in dropped:
        assert f"Group {name!r} from the login of a11ce dropped: only proposals make groups so named" in warnings


@pytest.mark.parametrize("groups", [None, []])
async def test_a_login_without_groups_has_its_proposal_groups_and_logs_no_error(caplog, groups):
    auth = KeycloakAuthenticator()
    assert await auth.get_user_groups(state_with(groups, ("20230042", "20231234"))) == {
        "proposal-20230042",
        "proposal-20231234",
    }
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == []


async def test_the_sites_groups_key_decides_the_providers_groups():
    """oauthenticator's own settings choose where the groups are; `""` keeps the proposals' only."""
    state = state_with(["/staff"])
    state["oauth_user"]["realm_access"] = {"roles": ["beamline-staff", "offline_access"]}
    auth = KeycloakAuthenticator(auth_state_groups_key="oauth_user.realm_access.roles")
    assert await auth.get_user_groups(state) == {"beamline-staff", "offline_access", "proposal-20231234"}
    auth = KeycloakAuthenticator(auth_state_groups_key=lambda auth_state: ["from-a-callable"])
    assert await auth.get_user_groups(state) == {"from-a-callable", "proposal-20231234"}
    auth = KeycloakAuthenticator(auth_state_groups_key="")
    assert await auth.get_user_groups(state) == {"proposal-20231234"}


@pytest.mark.parametrize("template", ["{id}", "proposal", "proposal-{id}-{id}", "{id}-{team}", "p-{id}}"])
def test_a_group_template_needs_id_once_with_fixed_text(template):
    with pytest.raises(TraitError, match=r"must hold \{id\} once with fixed text around it"):
        KeycloakAuthenticator(proposal_group_template=template)
