"""The hub endpoint that tells a service a person's proposals, and nothing else of their auth_state.

auth_state also holds the person's OIDC access, ID and refresh tokens. A service that could
read whole auth_states (`admin:auth_state`) would hold every user's tokens, so the services get
this endpoint instead: `GET /hub/api/daas/users/<name>/proposals` answers the proposals only,
to holders of the custom scope `custom:daas-proposals:read` (a role may narrow it, e.g. with
`!user=alice` or `!group=staff`, as JupyterHub's own scopes).
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers import APIHandler
from tornado import web

from daas_core.proposals import proposals_from_auth_state

PROPOSALS_SCOPE = "custom:daas-proposals:read"
CUSTOM_SCOPES = {
    PROPOSALS_SCOPE: {
        "description": "Read users' experiment proposals (ids, titles, data folders), none of their tokens.",
    },
}
PATH = r"/api/daas/users/([^/]+)/proposals"


class ProposalsAPIHandler(APIHandler):
    """GET a user's proposals with a token holding the proposals scope on that user."""

    async def get(self, user_name: str) -> None:
        if not self.has_scope(f"{PROPOSALS_SCOPE}!user={user_name}"):
            raise web.HTTPError(403, f"this needs the scope {PROPOSALS_SCOPE} on user {user_name}")
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"no user {user_name}")
        proposals = proposals_from_auth_state(await user.get_auth_state())
        self.write(json.dumps({"name": user.name, "proposals": [p.model_dump(mode="json") for p in proposals]}))
