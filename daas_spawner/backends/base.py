"""The Backend contract: what the spawner asks of Slurm, local processes, Kubernetes, OpenStack.

One instance per backend kind per hub (a traitlets singleton), so a backend can keep one
shared view of its scheduler for every server. The spawner keeps no backend-specific
code: it hands over a `Launch` and keeps the JSON-able state the backend returns.
"""

from __future__ import annotations

import pwd
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from traitlets import Instance, Integer, Unicode, default
from traitlets.config import SingletonConfigurable

from daas_core.accounts import AccountPolicy, AccountRefused, UserAccounts
from daas_core.mounts import Mount

from ..options import BackendRequest, ResolvedOptions
from ..profiles import Profile

BackendState = dict


class SpawnFailed(Exception):
    """The server cannot start; the message is written for the scientist who asked."""


class NotRunningYet(Exception):
    """A report came before the scheduler shows the server's job running: try again (HTTP 409)."""


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int


BOOTSTRAP_ENV = "DAAS_BOOTSTRAP"  # where a launcher finds its one-time bootstrap secret


@dataclass(frozen=True)
class Launch:
    """Everything a backend needs to start one single-user server."""

    username: str
    server: str  # the hub's name for the server, e.g. "alice" or "alice/experiment-1"
    options: ResolvedOptions
    env: dict[str, str]  # no secrets: may be stored where operators read it (batch scripts, user_data)
    command: list[str]  # the single-user command and its arguments (no ip/port)
    mounts: tuple[Mount, ...] = ()  # the proposals' data locations (also in env as DAAS_DATA)
    # The server's tokens. A backend whose start description is kept (a batch script, user_data)
    # passes only `bootstrap`, as $DAAS_BOOTSTRAP: the launcher exchanges it once for secret_env
    # (see bootstrap.py). A backend that hands the environment straight to a process may pass secret_env.
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    bootstrap: str = field(default="", repr=False)

    @property
    def request(self) -> BackendRequest:
        """What this backend was asked for (its profile's `resolve_request`): the backend's only resource input."""
        return self.options.request


@dataclass(frozen=True)
class ProgressEvent:
    progress: int
    message: str

    def as_dict(self) -> dict[str, int | str]:
        return {"progress": self.progress, "message": self.message}


class Backend(SingletonConfigurable):
    """Start, watch and stop single-user servers of one kind.

    A backend is registered under its `name` in the `daas_spawner.backends` entry-point group
    (backends/registry.py); its profiles say `backend: <name>` and validate as `profile_class`.
    """

    name: ClassVar[str] = ""
    profile_class: ClassVar[type[Profile]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # One singleton per backend kind. traitlets keeps `instance()` in `_instance`, which a class would
        # otherwise inherit from Backend: the first kind started would then refuse every other kind.
        cls._instance = None

    user_accounts = Instance(
        UserAccounts,
        help="The site's account rules (`c.UserAccounts`, shared with the services): the defaults below.",
    )
    min_uid = Integer(
        config=True,
        help="""Lowest uid of an account servers may run as. Default: `c.UserAccounts.min_uid`, which
        the services read too; set it there. `c.Backend.min_uid` overrides it for the backends alone.""",
    )
    max_uid = Integer(
        config=True,
        help="""Highest uid of an account servers may run as. Default: `c.UserAccounts.max_uid`, which
        the services read too; set it there. `c.Backend.max_uid` overrides it for the backends alone.""",
    )
    account_group = Unicode(
        config=True,
        help="""A Unix group whose members alone may have servers. Default: `c.UserAccounts.account_group`,
        which the services read too; set it there. `c.Backend.account_group` overrides it for the backends.""",
    )

    @default("user_accounts")
    def _user_accounts_default(self) -> UserAccounts:
        return UserAccounts(parent=self)

    @default("min_uid")
    def _min_uid_default(self) -> int:
        return self.user_accounts.min_uid

    @default("max_uid")
    def _max_uid_default(self) -> int:
        return self.user_accounts.max_uid

    @default("account_group")
    def _account_group_default(self) -> str:
        return self.user_accounts.account_group

    def account(self, username: str) -> pwd.struct_passwd:
        """The Unix account a server of `username` runs as; SpawnFailed for anyone else (root, daemons)."""
        try:
            return AccountPolicy(self.min_uid, self.max_uid, self.account_group).check(username)
        except AccountRefused as err:
            raise SpawnFailed(f"No server for this account: {err}.") from None

    async def start(self, launch: Launch) -> BackendState:
        """Submit the server; return state as soon as it identifies the server (job id, pid)."""
        raise NotImplementedError

    async def wait_for_address(self, state: BackendState, reported: Awaitable[ServerAddress]) -> ServerAddress:
        """Wait until the server is up, or raise SpawnFailed when it ends first.

        `reported` resolves when the server reports its address (see address.py), for
        backends whose servers pick their own port.
        """
        raise NotImplementedError

    async def check_report(self, state: BackendState, address: ServerAddress) -> ServerAddress:
        """Accept a server's self-reported address; return where to route.

        Raise ValueError for a report that is wrong (400), NotRunningYet for one that is early (409).
        """
        raise ValueError("this backend does not take address reports")

    async def poll(self, state: BackendState) -> int | None:
        """None while the server may be running; an exit status once it definitely ended."""
        raise NotImplementedError

    async def stop(self, state: BackendState) -> None:
        """Stop the server and return once it is gone (bounded)."""
        raise NotImplementedError

    async def availability(self, profiles: Sequence[Profile]) -> dict[str, Any] | None:
        """What is free now for these profiles (this backend's, that one user may use), JSON-able; None: nothing.

        The form shows it through the profile class's `availability_template`, and
        `GET /hub/api/daas/availability` answers it under the backend's name. Many users view
        it at once: answer from a cache shared by the whole hub, never wait on the scheduler
        for long, and never raise (say what is wrong in the answer instead).
        """
        return None

    def progress(self, state: BackendState) -> AsyncIterator[ProgressEvent]:
        """Events while the server starts; the default has nothing to tell."""
        return _no_events()

    def watch(self, state: BackendState, on_end: Callable[[str], None]) -> Callable[[], None]:
        """Call on_end(why, in the user's words) when the server ends on its own; return an unsubscribe."""
        return lambda: None


async def _no_events() -> AsyncIterator[ProgressEvent]:
    return
    yield  # pragma: no cover - makes this an async generator
