"""The Backend contract: what the spawner asks of Slurm, local processes, Kubernetes, OpenStack.

One instance per backend class per hub (the spawner keeps them), so a backend can keep one
shared view of its scheduler for every server. The spawner keeps no backend-specific
code: it hands over a `Launch`, stores each checkpoint the start yields, and hands the
stored state back to every later call, in this process or in the next hub after a restart.

The rules every backend keeps (the contract tests in tests/unit/test_backend_contract.py and
tests/integration/test_backend_contract.py check them):

- **State is the only memory that counts.** Everything poll, stop, watch and a resumed start
  need is in the state the backend yielded; what a backend keeps in memory (its shared
  scheduler view, its child processes) only makes answers faster.
- **Checkpoints before consequences.** `start` yields a checkpoint before it makes anything
  that outlives the hub (enough to find it: a job comment, a volume name) and after each
  thing it made (the job id, the port): the hub that dies at any moment leaves a state
  from which the next hub re-attaches or cleans up, never an orphan.
- **No secret at rest.** `Launch.env` may go where operators read it (batch scripts,
  user_data, the hub database); `Launch.secret_env` may go only straight into a process
  environment; a kept description carries `Launch.bootstrap` instead. State is stored in
  the hub database and shown to admins: it holds identifiers, never a token.
- **Errors mean one thing each.** `SpawnFailed`: the server cannot start or stop, with a
  message for the scientist; `NotRunningYet`: an address report came early (409, retried);
  `ValueError`: a report or stored state that is wrong (400; a stored state that no longer
  loads is treated as gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from traitlets import Instance, Integer, Unicode, default
from traitlets.config import SingletonConfigurable

from daas_core.accounts import AccountPolicy, AccountRefused, UserAccounts
from daas_core.identity import PosixIdentity
from daas_core.mounts import DataLocations, Mount

from ..options import BackendRequest, ResolvedOptions
from ..profiles import Profile


class SpawnFailed(Exception):
    """The server cannot start (or be stopped); the message is written for the scientist who asked."""


class NotRunningYet(Exception):
    """A report came before the scheduler shows the server's job running: try again (HTTP 409)."""


class BackendState(BaseModel):
    """What a backend keeps of one server in the hub database: typed, versioned, JSON.

    Each backend subclasses this with its fields and sets `version`; a release that changes
    the fields raises `version` and teaches `migrate` the older layouts, so a hub upgraded
    while servers run (or queue) still finds them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: ClassVar[int] = 1

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Bring `data`, stored at `version`, to this version's layout.

        Parameters
        ----------
        data : dict
            The stored fields.
        version : int
            The version they were stored at (1 for state from before versions were stored).

        Returns
        -------
        dict
            Fields valid for this class.

        Raises
        ------
        ValueError
            A version this release does not know (e.g. written by a newer release).
        """
        if version != cls.version:
            raise ValueError(f"{cls.__name__} version {version} is not known to this release (it has {cls.version})")
        return data

    @classmethod
    def load(cls, data: Any, version: int) -> BackendState:
        """The state stored at `version`, migrated and validated; ValueError if it is not one."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: stored state is not an object")
        try:
            return cls.model_validate(cls.migrate(dict(data), version))
        except ValidationError as err:
            raise ValueError(f"{cls.__name__}: {err}") from None

    def dump(self) -> dict[str, Any]:
        """The JSON-able fields to store (with the class's `version` beside them)."""
        return self.model_dump(mode="json")

    @property
    def secrets_given(self) -> bool:
        """Whether the server holds `Launch.secret_env` already, handed to it directly (a process environment).

        The hub keeps only hashes of tokens: a start resumed after a restart cannot hand out
        the old ones again. Where this is False and the server has not redeemed its bootstrap
        secret either, the resumed start's Launch carries a new API token (the old one is
        revoked), behind the old bootstrap secrets too. A backend that then finds a server
        made with the old secrets after its last checkpoint replaces it.
        """
        return False


S = TypeVar("S", bound=BackendState)


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
    data_locations: DataLocations | None = None  # the site's data model: where pods and VMs mount `mounts`
    identity: PosixIdentity | None = None  # numeric ids from the login (auth_state), for pods and VMs
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


class Backend(SingletonConfigurable, Generic[S]):
    """Start, watch and stop single-user servers of one kind.

    Attributes
    ----------
    name : str
        The backend's name, as profiles and the stored state spell it: its name in the
        `daas_spawner.backends` entry-point group (backends/registry.py).
    profile_class : type[Profile]
        Its profiles' model: they say `backend: <name>` and validate as this class, which
        resolves a user's options into the backend's typed request (`Launch.request`).
    state_class : type[BackendState]
        The backend's state model; `load_state` builds it from what the hub stored.
    ends_with_server : bool
        Whether what the backend made ends when the server process exits (a job, a pod, a
        process). False (a VM that boots on): the hub ends an idle server itself.
    """

    name: ClassVar[str] = ""
    profile_class: ClassVar[type[Profile]]
    state_class: ClassVar[type[BackendState]] = BackendState
    ends_with_server: ClassVar[bool] = True

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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup: asyncio.Future[None] | None = None
        self._lifetime: asyncio.Future[None] | None = None
        # Every state of this kind the hub's database holds, set by the spawner: what a backend's
        # reconciliation keeps (anything it made that none of them owns is an orphan). None: unknown.
        self.hub_states: Callable[[], list[S]] | None = None

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

    # -- life of the backend ----------------------------------------------------------

    async def setup(self) -> None:
        """Open what all servers of this kind share: scheduler watchers, API clients, caches.

        Called once per backend instance, before its first start, poll, stop or report
        (`ready`), on the hub's event loop. The default opens nothing.
        """

    async def close(self) -> None:
        """Close what `setup` opened; called once when the hub stops, never while a call is served.

        Must be bounded and must not stop servers: a hub stops and starts again while
        servers run. The default closes nothing.
        """

    async def ready(self) -> None:
        """Run `setup` once (concurrent callers share it); `close` is then tied to the hub's shutdown.

        JupyterHub has no shutdown hook for spawner-side objects. What it does at shutdown,
        on 5.x and 6.x alike (`JupyterHub.shutdown_cancel_tasks`), is cancel every task
        of its event loop and wait for them before it stops the loop. So `ready` leaves
        one task that sleeps until cancelled and then awaits `close`: the backend closes
        while the loop still runs, after the hub's own cleanup.
        """
        if self._setup is None:
            self._setup = asyncio.ensure_future(self._open())
        await asyncio.shield(self._setup)

    async def _open(self) -> None:
        try:
            await self.setup()
        except BaseException:
            self._setup = None  # the next caller tries again
            raise
        self._lifetime = asyncio.ensure_future(self._close_at_shutdown())

    async def _close_at_shutdown(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            try:
                await self.close()
            except Exception:
                self.log.exception("Closing the %s backend failed", self.name)

    async def shutdown(self) -> None:
        """Close now (tests, and hubs that embed the spawner): what the hub's shutdown does."""
        if self._lifetime is not None:
            self._lifetime.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lifetime
        self._setup = self._lifetime = None

    def load_state(self, data: Any, version: int) -> S:
        """The typed state from what the hub stored (`BackendState.load`); ValueError if it is not one."""
        return self.state_class.load(data, version)  # type: ignore[return-value]

    # -- one server -------------------------------------------------------------------------

    def start(self, launch: Launch, resume: S | None = None) -> AsyncIterator[S]:
        """Start one server, yielding a checkpoint whenever the hub must remember more.

        The spawner stores each checkpoint in the hub database (and commits) before it
        asks for the next, so the generator may rely on a yielded checkpoint being stored
        when it resumes. The last checkpoint identifies the server completely; the
        others identify what exists so far. No checkpoint may hold a secret.

        Parameters
        ----------
        launch : Launch
            What to start. A resumed start gets a Launch built again from the stored
            options, with the same bootstrap secret's environment.
        resume : BackendState, optional
            The last checkpoint of a start that a hub restart cut off. The start continues
            from it: it re-attaches to what exists (a pending job), makes only what is
            missing, and never makes a second server for the same start.

        Yields
        ------
        BackendState
            Checkpoints, at least one. Yield before making anything that outlives the hub
            (what lets the next hub find it), and after each thing made.

        Raises
        ------
        SpawnFailed
            The server cannot start. What was made is cleaned up, in the background at
            the latest; the spawner also calls `stop` with the last checkpoint.
        """
        raise NotImplementedError

    async def wait_for_address(
        self, state: S, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        """Wait until the server is up, or will be; return where to route.

        JupyterHub then waits (`Spawner.http_timeout`) until the server answers there. The
        start ends when this returns, and with it the bootstrap secret: a server that has not
        redeemed it by then never gets its tokens.

        Parameters
        ----------
        state : BackendState
            The last checkpoint of the start (also of a resumed one).
        reported : Awaitable[ServerAddress]
            Resolves when the server reports its address (see address.py), for backends
            whose servers pick their own port; others may ignore it.
        redeemed : asyncio.Event
            Set once the server's launcher has redeemed its bootstrap secret (also before a
            hub restart): it holds its tokens and starts the server. A backend that knows the
            address before the server listens (a pod's IP, a VM's) returns once this is set
            and leaves the wait for the server to JupyterHub, as KubeSpawner does, rather than
            watch for it listening through the scheduler (slower, and a round trip per server).

        Raises
        ------
        SpawnFailed
            The server ended, or can never come up; the message says why and where to look.
        """
        raise NotImplementedError

    async def check_report(self, state: S, address: ServerAddress) -> ServerAddress:
        """Accept a server's self-reported address; return where to route.

        Raises
        ------
        ValueError
            The report is wrong (HTTP 400): e.g. a host that is not the job's node.
        NotRunningYet
            The report is early (HTTP 409): the scheduler does not show the server running yet.
        """
        raise ValueError("this backend does not take address reports")

    async def poll(self, state: S) -> int | None:
        """Whether the server may still run.

        Works from any checkpoint (also one of a start that never finished) and from stored
        state alone, in a hub that just restarted and has no memory of the server. Cheap:
        JupyterHub polls every server every `Spawner.poll_interval`; a backend answers from
        a shared view, not with a scheduler query per server.

        Returns
        -------
        int or None
            None while the server runs, queues or is still being made; an exit status
            once it definitely ended. A scheduler that does not answer is not an end.
        """
        raise NotImplementedError

    async def stop(self, state: S) -> None:
        """Stop the server and return once it and everything the start made are gone.

        Works from any checkpoint, also one of a start that never finished, in any hub.
        Idempotent: stopping what already ended, or stopping twice, returns quietly.
        Bounded: returns within the backend's stop timeout.

        Raises
        ------
        SpawnFailed
            The server is still there after the timeout; the message names what remains.
        """
        raise NotImplementedError

    async def availability(self, profiles: Sequence[Profile]) -> dict[str, Any] | None:
        """What is free now for these profiles (this backend's, that one user may use), JSON-able; None: nothing.

        The form shows it through the profile class's `availability_template`, and
        `GET /hub/api/daas/availability` answers it under the backend's name. Many users view
        it at once: answer from a cache shared by the whole hub, never wait on the scheduler
        for long, and never raise (say what is wrong in the answer instead).
        """
        return None

    def progress(self, state: S) -> AsyncIterator[ProgressEvent]:
        """Events while the server starts (queue reason, node); the default has nothing to tell."""
        return _no_events()

    def watch(self, state: S, on_end: Callable[[str], None]) -> Callable[[], None]:
        """Call on_end(why, in the user's words) when the server ends on its own; return an unsubscribe."""
        return lambda: None


async def _no_events() -> AsyncIterator[ProgressEvent]:
    return
    yield  # pragma: no cover - makes this an async generator
