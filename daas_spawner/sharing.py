"""Sharing a running server with its proposal's team, on JupyterHub's own shares and scopes.

A share is a JupyterHub `Share` (`access:servers!server=<owner>/<name>`): JupyterHub decides
every request to the server from it and lists it in its sharing API. This module adds the
facility's rule, in the one place users can share from (`/hub/api/daas/shares/<owner>/<server>`;
users get none of JupyterHub's `shares` scopes, so its own sharing API and share codes stay
closed to them):

- only a running server that works for a proposal, whose profile allows sharing, is shared;
- only with that proposal's JupyterHub group (the team), or with one member of it;
- a person's shares of the proposal's servers end when they leave its group, and every share
  ends with the server (`follow_group_changes`: groups are refreshed at login and token refresh).

Sharing with the team grants the group a share and each member one of their own, and a member
who joins later gets theirs as they join: JupyterHub (5.x to 6.1) honours a group's share for the
person's browser session on the hub but not for the OAuth token the server checks, so a group
share alone would not let the team in.

A guest uses the server as its owner (the owner's files and data rights): that is why the circle
is the proposal's team and nobody else.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub import orm
from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import needs_scope
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import event
from sqlalchemy.orm import Session as DBSession
from sqlalchemy.orm.attributes import get_history
from tornado import web

from .session import STATE_KEY, Session

PATH = r"/api/daas/shares/([^/]+)/([^/]*)"
# JupyterHub user and group names as this suite makes them: no spaces, quotes, slashes or control characters.
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,254}$"


class ShareTarget(BaseModel):
    """Whom to share with or revoke: exactly one of a group (the proposal's) or a user (a member of it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = Field(None, pattern=NAME)
    group: str | None = Field(None, pattern=NAME)

    @model_validator(mode="after")
    def _one(self) -> ShareTarget:
        if (self.user is None) == (self.group is None):
            raise ValueError("give exactly one of 'user' or 'group'")
        return self


def parse_target(body: bytes) -> ShareTarget:
    """The request body as a ShareTarget, or HTTP 400 saying what is wrong."""
    try:
        return ShareTarget.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError:
        raise web.HTTPError(400, 'the body must be JSON: {"group": ...} or {"user": ...}') from None
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}" for error in err.errors()
        )
        raise web.HTTPError(400, f"Invalid share: {problems}") from None


def share_group(orm_spawner: orm.Spawner) -> str | None:
    """The group a server may be shared with, from its stored session (None: it may not be shared)."""
    saved = ((orm_spawner.state or {}).get(STATE_KEY) or {}).get("session")
    try:
        return Session.model_validate(saved).share_group if saved else None
    except ValidationError:
        return None


def members(db: DBSession, group: str | None, owner: str) -> list[str]:
    """Whom the owner may share with one by one: the group's members but the owner."""
    found = orm.Group.find(db, group) if group else None
    return sorted(user.name for user in (found.users if found else []) if user.name != owner)


def shares_model(orm_spawner: orm.Spawner, group: str | None, member_names: list[str]) -> dict[str, Any]:
    """A server's shares as the API answers them and the home page shows them."""
    return {
        "server": f"{orm_spawner.user.name}/{orm_spawner.name}",
        "group": group,
        "members": member_names,
        "shares": [  # the team first, then its members by name
            {"group": share.group.name} for share in orm_spawner.shares if share.group is not None
        ]
        + sorted(
            ({"user": share.user.name} for share in orm_spawner.shares if share.user is not None),
            key=lambda share: share["user"],
        ),
    }


class SharesAPIHandler(APIHandler):
    """GET, POST and DELETE /hub/api/daas/shares/<owner>/<server>: who may use the server besides its owner.

    Allowed for whoever may start and stop the server (`servers` on it: its owner, admins).
    """

    def _server(self, user_name: str, server_name: str) -> tuple[Any, str | None]:
        """The live spawner and the group it may be shared with; 404 for a server that does not exist."""
        user = self.find_user(user_name)
        if user is None or server_name not in user.orm_user.orm_spawners:
            raise web.HTTPError(404, f"no server {user_name}/{server_name}")
        spawner = user.spawners[server_name]  # made from its row if this hub has not used it yet
        return spawner, share_group(spawner.orm_spawner)

    @needs_scope("servers")
    async def get(self, user_name: str, server_name: str) -> None:
        spawner, group = self._server(user_name, server_name)
        self.write(shares_model(spawner.orm_spawner, group, members(self.db, group, user_name)))

    @needs_scope("servers")
    async def post(self, user_name: str, server_name: str) -> None:
        target = parse_target(self.request.body)
        spawner, group = self._server(user_name, server_name)
        if not spawner.ready:
            raise web.HTTPError(409, "only a running server can be shared (a share ends when the server stops)")
        if group is None:
            raise web.HTTPError(
                403,
                "this server cannot be shared: it works for no proposal, or its profile does not allow sharing",
            )
        share_with = self._allowed_target(target, group, user_name)
        orm.Share.grant(self.db, spawner.orm_spawner, share_with)
        if isinstance(share_with, orm.Group):
            for member in share_with.users:
                if member.id != spawner.orm_spawner.user.id:
                    orm.Share.grant(self.db, spawner.orm_spawner, member)
        self.log.info("%s shared %s/%s with %s", self.current_user.name, user_name, server_name, target)
        self.write(shares_model(spawner.orm_spawner, group, members(self.db, group, user_name)))

    def _allowed_target(self, target: ShareTarget, group: str, owner: str) -> orm.User | orm.Group:
        """The user or group the rule lets this server be shared with; 400 with why for anyone else."""
        if target.group is not None:
            if target.group != group:
                raise web.HTTPError(400, f"this server works for the proposal of group {group}: share with that group")
            found = orm.Group.find(self.db, group)
            if found is None:
                raise web.HTTPError(400, f"group {group} has no members yet")
            return found
        user = orm.User.find(self.db, target.user)
        if user is None or user.name == owner or group not in {g.name for g in user.groups}:
            raise web.HTTPError(400, f"{target.user} is not a member of this server's proposal (group {group})")
        return user

    @needs_scope("servers")
    async def delete(self, user_name: str, server_name: str) -> None:
        target = parse_target(self.request.body)
        spawner, group = self._server(user_name, server_name)
        dropped = [
            share
            for share in spawner.orm_spawner.shares
            if (share.group is not None and share.group.name == target.group)
            or (share.user is not None and share.user.name == target.user)
        ]
        if not dropped:
            raise web.HTTPError(404, f"{user_name}/{server_name} is not shared with {target.group or target.user}")
        if target.group is not None:  # the team's share: its members' own go with it
            team = {user.id for user in dropped[0].group.users}
            dropped += [
                share for share in spawner.orm_spawner.shares if share.user is not None and share.user.id in team
            ]
        for share in dropped:
            self.db.delete(share)
        self.db.commit()
        self.log.info("%s revoked the share of %s/%s with %s", self.current_user.name, user_name, server_name, target)
        self.write(shares_model(spawner.orm_spawner, group, members(self.db, group, user_name)))


def end_shares(db: DBSession, orm_spawner: orm.Spawner) -> None:
    """Drop every share of a server that stops: the next server under that name may work for another proposal."""
    if orm_spawner.shares or orm_spawner.share_codes:
        for share in [*orm_spawner.shares, *orm_spawner.share_codes]:
            db.delete(share)
        db.commit()


def _membership_changes(session: DBSession) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """(user, group) pairs whose membership this flush begins and ends, seen from either side of the relation."""
    joined, left = [], []
    for obj in session.dirty | session.new:
        if isinstance(obj, orm.User):
            history = get_history(obj, "groups")
            joined += [(obj, group) for group in history.added]
            left += [(obj, group) for group in history.deleted]
        elif isinstance(obj, orm.Group):
            history = get_history(obj, "users")
            joined += [(user, obj) for user in history.added]
            left += [(user, obj) for user in history.deleted]
    return joined, left


def _follow_memberships(session: DBSession, flush_context: Any, instances: Any) -> None:
    joined, left = _membership_changes(session)
    for user, group in left:
        for share in list(user.shared_with_me):
            if share.spawner is not None and share_group(share.spawner) == group.name:
                session.delete(share)
    for user, group in joined:
        for team_share in group.shared_with_me:
            server = team_share.spawner
            if server is None or server.user is user or share_group(server) != group.name:
                continue
            if not any(share.user is user for share in server.shares):  # (orm.Share.grant commits: not here)
                session.add(
                    orm.Share(
                        created_at=orm.Share.now(),
                        owner=server.user,
                        spawner=server,
                        user=user,
                        scopes=team_share.scopes,
                    )
                )


def follow_group_changes() -> None:
    """Keep the team's members' shares in step with the proposal's group (once per process)."""
    if not event.contains(DBSession, "before_flush", _follow_memberships):
        event.listen(DBSession, "before_flush", _follow_memberships)
