"""One-time bootstrap secrets: what a stored job description carries instead of the server's tokens.

A Slurm batch script is kept by slurmctld (and by slurmdbd with `AccountingStoreFlags=job_script`)
and shown to operators by `scontrol write batch_script` and `sacct -B`; an OpenStack VM's
user_data is readable from its metadata service for the VM's life. So none of them may hold the
server's API token. They hold a bootstrap secret instead, which the server's launcher exchanges,
once, at `POST /hub/api/daas/server-secrets` for the secret environment (the API token, and the
OIDC access token where the site passes it):
- the secret is random (256 bits) and the hub keeps only its SHA-256;
- it works once, and only while that server's start waits for it: after the exchange, or after the
  start ends (up, failed, stopped, timed out) it is worthless (403);
- a hub restart forgets it; a start the restart cut off before the exchange (a job still queued)
  is resumed with a new environment (a new API token) behind the same secret, found by the
  SHA-256 digest the spawner stored (`reissue`): the stored digest cannot be exchanged;
- the answer is the secret environment and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping

from jupyterhub.apihandlers import APIHandler
from tornado import web

PATH = r"/api/daas/server-secrets"
SECRET_ENV = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "DAAS_ACCESS_TOKEN"})
MAX_BODY = 1024


def split_secret_env(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(what a job description may hold, what only the bootstrap exchange hands out)."""
    public = {name: value for name, value in env.items() if name not in SECRET_ENV}
    return public, {name: value for name, value in env.items() if name in SECRET_ENV}


def digest(secret: str) -> str:
    """What the hub may keep of a bootstrap secret (in memory, and in a spawner's stored state)."""
    return hashlib.sha256(secret.encode()).hexdigest()


Redeemed = Callable[[], Awaitable[None]]


class PendingSecrets:
    """The secret environments of starting servers, each behind its one-time bootstrap secret."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[dict[str, str], Redeemed | None]] = {}

    def issue(self, secret_env: Mapping[str, str], on_redeem: Redeemed | None = None) -> str:
        """A new bootstrap secret for this environment; pass it to `withdraw` when the start ends.

        `on_redeem` is awaited before the server gets its secrets (the spawner stores that fact).
        """
        secret = secrets.token_urlsafe(32)
        self.reissue(digest(secret), secret_env, on_redeem)
        return secret

    def reissue(self, secret_digest: str, secret_env: Mapping[str, str], on_redeem: Redeemed | None = None) -> None:
        """Put an environment behind a secret known only by its digest (a start resumed after a restart)."""
        self._pending[secret_digest] = (dict(secret_env), on_redeem)

    async def redeem(self, secret: str) -> dict[str, str] | None:
        """The environment, once; None for a secret that is unknown, used or withdrawn."""
        entry = self._pending.pop(digest(secret), None)
        if entry is None:
            return None
        env, on_redeem = entry
        if on_redeem is not None:
            await on_redeem()
        return env

    def withdraw(self, secret_digest: str) -> None:
        """Make the secret with this digest worthless (the start ended)."""
        self._pending.pop(secret_digest, None)

    def __len__(self) -> int:
        return len(self._pending)


pending = PendingSecrets()


class ServerSecretsAPIHandler(APIHandler):
    """POST /hub/api/daas/server-secrets with {"secret": "<bootstrap secret>"}: the secret environment, once."""

    def check_xsrf_cookie(self) -> None:
        """The body's secret is the credential: no cookie is used, so there is no cross-site request to stop."""

    async def post(self) -> None:
        body = self.request.body or b""
        try:
            data = json.loads(body) if len(body) <= MAX_BODY else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or set(data) != {"secret"} or not isinstance(data["secret"], str):
            raise web.HTTPError(400, 'body must be exactly {"secret": <string>}')
        env = await pending.redeem(data["secret"])
        if env is None:
            raise web.HTTPError(403, "this bootstrap secret is unknown, used or expired")
        self.set_header("Cache-Control", "no-store")
        self.finish({"env": env})
