"""HttpUserOffice against a running user-office API: answers, renamed fields, and every kind of failure."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from daas_auth.useroffice import HttpUserOffice, UserOfficeError

from .conftest import public_tempdir
from .process import free_port
from .user_office import UserOfficeService

PROPOSALS = {
    "alice": [{"id": 20231234, "title": "Strain", "instrument": "ID11"}, {"id": "bad id"}],
    "bob": [{"proposal_number": "20230042", "beamline": "D22", "title": "SANS"}],
    "nobody-known": [],
}
ACCOUNTS = {"3f6c1a7e@idp.test": "alice", "a/b": "bob", "broken": ["alice"]}


@pytest.fixture(scope="module")
def office() -> Iterator[UserOfficeService]:
    service = UserOfficeService(public_tempdir("daas-uo-"), PROPOSALS, ACCOUNTS).start()
    yield service
    service.stop()


async def test_proposals_of_a_person(office: UserOfficeService) -> None:
    client = HttpUserOffice(url=office.url, token=office.token)
    proposals = await client.proposals("alice", {})
    assert [(p.id, p.title, p.instrument) for p in proposals] == [("20231234", "Strain", "ID11")]  # bad id skipped


async def test_the_apis_own_field_names(office: UserOfficeService) -> None:
    client = HttpUserOffice(
        url=office.url, token=office.token, field_names={"id": "proposal_number", "instrument": "beamline"}
    )
    [proposal] = await client.proposals("bob", {})
    assert (proposal.id, proposal.instrument, proposal.title) == ("20230042", "D22", "SANS")


async def test_unknown_people_have_no_proposals(office: UserOfficeService) -> None:
    assert await HttpUserOffice(url=office.url, token=office.token).proposals("stranger", {}) == []


async def test_user_names_are_quoted_into_the_url(office: UserOfficeService) -> None:
    client = HttpUserOffice(url=office.url, token=office.token)
    assert client.request_url("a/../b", {}).endswith("/api/users/a%2F..%2Fb/proposals")
    assert await client.proposals("a/../alice", {}) == []  # not alice's: the name stays one path segment


async def test_a_refused_token_is_an_office_error(office: UserOfficeService) -> None:
    with pytest.raises(UserOfficeError, match="HTTP 401"):
        await HttpUserOffice(url=office.url, token="wrong").proposals("alice", {})


@pytest.mark.parametrize(
    "data, message",
    [
        (json.dumps({"alice": {"not": "a list"}}), "expected a list of proposals"),
        ("{not json", "HTTP 500"),  # the user office itself fails
    ],
)
async def test_a_broken_answer_is_an_office_error(office: UserOfficeService, data: str, message: str) -> None:
    office.data_path.write_text(data)
    try:
        with pytest.raises(UserOfficeError, match=message):
            await HttpUserOffice(url=office.url, token=office.token).proposals("alice", {})
    finally:
        office.data_path.write_text(json.dumps(PROPOSALS))


async def test_nobody_listening_is_an_office_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/users/{{username}}/proposals"
    with pytest.raises(UserOfficeError, match="ConnectError"):
        await HttpUserOffice(url=url, timeout=2).proposals("alice", {})


async def test_the_account_linked_to_a_persons_sub(office: UserOfficeService) -> None:
    client = HttpUserOffice(url=office.url, account_url=office.account_url, token=office.token)
    assert client.links_accounts
    assert await client.account("3f6c1a7e@idp.test") == "alice"
    assert await client.account("someone-else@idp.test") is None  # 404: linked to no account
    assert await client.account("a/b") == "bob"  # the sub stays one path segment (a%2Fb)
    with pytest.raises(UserOfficeError, match="expected an object with a string 'username'"):
        await client.account("broken")


async def test_without_an_account_url_it_links_no_accounts(office: UserOfficeService) -> None:
    client = HttpUserOffice(url=office.url, token=office.token)
    assert not client.links_accounts
    with pytest.raises(UserOfficeError, match="not configured to link people to accounts"):
        await client.account("3f6c1a7e@idp.test")
