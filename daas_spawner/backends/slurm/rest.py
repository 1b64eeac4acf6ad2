"""The REST transport: slurmrestd with a short-lived JWT per person, so the hub needs no sudo, munge or slurm.conf."""

from __future__ import annotations

import asyncio
import os
import pwd
from typing import Any

import httpx
from traitlets import Enum, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from daas_core.commands import CommandFailed

from ..base import SpawnFailed
from . import rest_api
from .availability import PartitionAvailability
from .commands import JobInfo, NodeInfo
from .tokens import CommandTokens, KeyTokens, UserTokens
from .transport import SlurmTransport, Submission


class SlurmRest(Configurable):
    """Where slurmrestd is and how the hub gets each person's token (`c.SlurmBackend.transport = "rest"`)."""

    url = Unicode(
        "http://127.0.0.1:6820",
        config=True,
        help="""slurmrestd's address. Tokens travel in its requests: use loopback, a Unix-socket proxy,
        or https through a TLS front end, never plain http across a network.""",
    )
    api_version = Enum(
        ["v0.0.38"],
        "v0.0.38",
        config=True,
        help="""The OpenAPI plugin slurmrestd serves (`slurmrestd -s openapi/<version>`). The job body and
        the answers' shapes change between versions; this release speaks v0.0.38 (Slurm 22.05).""",
    )
    user = Unicode(
        config=True,
        help="""Account the hub's shared reads run as (one GET /jobs per interval for all servers, nodes,
        partitions, ping). It must see every job of the hub's job name (PrivateData without `jobs`, or
        an operator account). Default: the Unix user the hub runs as. Submissions and cancels always
        run as the server's owner.""",
    )

    @default("user")
    def _user_default(self) -> str:
        return pwd.getpwuid(os.getuid()).pw_name

    token_source = Enum(
        ["key", "command"],
        "key",
        config=True,
        help="""How the hub gets a person's token. "key": it signs them itself (HS256) with the cluster's
        `jwt_hs256.key`, read from `jwt_key_file`. "command": it runs `token_command` (a privileged
        helper such as `scontrol token` as SlurmUser) and never holds the key. Either way the hub can
        act as anyone on the cluster: protect the key, or the helper's sudo rule, like the sudo rule
        of the command-line transport.""",
    )
    jwt_key_file = Unicode(
        "",
        config=True,
        help="""The cluster's JWT key (slurm.conf `AuthAltParameters=jwt_key=...`), readable by the hub
        alone (a mounted secret in Kubernetes). Read again when the file changes, so a rotated key
        takes effect without a restart. Used when token_source is "key".""",
    )
    token_command = List(
        Unicode(),
        ["sudo", "-n", "-u", "slurm", "--", "/usr/bin/scontrol", "token"],
        config=True,
        help="""Argv that prints `SLURM_JWT=<token>`; the hub appends `username=<user>` and
        `lifespan=<seconds>`. Run without a shell. Used when token_source is "command".""",
    )
    token_lifetime = Integer(
        600,
        min=2,
        config=True,
        help="""Seconds a token is valid. The hub renews a person's token when half of this has passed,
        and at once after Slurm refused a request made with it.""",
    )

    @validate("url")
    def _valid_url(self, proposal: Any) -> str:
        url = str(proposal.value).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise TraitError(f"SlurmRest.url {url!r}: an http:// or https:// address")
        return url

    def user_tokens(self, timeout: float) -> UserTokens:
        if self.token_source == "command":  # noqa: S105 (a setting's value, not a secret)
            return CommandTokens(self.token_command, self.token_lifetime, timeout)
        return KeyTokens(self.jwt_key_file, self.token_lifetime)


class RestTransport(SlurmTransport):
    """Every request over HTTP to slurmrestd, as its person: the owner for submit and cancel, `user` for reads."""

    def __init__(self, settings: SlurmRest, *, job_name: str, timeout: float, ping_timeout: float) -> None:
        self.settings = settings
        self.job_name = job_name
        self.timeout = timeout
        self.ping_timeout = ping_timeout
        self.peer = f"Slurm's REST API at {settings.url}"
        self.tokens = settings.user_tokens(timeout)
        self._client: httpx.AsyncClient | None = None
        self.requests = 0

    @property
    def client(self) -> httpx.AsyncClient:
        """The connection pool, opened again after `close` (a backend set up anew after a shutdown)."""
        if self._client is None or self._client.is_closed:
            base = f"{self.settings.url}/slurm/{self.settings.api_version}"
            self._client = httpx.AsyncClient(base_url=base, timeout=self.timeout)
        return self._client

    async def check(self) -> None:
        if isinstance(self.tokens, KeyTokens) and not self.settings.jwt_key_file:
            raise SpawnFailed("the Slurm REST transport needs c.SlurmRest.jwt_key_file (or token_source 'command')")
        problem = self.tokens.check()
        if problem:
            raise SpawnFailed(f"the hub cannot get Slurm tokens: {problem}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _call(
        self, method: str, path: str, username: str, body: Any = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """One request as `username`; its answer, or CommandFailed with Slurm's words (never the token)."""
        token = await self.tokens.token(username)
        headers = {"X-SLURM-USER-NAME": username, "X-SLURM-USER-TOKEN": token}
        limit = timeout or self.timeout
        self.requests += 1
        try:
            response = await self.client.request(method, path, json=body, headers=headers, timeout=limit)
        except httpx.TimeoutException:
            raise CommandFailed(
                self.peer, f"did not answer {method} {path} within {limit:g} s", timed_out=True
            ) from None
        except httpx.HTTPError as err:
            raise CommandFailed(self.peer, f"is not answering ({type(err).__name__}: {err})") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        problem = rest_api.errors(payload) if isinstance(payload, dict) else ""
        if problem or not isinstance(payload, dict) or response.is_error:
            self.tokens.forget(username)
            detail = problem or f"HTTP {response.status_code} {response.text.strip()[:200]}"
            raise CommandFailed(self.peer, f"refused {method} {path} as {username}: {detail}")
        return payload

    async def ping(self) -> bool:
        payload = await self._call("GET", "/ping", self.settings.user, timeout=self.ping_timeout)
        return any(isinstance(item, dict) and item.get("ping") == "UP" for item in payload.get("pings") or [])

    async def jobs(self) -> dict[str, JobInfo]:
        return rest_api.parse_jobs(await self._call("GET", "/jobs", self.settings.user), self.job_name)

    async def jobs_with_comment(self, comment: str) -> list[str]:
        payload = await self._call("GET", "/jobs", self.settings.user)
        return rest_api.jobs_with_comment(payload, self.job_name, comment)

    async def submit(self, submission: Submission) -> str:
        try:
            body = rest_api.job_request(submission)
        except rest_api.RestRefused as err:
            raise CommandFailed("the REST transport", str(err)) from None
        payload = await self._call("POST", "/job/submit", submission.spec.username, body)
        try:
            return rest_api.submitted_job_id(payload)
        except rest_api.RestRefused as err:
            raise CommandFailed(self.peer, str(err)) from None

    async def cancel(self, username: str, job_id: str) -> None:
        await self._call("DELETE", f"/job/{int(job_id)}", username)

    async def nodes(self) -> dict[str, NodeInfo]:
        return rest_api.parse_nodes(await self._call("GET", "/nodes", self.settings.user))

    async def availability(self) -> dict[str, PartitionAvailability]:
        nodes, partitions = await asyncio.gather(
            self._call("GET", "/nodes", self.settings.user), self._call("GET", "/partitions", self.settings.user)
        )
        return rest_api.availability(nodes, partitions)
