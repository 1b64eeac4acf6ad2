"""The hub endpoint where a starting server reports its host and port — and nothing else.

batchspawner's `/api/batchspawner` sets any spawner attribute a user posts with their
server token, including commands the hub runs later. This endpoint instead:
- takes exactly {"host": str, "port": int} and, where the job could not open some of its data,
  "unreachable_data": ["<proposal>/<location>", ...] naming only the server's own data locations
  (the hub writes the message the person reads); any other body is a 400 and changes nothing;
- identifies the server by its own API token: a user's other tokens, or another server's
  token, match no waiting server and get a 403;
- is open only while that server's start is waiting for its address (else 409);
- lets the backend decide where to route (Slurm routes to the job's node, never to an
  arbitrary host the job names).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from jupyterhub.apihandlers import APIHandler
from jupyterhub.user import User
from tornado import web

from .backends.base import ServerAddress

PATH = r"/api/daas/server-address"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _is_ip_address(text: str) -> bool:
    if "%" in text:  # a scoped IPv6 address names an interface of the sender, not a route
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


MAX_UNREACHABLE = 100
_DATA_LOCATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class ServerReport:
    """What a starting server may tell the hub: where it listens, and which of its data it cannot open."""

    address: ServerAddress
    unreachable_data: tuple[str, ...] = ()


def parse_report(body: Any) -> ServerReport:
    """Validate a report body; raise ValueError with the reason."""
    if not isinstance(body, dict) or not {"host", "port"} <= set(body) <= {"host", "port", "unreachable_data"}:
        raise ValueError('body must be exactly {"host": <string>, "port": <integer>[, "unreachable_data": <list>]}')
    host, port = body["host"], body["port"]
    if not isinstance(host, str) or not (_HOSTNAME.fullmatch(host) or _is_ip_address(host)):
        raise ValueError("host must be a host name or an IP address")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be an integer from 1 to 65535")
    unreachable = body.get("unreachable_data", [])
    if (
        not isinstance(unreachable, list)
        or len(unreachable) > MAX_UNREACHABLE
        or not all(isinstance(item, str) and _DATA_LOCATION.fullmatch(item) for item in unreachable)
    ):
        raise ValueError('unreachable_data must be a list of "<proposal>/<location>" names')
    return ServerReport(ServerAddress(host, port), tuple(dict.fromkeys(unreachable)))


class ServerAddressAPIHandler(APIHandler):
    """POST /hub/api/daas/server-address with a server's own token."""

    async def post(self) -> None:
        user = self.current_user
        token = self.get_auth_token()
        if not isinstance(user, User) or not token:
            raise web.HTTPError(403, "a server token is required")
        spawner = next(
            (
                s
                for s in user.spawners.values()
                if getattr(s, "accepts_address_reports", False) and s.is_server_token(token)
            ),
            None,
        )
        if spawner is None:
            raise web.HTTPError(403, "this token belongs to no starting server")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "body must be JSON") from None
        try:
            report = parse_report(body)
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None
        await spawner.accept_report(report)
        self.set_status(204)
        self.finish()
