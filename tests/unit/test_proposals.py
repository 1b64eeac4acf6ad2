"""Proposal ids from identity claims, and the proposal model's checks on what user offices send."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from traitlets import TraitError

from daas_auth.authenticator import KeycloakAuthenticator, UmbrellaAuthenticator
from daas_auth.proposals import ClaimRule, merge_proposals, proposals_from_claims
from daas_core.proposals import Proposal, parse_proposals, proposals_from_auth_state

SITE_ACCOUNTS = {"account_claim": "uid"}  # Umbrella needs an account source; which one does not matter here
KEYCLOAK = [ClaimRule.model_validate(rule) for rule in KeycloakAuthenticator().proposal_claim_rules]
UMBRELLA = [
    ClaimRule.model_validate(rule)
    for rule in UmbrellaAuthenticator(facility="daas-demo", **SITE_ACCOUNTS).proposal_claim_rules
]
ENTITLEMENT = "urn:geant:umbrellaid.org:group:{}:proposal:{}#umbrellaid.org"


@pytest.mark.parametrize(
    "rules, claims, ids",
    [
        (KEYCLOAK, {"groups": ["/proposals/20231234", "/staff", "/proposals/MX-2"]}, ["20231234", "MX-2"]),
        (KEYCLOAK, {"groups": "/proposals/20231234"}, ["20231234"]),  # a single value, not a list
        (KEYCLOAK, {"groups": ["/proposals/20231234/extra", "proposals/1", "/proposals/"]}, []),
        (KEYCLOAK, {"groups": ["/proposals/20231234", "/proposals/20231234"]}, ["20231234"]),
        (KEYCLOAK, {"groups": ["/proposals/a b", "/proposals/$(id)", "/proposals/.x"]}, []),
        (KEYCLOAK, {"groups": [None, 3, {"x": 1}]}, []),
        (KEYCLOAK, {}, []),
        (UMBRELLA, {"eduperson_entitlement": [ENTITLEMENT.format("daas-demo", "20230042")]}, ["20230042"]),
        (UMBRELLA, {"eduperson_entitlement": [ENTITLEMENT.format("other", "20230042")]}, []),
        (
            UMBRELLA,
            {"eduperson_entitlement": [ENTITLEMENT.format("daas-demo", "1").replace("#umbrellaid.org", "")]},
            [],
        ),
        (
            [ClaimRule(claim="realm_access.roles", pattern=r"prop-(?P<id>\d+)")],
            {"realm_access": {"roles": ["prop-7"]}},
            ["7"],
        ),
        ([ClaimRule(claim="a.b", pattern=r"(?P<id>\d+)")], {"a": "not a mapping"}, []),
    ],
)
def test_claim_rules(rules, claims, ids):
    assert [proposal.id for proposal in proposals_from_claims(claims, rules)] == ids


def test_umbrella_counts_only_its_own_facilitys_entitlements():
    umbrella = UmbrellaAuthenticator(facility="esrf", **SITE_ACCOUNTS)
    rules = [ClaimRule.model_validate(rule) for rule in umbrella.proposal_claim_rules]
    claims = {"eduperson_entitlement": [ENTITLEMENT.format("esrf", "1"), ENTITLEMENT.format("ill", "2")]}
    assert [p.id for p in proposals_from_claims(claims, rules)] == ["1"]


def test_umbrella_without_a_facility_does_not_start():
    with pytest.raises(TraitError, match=r"UmbrellaAuthenticator\.facility must name"):
        UmbrellaAuthenticator(**SITE_ACCOUNTS)
    explicit = [{"claim": "eduperson_entitlement", "pattern": r"urn:x:(?P<id>\d+)"}]
    own_rules = UmbrellaAuthenticator(proposal_claim_rules=explicit, **SITE_ACCOUNTS)
    assert own_rules.proposal_claim_rules == explicit  # own rules: fine


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"claim": "groups", "pattern": "/proposals/(.*)"}, "named group (?P<id>"),
        ({"claim": "groups", "pattern": "(?P<id>"}, "not a regular expression"),
        ({"claim": "", "pattern": "(?P<id>.*)"}, "at least 1 character"),
        ({"claim": "groups", "pattern": "(?P<id>.*)", "other": 1}, "Extra inputs"),
    ],
)
def test_bad_rules(rule, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("?", r"\?")):
        ClaimRule.model_validate(rule)


def test_proposals_from_a_user_office_are_checked_one_by_one():
    items = [
        {"id": 20231234, "title": "Strain", "instrument": "ID11", "start": "2023-05-01", "raw_data": "/data/raw/1"},
        {"id": "../etc", "title": "bad id"},
        {"id": "20230001", "raw_data": "relative/path"},
        {"id": "20230002", "title": "line\nbreak"},
        "not an object",
        {"id": 20231234, "title": "repeated"},
        {"id": "20230003", "unknown_field": "ignored"},
    ]
    proposals, problems = parse_proposals(items, "office")
    assert [p.id for p in proposals] == ["20231234", "20230003"]
    assert proposals[0].title == "Strain" and str(proposals[0].start) == "2023-05-01"
    assert len(problems) == 4
    assert problems[0].startswith("office: proposal #1: id: ")


def test_user_office_metadata_wins_and_claim_only_ids_are_kept():
    office = [Proposal(id="1", title="from office")]
    claims = [Proposal(id="1"), Proposal(id="2")]
    assert [(p.id, p.title) for p in merge_proposals(office, claims)] == [("1", "from office"), ("2", "")]


def test_auth_state_round_trip():
    stored = {"proposals": [Proposal(id="1", title="T").model_dump(mode="json"), {"id": "bad id"}]}
    assert proposals_from_auth_state(stored) == [Proposal(id="1", title="T")]
    assert proposals_from_auth_state(None) == []
    assert proposals_from_auth_state({}) == []
