"""Sharing's rules that need no running hub: what a share request may say, and shares that end with a membership.

The membership rule runs on JupyterHub's own ORM (an SQLite database, as the hub's), through the
same commits JupyterHub makes when it syncs a person's groups at login or token refresh.
"""

from __future__ import annotations

import json

import pytest
from jupyterhub import orm, roles, scopes
from tornado import web

from daas_spawner import sharing
from daas_spawner.session import STATE_KEY, Session


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "Input should be a valid dictionary"),
        (b"{}", "exactly one of 'user' or 'group'"),
        (b'{"user": "bob", "group": "proposal-1"}', "exactly one"),
        (b'{"user": "bob", "scopes": ["admin:users"]}', "scopes: Extra inputs are not permitted"),
        (b'{"group": "proposal-1; rm -rf /"}', "group: String should match pattern"),
        (b'{"user": "bob\\n"}', "user: String should match pattern"),
        (b'{"user": "../alice"}', "user: String should match pattern"),
        (b'{"user": "<script>"}', "user: String should match pattern"),
        (b'{"user": ["bob"]}', "user: Input should be a valid string"),
        (b'{"user": "' + b"b" * 300 + b'"}', "user: String should match pattern"),
        (b"[1]", "Input should be a valid dictionary"),
        (b"not json", "the body must be JSON"),
    ],
)
def test_bad_share_requests_are_400_saying_why(body, message):
    with pytest.raises(web.HTTPError) as err:
        sharing.parse_target(body)
    assert err.value.status_code == 400
    assert message in err.value.log_message


def test_a_share_request_names_one_user_or_one_group():
    assert sharing.parse_target(b'{"user": "bob"}') == sharing.ShareTarget(user="bob")
    assert sharing.parse_target(json.dumps({"group": "proposal-20231234"}).encode()).group == "proposal-20231234"


@pytest.fixture
def db():
    session = orm.new_session_factory("sqlite://")()
    sharing.follow_group_changes()
    sharing.follow_group_changes()  # idempotent: one listener
    yield session
    session.close()


def people(db, *names: str) -> list[orm.User]:
    found = [orm.User(name=name) for name in names]
    db.add_all(found)
    db.commit()
    return found


def teams(db, *names: str) -> list[orm.Group]:
    found = [orm.Group(name=name) for name in names]
    db.add_all(found)
    db.commit()
    return found


def server(db, owner: orm.User, name: str, share_group: str | None) -> orm.Spawner:
    stored = {"session": Session(profile="p", started_at=0, share_group=share_group).model_dump()}
    spawner = orm.Spawner(user=owner, name=name, state={STATE_KEY: stored})
    db.add(spawner)
    db.commit()
    return spawner


def test_a_person_leaving_the_proposal_loses_their_shares_of_its_servers_only(db):
    alice, bob = people(db, "alice", "bob")
    team_a, team_b = teams(db, "proposal-a", "proposal-b")
    bob.groups = [team_a, team_b]
    db.commit()
    for_a, for_b = server(db, alice, "a", "proposal-a"), server(db, alice, "b", "proposal-b")
    orm.Share.grant(db, for_a, bob)
    orm.Share.grant(db, for_b, bob)
    orm.Share.grant(db, for_a, team_a)

    bob.groups = [team_b]  # as JupyterHub's sync_groups does at his next token refresh
    db.commit()

    assert orm.Share.find(db, for_a, bob) is None
    assert orm.Share.find(db, for_b, bob) is not None  # still in proposal b
    assert orm.Share.find(db, for_a, team_a) is not None  # the group's share stays; bob is just not in it


def test_removal_from_the_group_side_ends_the_share_too(db):
    alice, bob = people(db, "alice", "bob")
    (team,) = teams(db, "proposal-a")
    team.users = [bob]
    db.commit()
    shared = server(db, alice, "a", "proposal-a")
    orm.Share.grant(db, shared, bob)

    team.users.remove(bob)  # as the admin API's DELETE /groups/proposal-a/users does
    db.commit()

    assert orm.Share.find(db, shared, bob) is None


def test_shares_of_servers_without_a_share_group_are_left_to_their_owner(db):
    alice, bob = people(db, "alice", "bob")
    (team,) = teams(db, "proposal-a")
    bob.groups = [team]
    db.commit()
    other = server(db, alice, "other", None)  # e.g. shared by an admin through JupyterHub's own API
    orm.Share.grant(db, other, bob)

    bob.groups = []
    db.commit()

    assert orm.Share.find(db, other, bob) is not None


def test_a_stopping_server_ends_its_shares(db):
    alice, bob = people(db, "alice", "bob")
    shared = server(db, alice, "a", "proposal-a")
    orm.Share.grant(db, shared, bob)

    sharing.end_shares(db, shared)

    assert orm.Share.find(db, shared, bob) is None and bob.shared_with_me == []


def test_a_member_who_joins_gets_a_share_of_the_teams_servers(db):
    alice, carol = people(db, "alice", "carol")
    team_a, team_b = teams(db, "proposal-a", "proposal-b")
    alice.groups = [team_a, team_b]
    db.commit()
    shared, other = server(db, alice, "a", "proposal-a"), server(db, alice, "b", "proposal-b")
    orm.Share.grant(db, shared, team_a)
    orm.Share.grant(db, other, team_a)  # (an admin's share outside the rule: not followed)

    carol.groups = [team_a, team_b]  # carol joins both at her next login
    db.commit()

    joined = orm.Share.find(db, shared, carol)
    assert joined is not None and joined.scopes == ["access:servers!server=alice/a"]
    assert orm.Share.find(db, other, carol) is None
    assert orm.Share.find(db, shared, alice) is None  # the owner needs none


def test_team_members_reach_the_server_with_the_token_it_checks(db):
    """Why each member gets a share of their own: JupyterHub does not count a group's share for tokens.

    Should JupyterHub come to count it, the second assertion fails: the members' own shares can then go.
    """
    roles.create_role(db, {"name": "user", "scopes": ["self"]})
    alice, bob = people(db, "alice", "bob")
    (team,) = teams(db, "proposal-a")
    for person in (alice, bob):
        roles.assign_default_roles(db, person)
    client = orm.OAuthClient(identifier="jupyterhub-user-alice-a")
    db.add(client)
    db.commit()
    shared = server(db, alice, "a", "proposal-a")
    shared.oauth_client_id = client.identifier
    bob.groups = [team]
    db.commit()
    orm.Share.grant(db, shared, team)
    token = orm.APIToken.find(
        db, orm.APIToken.new(user=bob, scopes=["access:servers!server=alice/a"], client_id=client.identifier)
    )
    assert "access:servers!server=alice/a" in scopes.get_scopes_for(bob)  # the hub's own pages
    assert "access:servers!server=alice/a" not in scopes.get_scopes_for(token)  # the server's check

    bob.groups = []
    db.commit()
    bob.groups = [team]  # as he joins (the team's share exists): his own share
    db.commit()

    assert "access:servers!server=alice/a" in scopes.get_scopes_for(token)
