"""Run a real OpenID Connect provider (tests/oidc/provider.mjs, on npm's `oidc-provider`) for integration tests.

    provider = OidcProvider(tmp_path / "oidc", accounts={"alice": {"password": "pw", "claims": {...}}},
                            clients=[{"client_id": "hub", "client_secret": "s", "redirect_uris": [callback]}]).start()
    ...                                     # point the authenticator at provider.authorize_url / token_url / ...
    response = http.get(f"{hub.url}/hub/oauth_login", follow_redirects=True)   # lands on the login form
    response = complete_login(http, response, "alice", "pw")                     # back at the hub, logged in
    provider.stop()

Clients are confidential (client_secret_post), every code exchange also returns a refresh token, refresh tokens are not
rotated, revoking one revokes its grant. The provider keeps a browser session: a second authorization with the same
cookie jar skips the login form (use a fresh httpx.Client per user, or `prompt=login`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx

from .process import LoggedProcess, free_port

SCRIPT = Path(__file__).resolve().parents[1] / "oidc" / "provider.mjs"
NODE_MODULES = Path(os.environ.get("DAAS_PREFIX", "/opt/jupyterhub-daas")) / "node/node_modules"
LOGIN_FORM = re.compile(r'<form method="post" action="(/interaction/[\w-]+/login)"')
DENY_FORM = re.compile(r'<form method="post" action="(/interaction/[\w-]+/abort)"')


class OidcProvider:
    """An oidc-provider process with static clients and password accounts, all in memory. It listens on `host`:
    127.0.0.1, or an address others reach too (the test cluster's pods reach the host at 10.88.0.1)."""

    def __init__(
        self,
        workdir: Path,
        accounts: dict[str, dict[str, Any]],
        clients: list[dict[str, Any]],
        access_token_ttl: int = 300,
        refresh_token_ttl: int = 3600,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.host = host
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.accounts = accounts
        self.clients = clients
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.config_path = workdir / "oidc-provider.json"
        self.log_path = workdir / "oidc-provider.log"
        self.process = LoggedProcess("the OIDC provider", self.log_path)
        self.http = httpx.Client(timeout=30)
        self._discovery: dict[str, Any] | None = None

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- process -------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> OidcProvider:
        if not (NODE_MODULES / "oidc-provider/package.json").exists():
            raise RuntimeError(f"oidc-provider not found in {NODE_MODULES}; run tests/setup.sh")
        config = {
            "port": self.port,
            "host": self.host,
            "issuer": self.issuer,
            "clients": self.clients,
            "accounts": self.accounts,
            "access_token_ttl": self.access_token_ttl,
            "refresh_token_ttl": self.refresh_token_ttl,
        }
        self.config_path.write_text(json.dumps(config, indent=2))
        node = shutil.which("node") or "/usr/bin/node"
        env = dict(os.environ, DAAS_NODE_MODULES=str(NODE_MODULES))
        self.process.start([node, str(SCRIPT), str(self.config_path)], env=env, cwd=self.workdir)

        def up() -> bool:
            try:
                return self.http.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.process.wait_answering(up, timeout, interval=0.1)
        return self

    def stop(self) -> None:
        self.process.stop(10)

    def log_tail(self, lines: int = 60) -> str:
        return self.process.log_tail(lines)

    # -- protocol ------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            response = self.http.get(f"{self.issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            self._discovery = response.json()
        return self._discovery

    @property
    def authorize_url(self) -> str:
        return self.discovery()["authorization_endpoint"]

    @property
    def token_url(self) -> str:
        return self.discovery()["token_endpoint"]

    @property
    def userinfo_url(self) -> str:
        return self.discovery()["userinfo_endpoint"]

    def revoke(
        self, token: str, client_id: str, client_secret: str, token_type_hint: str = "refresh_token"
    ) -> httpx.Response:
        """Revoke a token (RFC 7009); revoking a refresh token also revokes the grant's access tokens."""
        response = self.http.post(
            self.discovery()["revocation_endpoint"],
            data={
                "token": token,
                "token_type_hint": token_type_hint,
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        response.raise_for_status()
        return response


# -- browser-like helpers for the provider's login page ------------------------------------


def follow(http: httpx.Client, response: httpx.Response, stop_at: str | None = None) -> httpx.Response:
    """Follow redirects (as GETs); return the redirect itself when its target starts with `stop_at`."""
    for _ in range(30):
        if not response.is_redirect:
            return response
        url = response.url.join(response.headers["location"])
        if stop_at is not None and str(url).startswith(stop_at):
            return response
        response = http.get(url, follow_redirects=False)
    raise AssertionError(f"too many redirects, last at {response.url}")


def _submit(
    http: httpx.Client,
    response: httpx.Response,
    form: re.Pattern[str],
    data: dict[str, str],
    stop_at: str | None,
) -> httpx.Response:
    page = follow(http, response)
    match = form.search(page.text)
    if match is None:
        raise AssertionError(f"no OIDC login page at {page.url} ({page.status_code}):\n{page.text[:2000]}")
    answer = http.post(page.url.join(match.group(1)), data=data, follow_redirects=False)
    return follow(http, answer, stop_at)


def complete_login(
    http: httpx.Client, response: httpx.Response, username: str, password: str, stop_at: str | None = None
) -> httpx.Response:
    """From a response that is (or redirects to) the provider's login page, sign in and follow the flow to its end.

    A wrong password returns the re-rendered form (200, "Invalid username or password"). With `stop_at` (e.g. the
    client's redirect URI) the redirect to that URL is returned instead of followed.
    """
    return _submit(http, response, LOGIN_FORM, {"username": username, "password": password}, stop_at)


def deny_login(http: httpx.Client, response: httpx.Response, stop_at: str | None = None) -> httpx.Response:
    """Press Deny on the provider's login page; the client gets `?error=access_denied`."""
    return _submit(http, response, DENY_FORM, {}, stop_at)
