"""A person's numeric ids: from the login's claims into auth_state, and out of it for a pod."""

from __future__ import annotations

import pytest

from daas_core.identity import PosixIdentity, identity_from_claims

CLAIMS = {"uidNumber": "41234", "gidNumber": 4100, "gids": ["5002", 5001, "5002"]}


def test_numbers_and_numeric_strings_become_ids():
    identity = identity_from_claims(CLAIMS, "uidNumber", "gidNumber", "gids")
    assert identity == PosixIdentity(41234, 4100, (5001, 5002))


def test_without_a_groups_claim_only_the_primary_group():
    assert identity_from_claims(CLAIMS, "uidNumber", "gidNumber").groups == ()


def test_a_single_group_value_is_a_list_of_one():
    assert identity_from_claims({**CLAIMS, "gids": "5003"}, "uidNumber", "gidNumber", "gids").groups == (5003,)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"uidNumber": None}, "'uidNumber' is None"),
        ({"uidNumber": "alice"}, "not a number"),
        ({"uidNumber": "-5"}, "not a number"),
        ({"uidNumber": "٣"}, "not a number"),  # a digit, but not an ASCII one
        ({"uidNumber": True}, "not a number"),
        ({"uidNumber": 1.5}, "not a number"),
        ({"uidNumber": 0}, "never root's"),
        ({"gidNumber": "0"}, "never root's"),
        ({"gids": ["5001", "0"]}, "never root's"),
        ({"gids": [["5001"]]}, "not a number"),
    ],
)
def test_bad_claims_are_refused_naming_the_claim(changes, words):
    with pytest.raises(ValueError, match=words):
        identity_from_claims({**CLAIMS, **changes}, "uidNumber", "gidNumber", "gids")


def test_both_claims_must_be_configured():
    with pytest.raises(ValueError, match="uid claim and a gid claim"):
        identity_from_claims(CLAIMS, "uidNumber", "")


@pytest.mark.parametrize(
    "auth_state",
    [
        {},
        {"posix": None},
        {"posix": {"uid": 41234}},
        {"posix": {"uid": 0, "gid": 4100}},
        {"posix": {"uid": "41234", "gid": 4100}},
        {"posix": {"uid": 41234, "gid": 4100, "groups": 5001}},
    ],
)
def test_missing_or_malformed_auth_state_gives_no_identity(auth_state):
    assert PosixIdentity.from_auth_state(auth_state) is None


def test_auth_state_round_trip():
    identity = PosixIdentity(41234, 4100, (5001, 5002))
    assert PosixIdentity.from_auth_state({"posix": identity.as_auth_state()}) == identity
