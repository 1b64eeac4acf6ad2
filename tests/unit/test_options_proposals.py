"""Proposals in the options model: only the user's own, only where the profile allows, billed to it."""

from __future__ import annotations

import pytest

from daas_spawner.backends.slurm.commands import job_account
from daas_spawner.options import OptionsError, UserAccess, proposal_choices, resolve_options
from daas_spawner.profiles import ProfileConfigError, ProfileSet, parse_profiles

from .conftest import site_profiles_raw

ALICE = UserAccess(proposals=("20231234", "20220001"))
BOB = UserAccess(proposals=("20230042",))
NOBODY = UserAccess()
STAFF = UserAccess(groups=frozenset({"staff"}), proposals=("20220001",))


@pytest.fixture
def site() -> ProfileSet:
    """The unit-test site plus `mx`: open to members of proposals 2023* (or staff), billed to the proposal."""
    raw = site_profiles_raw()
    mx = {
        **raw["profiles"][1],
        "id": "mx",
        "display_name": "MX beamtime",
        "slurm": {},
        "allowed_proposals": ["2023*"],
        "allowed_groups": ["staff"],
    }
    raw["profiles"].append(mx)
    return parse_profiles(raw, "t")


def test_restricted_profile_is_offered_to_matching_proposals_and_groups_only(site):
    visible = {
        name: [p.id for p in site.allowed_for(u.groups, u.proposals)]
        for name, u in {"alice": ALICE, "bob": BOB, "nobody": NOBODY, "staff": STAFF}.items()
    }
    assert "mx" in visible["alice"] and "mx" in visible["bob"] and "mx" in visible["staff"]
    assert "mx" not in visible["nobody"]


def test_default_is_the_first_proposal_that_opens_the_profile(site):
    assert resolve_options({"profile": "mx"}, site, ALICE).proposal == "20231234"
    assert resolve_options({"profile": "mx"}, site, BOB).proposal == "20230042"


def test_unrestricted_profile_defaults_to_the_first_own_proposal_or_none(site):
    assert resolve_options({"profile": "cpu"}, site, ALICE).proposal == "20231234"
    assert resolve_options({"profile": "cpu", "proposal": "20220001"}, site, ALICE).proposal == "20220001"
    assert resolve_options({"profile": "cpu"}, site, NOBODY).proposal is None


@pytest.mark.parametrize(
    "user, raw, message",
    [
        (ALICE, {"profile": "mx", "proposal": "20230042"}, "'20230042' is not one of your proposals"),
        (ALICE, {"profile": "cpu", "proposal": "20230042"}, "'20230042' is not one of your proposals"),
        (ALICE, {"profile": "mx", "proposal": "20220001"}, "proposal 20220001 may not use profile 'mx'"),
        (BOB, {"profile": "mx", "proposal": ["20230042"]}, "must be a string, not list"),
        (NOBODY, {"profile": "cpu", "proposal": "20231234"}, "'20231234' is not one of your proposals"),
    ],
)
def test_foreign_or_unfit_proposals_are_refused(site, user, raw, message):
    with pytest.raises(OptionsError) as info:
        resolve_options(raw, site, user)
    assert info.value.field == "proposal"
    assert info.value.message == message


def test_another_proposals_profile_is_refused_like_an_unknown_one(site):
    with pytest.raises(OptionsError) as info:
        resolve_options({"profile": "mx", "proposal": "20231234"}, site, NOBODY)
    assert info.value.field == "profile"


def test_group_members_may_bill_any_of_their_own_proposals(site):
    assert resolve_options({"profile": "mx"}, site, STAFF).proposal == "20220001"
    assert resolve_options({"profile": "mx"}, site, UserAccess(groups=frozenset({"staff"}))).proposal is None


def test_a_server_named_after_a_proposal_works_for_it(site):
    named = UserAccess(proposals=ALICE.proposals, server_proposal="20220001")
    assert resolve_options({"profile": "cpu"}, site, named).proposal == "20220001"
    assert proposal_choices(site.get("cpu"), named) == (["20231234", "20220001"], "20220001")
    with pytest.raises(OptionsError) as info:
        resolve_options({"profile": "cpu", "proposal": "20231234"}, site, named)
    assert info.value.message == "this server is for proposal 20220001, not '20231234'"
    with pytest.raises(OptionsError) as info:  # named after a proposal the profile does not take
        resolve_options({"profile": "mx"}, site, named)
    assert info.value.message == "proposal 20220001 may not use profile 'mx'"


def test_an_account_template_needs_a_proposal():
    raw = site_profiles_raw()
    raw["profiles"][0]["slurm"] = {"account": "p{proposal}"}
    site = parse_profiles(raw, "t")
    with pytest.raises(OptionsError) as info:
        resolve_options({"profile": "cpu"}, site, NOBODY)
    assert info.value.field == "proposal"
    options = resolve_options({"profile": "cpu"}, site, BOB)
    assert job_account(options, "{proposal}") == "p20230042"


def test_job_account(site):
    mx = resolve_options({"profile": "mx"}, site, ALICE)
    assert job_account(mx, "{proposal}") == "20231234"
    assert job_account(mx, "prop_{proposal}") == "prop_20231234"
    assert job_account(mx, "") is None
    # A profile's own account wins; without a proposal it is used as it is.
    assert job_account(resolve_options({"profile": "cpu"}, site, ALICE), "{proposal}") == "proj-42"
    assert job_account(resolve_options({"profile": "mx"}, site, UserAccess(groups=frozenset({"staff"}))), "x") is None


def test_proposal_appears_in_the_summary(site):
    assert resolve_options({"profile": "mx"}, site, BOB).summary()["proposal"] == "20230042"


@pytest.mark.parametrize(
    "field, value",
    [
        ("allowed_proposals", ["2023*; rm"]),
        ("allowed_proposals", ["/proposals/1"]),
        ("allowed_proposals", [""]),
        ("slurm", {"account": "{user}"}),
        ("slurm", {"account": "a b"}),
        ("slurm", {"account": "p{proposal}\n#SBATCH"}),
    ],
)
def test_bad_proposal_settings_fail_at_load(field, value):
    raw = site_profiles_raw()
    raw["profiles"][0][field] = value
    with pytest.raises(ProfileConfigError) as info:
        parse_profiles(raw, "site.yaml")
    assert f"site.yaml: profiles[cpu].{field}" in str(info.value)
