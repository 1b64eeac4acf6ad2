"""A server's session: its ends (the profile's lifetime, the backend's wall time, idleness) and its share group."""

from __future__ import annotations

import pytest

from daas_spawner.options import UserAccess, resolve_options
from daas_spawner.profiles import ProfileConfigError, parse_profiles
from daas_spawner.session import (
    Session,
    ended_idle,
    idle_over,
    lifetime_over,
    open_session,
    session_args,
    session_env,
)

from .conftest import site_profiles_raw

ALICE = UserAccess(proposals=("20231234",))
T0 = 1_800_000_000.0


def site(**common):
    """The unit-test site (its `local` profile included) with `common` set on every profile."""
    raw = site_profiles_raw()
    raw["profiles"] = [{**profile, **common} for profile in raw["profiles"]]
    return parse_profiles(raw, "t")


def test_profile_reads_durations_as_admins_write_them():
    profiles = site(max_lifetime="8h", idle_timeout="2m", sharing=False)
    profile = profiles.get("local")
    assert (profile.max_lifetime, profile.idle_timeout, profile.sharing) == (8 * 3600, 120, False)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("idle_timeout", "30s", "at least a minute"),
        ("max_lifetime", 59, "at least a minute"),
        ("idle_timeout", "2 minutes", "is not written like"),
        ("max_lifetime", "4:00:00", "is not written like"),
        ("sharing", "maybe", "sharing"),
    ],
)
def test_bad_session_settings_stop_the_hub_naming_the_field(field, value, message):
    with pytest.raises(ProfileConfigError) as err:
        site(**{field: value})
    assert f"profiles[cpu].{field}" in str(err.value) and message in str(err.value)


def test_session_ends_at_the_earlier_of_lifetime_and_wall_time():
    options = resolve_options({"profile": "cpu", "walltime": "1:00:00"}, site(max_lifetime="8h"), ALICE)
    session = open_session(options, "proposal-{id}", now=T0)
    assert (session.max_lifetime, session.time_limit, session.ends_at) == (8 * 3600, 3600, T0 + 3600)
    assert session.ends_by == "wall time"

    options = resolve_options({"profile": "cpu", "walltime": "4:00:00"}, site(max_lifetime="2h"), ALICE)
    session = open_session(options, "proposal-{id}", now=T0)
    assert (session.ends_at, session.ends_by) == (T0 + 7200, "maximum lifetime")


def test_a_local_server_without_lifetime_never_ends_by_time():
    session = open_session(resolve_options({"profile": "local"}, site(), ALICE), "proposal-{id}", now=T0)
    assert session.ends_at is None and session.ends_by is None
    assert lifetime_over(session, T0 + 10**9) is None
    assert "DAAS_SESSION_ENDS_AT" not in session_env(session, 900)


@pytest.mark.parametrize(
    "sharing, access, group",
    [
        (True, ALICE, "proposal-20231234"),
        (False, ALICE, None),  # the profile does not share
        (True, UserAccess(), None),  # the server works for no proposal
    ],
)
def test_share_group_is_the_proposals_when_the_profile_shares(sharing, access, group):
    options = resolve_options({"profile": "local"}, site(sharing=sharing), access)
    assert open_session(options, "proposal-{id}", now=T0).share_group == group


def test_share_group_follows_the_authenticators_template():
    options = resolve_options({"profile": "local"}, site(), ALICE)
    assert open_session(options, "team:{id}", now=T0).share_group == "team:20231234"


def test_lifetime_is_over_at_its_end_and_says_so():
    session = Session(profile="gpu", started_at=T0, max_lifetime=3600)
    assert lifetime_over(session, T0 + 3599) is None
    message = lifetime_over(session, T0 + 3600)
    assert message is not None and "maximum lifetime (1 h, profile 'gpu')" in message
    assert "2027-01-15 08:00 UTC" in message


def test_a_backend_time_limit_is_the_backends_to_enforce():
    session = Session(profile="cpu", started_at=T0, time_limit=600)
    assert lifetime_over(session, T0 + 10**6) is None


def test_idle_servers_get_jupyter_servers_own_culling():
    session = Session(profile="cpu", started_at=T0, idle_timeout=120)
    args = session_args(session, 10)
    assert "--HubOAuth.cache_max_age=10" in args
    assert "--ServerApp.shutdown_no_activity_timeout=120" in args
    assert "--MappingKernelManager.cull_idle_timeout=120" in args
    assert "--MappingKernelManager.cull_busy=False" in args
    assert "--TerminalManager.cull_inactive_timeout=120" in args
    assert session_args(Session(profile="cpu", started_at=T0), 10) == ["--HubOAuth.cache_max_age=10"]


def test_servers_report_activity_often_enough_for_their_idle_timeout():
    assert session_env(Session(profile="cpu", started_at=T0), 900)["JUPYTERHUB_ACTIVITY_INTERVAL"] == "300"
    env = session_env(Session(profile="cpu", started_at=T0, idle_timeout=120, max_lifetime=3600), 900)
    assert env["JUPYTERHUB_ACTIVITY_INTERVAL"] == "60"
    assert env["DAAS_SESSION_ENDS_AT"] == str(int(T0) + 3600)
    assert env["DAAS_SESSION_IDLE_TIMEOUT"] == "120"
    assert env["DAAS_SESSION_END_WARNING"] == "900"


def test_hub_side_idle_end_waits_for_the_servers_report_and_its_own_check():
    session = Session(profile="vm", started_at=T0, idle_timeout=600)  # reports every 300 s
    last = T0 + 1000
    assert idle_over(session, last + 600 + 300 + 59, last) is None
    message = idle_over(session, last + 600 + 300 + 60, last)
    assert message is not None and "10 min without activity" in message
    assert idle_over(Session(profile="vm", started_at=T0), T0 + 10**6, None) is None
    # never reported: counted from the start
    assert idle_over(session, T0 + 959, None) is None and idle_over(session, T0 + 960, None) is not None


def test_an_end_is_told_as_idle_only_when_the_server_was_idle_that_long():
    session = Session(profile="cpu", started_at=T0, idle_timeout=120)
    assert ended_idle(session, T0 + 500, T0 + 380)
    assert not ended_idle(session, T0 + 500, T0 + 450)
    assert not ended_idle(Session(profile="cpu", started_at=T0), T0 + 10**6, None)
