"""DaaSSpawner: one profile spawner; options are validated once, then a backend does the work."""

from __future__ import annotations

import asyncio
import functools
import hmac
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

from jupyterhub import orm
from jupyterhub.spawner import Spawner
from jupyterhub.utils import hash_token
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import inspect
from tornado import web
from traitlets import Bool, Dict, Instance, Integer, List, Unicode, default
from traitlets.utils.importstring import import_item

from daas_core.identity import PosixIdentity
from daas_core.mounts import DataLocations, Mount, mounts_env, resolve_mounts
from daas_core.proposals import Proposal, proposals_from_auth_state
from daas_core.quantities import format_duration

from . import bootstrap, hub_handlers, metrics
from .address import ServerReport
from .backends import registry
from .backends.base import Backend, BackendState, Launch, NotRunningYet, ServerAddress, SpawnFailed
from .bootstrap import split_secret_env
from .form import form_to_options, render_form, template_environment
from .group_commit import group_commit
from .options import OptionsError, ResolvedOptions, UserAccess, resolve_options
from .profiles import Profile, ProfileSet, local_demo
from .session import (
    STATE_KEY,
    Session,
    ended_idle,
    idle_message,
    idle_over,
    lifetime_over,
    open_session,
    session_args,
    session_env,
)
from .sharing import end_shares, members, shares_model

LAST_END_KEY = "daas_last_end"  # kept in the stopped server's state: JupyterHub drops the spawner object


class StoredAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)


class StartRecord(BaseModel):
    """What the spawner keeps of a start beside the backend's state; no secret (the hub DB is no vault)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starting: bool = False  # began and did not end in this hub: the next hub resumes it
    bootstraps: tuple[str, ...] = ()  # SHA-256 digests of the bootstrap secrets the server may hold
    token_id: int | None = None  # the hub's id of the server's API token (the token itself is hashed there)
    secrets_delivered: bool = False  # the server redeemed its bootstrap secret: a resume must keep its token
    address: StoredAddress | None = None  # where the server listens, once it does


class StoredServer(BaseModel):
    """The spawner's part of the hub's spawner state: {backend, version, state} and the start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    version: int = Field(ge=1)  # of the backend's state model
    state: dict[str, Any]
    options: dict[str, Any] | None = None  # the resolved options' summary, for services and the form
    start: StartRecord = StartRecord()
    session: Session | None = None  # its ends and whom it may be shared with (releases before #19: none)

    @classmethod
    def load(cls, saved: Any) -> StoredServer:
        """Read what any release stored; ValueError for anything else."""
        if isinstance(saved, dict) and "server" in saved and "state" not in saved:
            # Releases up to 055a6f9 stored {backend, server, options} once the job was submitted.
            saved = {"backend": saved.get("backend"), "version": 1, "state": saved.get("server")} | (
                {"options": saved["options"]} if saved.get("options") is not None else {}
            )
        try:
            return cls.model_validate(saved)
        except ValidationError as err:
            raise ValueError(str(err)) from None


class DaaSSpawner(Spawner):
    """Spawn a single-user server from a site profile on Slurm or locally."""

    profiles = Instance(
        ProfileSet,
        config=True,
        help="""The site's profiles, usually `daas_spawner.load_profiles("/etc/jupyterhub/profiles.yaml")`.

        Loading in jupyterhub_config.py makes a bad file stop the hub at start with the file
        and field named. The default is one local JupyterLab profile (the demo).""",
    )
    backend_classes = Dict(
        value_trait=Unicode(),
        config=True,
        help="""Backend name (a profile's `backend`) -> importable Backend class, the backends this hub may start.

        Default: every backend registered in the `daas_spawner.backends` entry-point group (`slurm`,
        `local`, and any a site installed). Set it to restrict them (e.g. only "slurm"; a profile of
        another backend then fails to start, saying so) or to start a name's servers with a subclass of
        its registered class. Each class's `name` must be its key (checked when first used).""",
    )
    template_paths = List(
        Unicode(),
        config=True,
        help="""Directories searched before the built-in templates, so a site can override form.html or a
        backend's fragment (by its name in the backend's templates, e.g. `slurm/options.html`).""",
    )

    spawn_from_url = Bool(
        False,
        config=True,
        help="""What a spawn link such as /hub/spawn?profile=gpu&gpus=1 does once its values validate.

        False (the default): show the form filled in from the link, so the person checks what
        will be charged to their account and presses Start. True: start at once when the browser
        says the link was followed on the hub's own pages or typed in (`Sec-Fetch-Site` is
        `same-origin` or `none`); a link on another site, or from a browser that does not say,
        still shows the filled-in form, so no page elsewhere can start a job billed to its reader.""",
    )

    pass_access_token = Bool(
        False,
        config=True,
        help="""Give the server the user's OIDC access token as $DAAS_ACCESS_TOKEN (e.g. for a
        facility data API). Off by default: a token in a job's environment is readable by
        whoever can read that job's processes.""",
    )

    proposal_server_name = Unicode(
        "proposal-{id}",
        config=True,
        help="""Name of a named server that works for one proposal, `{id}` being the proposal id
        (lower-cased, as JupyterHub's server names are). Such a server takes only that proposal,
        and on JupyterHub >= 6 shows the proposal's title as its display name.""",
    )

    data_locations = Instance(
        DataLocations,
        allow_none=True,
        config=True,
        help="""The site's data locations per proposal, usually
        `daas_core.mounts.load_data_locations("/etc/jupyterhub/data.yaml")` (the data service
        reads the same file). Each server gets its proposals' locations as links in
        `<working dir>/data/<proposal>/<location>`, as `$DAAS_DATA`, and as Apptainer binds.
        A server named after a proposal gets only that proposal's data. None: no data links.""",
    )

    end_warning = Integer(
        15 * 60,
        config=True,
        help="""Seconds before a server's end (its profile's `max_lifetime` or its job's wall time) that
        JupyterLab warns the person, so they can save their work. The time left shows all along.""",
    )

    access_check_interval = Integer(
        10,
        config=True,
        help="""Seconds a server trusts the hub's answer on who may use it (jupyterhub-singleuser's
        `HubOAuth.cache_max_age`, 300 by default). A revoked share, or a guest who left the
        proposal, is refused after at most this long; each open session asks the hub again
        this often while it is used.""",
    )

    @default("profiles")
    def _default_profiles(self) -> ProfileSet:
        return local_demo()

    @classmethod
    def class_get_help(cls, inst: Any = None) -> str:
        """This class's settings, then the backends' (c.SlurmBackend, c.SlurmRest, ...).

        JupyterHub's `--help-all` lists the classes of its entry-point groups (spawners,
        authenticators, proxies); the backends are none of these, so they come with their spawner.
        """
        backends = [backend.class_get_help() for backend in registry.configurables()]
        return "\n\n".join([super().class_get_help(inst), *backends])

    @default("backend_classes")
    def _default_backend_classes(self) -> dict[str, str]:
        return registry.class_paths()

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        # Batch jobs may queue; the user sees why on the progress page meanwhile.
        return 600

    @default("http_timeout")
    def _default_http_timeout(self) -> int:
        return 120

    @default("options_form")
    def _default_options_form(self):
        return lambda spawner: spawner.render_options_form()

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Callable[[Any, Any], None]:
        """JupyterHub's hook (5.3+) leaves user_options to this spawner: `start` validates them with the one options
        model. Without it, JupyterHub warns at every spawn that the options were not handled."""
        return lambda spawner, user_options: None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend_state: BackendState | None = None
        self.backend_name: str | None = None
        self._start = StartRecord()
        self._started_here = False  # this hub runs the start (else a stored `starting` is resumed at the first poll)
        self._resuming: asyncio.Future[int | None] | None = None
        self.resolved_summary: dict[str, Any] | None = None
        self._reported: asyncio.Future[ServerAddress] | None = None
        self._report_seen = asyncio.Event()
        self._redeemed = asyncio.Event()  # the starting server redeemed its bootstrap secret
        self._data_locations: frozenset[str] = frozenset()  # "<proposal>/<location>" of the starting server
        self._data_notes: list[str] = []
        self._submitted = asyncio.Event()
        self._unwatch: Callable[[], None] | None = None
        self._notify_tasks: set[asyncio.Future[Any]] = set()
        self._auth_state: dict[str, Any] = {}
        self.proposals: list[Proposal] = []
        self.last_end: str | None = None  # why the last server ended on its own, for the next form
        self.session: Session | None = None
        self._session_ended = False  # the hub stopped the server at its session's end

    # -- options -------------------------------------------------------------------------

    def _proposal_server(self, proposal_id: str) -> str:
        """The name of the named server that works for this proposal."""
        return self.proposal_server_name.format(id=proposal_id).lower()

    async def user_access(self) -> UserAccess:
        """Groups, proposals (from the authenticator's auth_state), and the proposal this server is named after."""
        self._auth_state = await self.user.get_auth_state() or {}
        self.proposals = proposals_from_auth_state(self._auth_state)
        ids = tuple(proposal.id for proposal in self.proposals)
        return UserAccess(
            groups=frozenset(group.name for group in self.user.groups),
            proposals=ids,
            server_proposal=next((p for p in ids if self._proposal_server(p) == self.name), None),
        )

    async def allowed_profiles(self) -> list[Profile]:
        """The profiles this user may start, in form order (form, availability endpoint)."""
        access = await self.user_access()
        return self.profiles.allowed_for(access.groups, access.proposals)

    async def resolve(self, raw: Any) -> ResolvedOptions:
        """The single validation entry point for form and REST input; bad input is a 400."""
        access = await self.user_access()
        try:
            return resolve_options(raw, self.profiles, access)
        except OptionsError as err:
            metrics.refused(err.field)
            raise web.HTTPError(400, f"Invalid server options: {err}") from None

    async def render_options_form(self) -> str:
        self._require_hub_handlers()
        access = await self.user_access()
        profiles = self.profiles.allowed_for(access.groups, access.proposals)
        availability = await self.availability(profiles)
        env = template_environment(tuple(self.template_paths))
        return render_form(
            env,
            profiles,
            availability,
            self._link_values(),
            proposals=self.proposals,
            access=access,
            warning=self._auth_state.get("proposals_warning"),
            notice=self.last_end,
        )

    def _link_values(self) -> dict[str, str]:
        """Values of a spawn link (the form request's query), to pre-fill the form; never trusted."""
        request = getattr(self.handler, "request", None)
        if request is None or request.method != "GET":
            return {}
        query = {
            key.removeprefix("opt-"): [v.decode("utf8", "replace") for v in values]
            for key, values in request.query_arguments.items()
        }
        try:
            return form_to_options(query, self.profiles.profiles)
        except OptionsError:
            return {}

    def proposal_env(self, options: ResolvedOptions) -> dict[str, str]:
        """The server's view of its proposal: ids only, plus the access token where the site allows it."""
        env = {"DAAS_PROPOSALS": ",".join(proposal.id for proposal in self.proposals)}
        if options.proposal:
            env["DAAS_PROPOSAL"] = options.proposal
        if self.pass_access_token and self._auth_state.get("access_token"):
            env["DAAS_ACCESS_TOKEN"] = self._auth_state["access_token"]
        return env

    def data_mounts(self, options: ResolvedOptions) -> list[Mount]:
        """The data this server sees: its proposal's, on a proposal's server; else all the user's."""
        own = self.name == self._proposal_server(options.proposal) if options.proposal else False
        proposals = [p for p in self.proposals if p.id == options.proposal] if own else self.proposals
        return resolve_mounts(self.data_locations, proposals)

    def _summary(self, options: ResolvedOptions) -> dict[str, Any]:
        summary = options.summary()
        title = next((p.title for p in self.proposals if p.id == options.proposal and p.title), None)
        if title:
            summary["proposal_title"] = title
        return summary

    def _show_proposal_title(self, options: ResolvedOptions) -> None:
        """Name a proposal's server after it on the home page (JupyterHub >= 6 has display names)."""
        title = (self.resolved_summary or {}).get("proposal_title")
        orm = self.orm_spawner
        if not title or options.proposal is None or orm is None or not hasattr(orm, "display_name"):
            return
        if self.name == self._proposal_server(options.proposal) and orm.display_name in (None, "", self.name):
            orm.display_name = " ".join(f"{options.proposal}: {title}".split())[:255]

    async def options_from_query(self, query: dict[str, list[str]]) -> dict[str, str]:
        options = await self.options_from_form(query)  # the same parsing and validation as a form post
        if self.spawn_from_url and self._followed_on_the_hub():
            return options
        # JupyterHub shows the form with this message instead of spawning: a pre-filled form.
        raise web.HTTPError(200, "The link filled in the options below: check them and press Start.")

    def _followed_on_the_hub(self) -> bool:
        """Whether the browser says this request comes from the hub's own pages or the address bar."""
        request = getattr(self.handler, "request", None)
        return request is not None and request.headers.get("Sec-Fetch-Site") in ("same-origin", "none")

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        try:
            options = form_to_options(formdata, self.profiles.profiles)
        except OptionsError as err:
            metrics.refused(err.field)
            raise web.HTTPError(400, f"Invalid server options: {err}") from None
        await self.resolve(options)  # refuse at once, before anything is stored or started
        return options

    # -- lifecycle -----------------------------------------------------------------------

    def backend(self, name: str) -> Backend:
        """The hub's one instance of the backend a profile names."""
        if name not in self.backend_classes:
            raise SpawnFailed(f"no backend named {name!r} is configured")
        cls = registry.check(name, import_item(self.backend_classes[name]))
        return cls.instance(config=self.config, log=self.log)  # one per kind (Backend.__init_subclass__)

    async def ready_backend(self, name: str) -> Backend:
        """The backend, set up (`Backend.ready`) before its first use in this hub."""
        backend = self.backend(name)
        if backend.hub_states is None and self._session is not None:
            backend.hub_states = functools.partial(stored_states, self._session, backend)
        await backend.ready()
        return backend

    @property
    def _session(self) -> Any:
        return None if self.orm_spawner is None else inspect(self.orm_spawner).session

    async def availability(self, profiles: list[Profile]) -> dict[str, Any]:
        """Backend name -> what it shows as free for these profiles, for each backend among them that tells."""
        answers: dict[str, Any] = {}
        for name in dict.fromkeys(profile.backend for profile in profiles):
            try:
                backend = await self.ready_backend(name)
            except SpawnFailed as err:  # not configured or not usable on this hub: say so, do not fail the page
                answers[name] = {"error": str(err)}
                continue
            answer = await backend.availability([p for p in profiles if p.backend == name])
            if answer is not None:
                answers[name] = answer
        return answers

    @property
    def accepts_address_reports(self) -> bool:
        return self._reported is not None and not self._reported.done()

    def is_server_token(self, token: str) -> bool:
        """Whether `token` is this server's API token: the one it started with, or the one a resume handed out."""
        if self.api_token and hmac.compare_digest(self.api_token.encode(), token.encode()):
            return True
        if self._start.token_id is None or self._session is None:
            return False
        found = orm.APIToken.find(self._session, token)
        return found is not None and found.id == self._start.token_id

    async def accept_report(self, report: ServerReport) -> None:
        """Called by the address endpoint with a validated report for this server."""
        if not self.accepts_address_reports or self.backend_state is None or self.backend_name is None:
            raise web.HTTPError(409, "this server is not waiting for an address")
        unknown = set(report.unreachable_data) - self._data_locations
        if unknown:
            raise web.HTTPError(400, "unreachable_data names data locations this server does not have")
        try:
            routed = await self.backend(self.backend_name).check_report(self.backend_state, report.address)
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None
        except NotRunningYet as err:
            raise web.HTTPError(409, str(err)) from None
        if self._reported is not None and not self._reported.done():
            self._data_notes = unreachable_data_notes(report.unreachable_data)
            for note in self._data_notes:
                self.log.warning("Server %s: %s", self._log_name, note)
            self._reported.set_result(routed)
            self._report_seen.set()

    def _require_hub_handlers(self) -> None:
        """Refuse at once, naming the fix, on a hub whose config did not add the spawner's endpoints."""
        missing = hub_handlers.missing()
        if missing:
            raise web.HTTPError(
                500,
                "This hub is not set up for the DaaS spawner (its API lacks " + ", ".join(missing) + "): "
                "add `from daas_hub import register_handlers; register_handlers()` to jupyterhub_config.py.",
            )

    async def start(self) -> tuple[str, int]:
        self._require_hub_handlers()
        self._started_here = True
        requested = time.monotonic()
        try:
            options = await self.resolve(self.user_options)
        except web.HTTPError:
            metrics.spawn_failed(None, "options_refused")
            # JupyterHub stored them for reuse: a later request without options would repeat the refusal.
            self._forget_options()
            raise
        if isinstance(self.user_options, dict):
            # The profile it runs, also where the user left it to the default: services (Dask
            # limits per profile) read it from the server model with `read:servers`.
            self.user_options = {**self.user_options, "profile": options.profile.id}
        backend = self.backend(options.backend)
        if options.default_url:
            self.default_url = options.default_url
        token = orm.APIToken.find(self._session, self.api_token) if self._session is not None else None
        self._start = StartRecord(starting=True, token_id=token.id if token is not None else None)
        self.session = open_session(options, self._share_group_template)
        launch = self._launch(options)
        reported = self._reported = asyncio.get_running_loop().create_future()
        self.last_end = None
        try:
            server = await self._start_and_wait(backend, launch, options, reported)
        except (Exception, asyncio.CancelledError) as err:
            metrics.spawn_failed(options.backend, self._failure_cause(err, time.monotonic() - requested))
            raise
        finally:
            self._end_start()
        metrics.spawned(options.backend, options.profile.id, time.monotonic() - requested)
        self._watch()
        return server.host, server.port  # the server listens already: it is reported only once it does

    def _failure_cause(self, err: Exception | asyncio.CancelledError, seconds: float) -> str:
        """The metrics' name for why a start failed (`_start_and_wait` answers 503 when the backend
        could not start it, 500 when the server failed before it listened; JupyterHub cancels a start
        at its start_timeout, and when the server is stopped meanwhile)."""
        if isinstance(err, asyncio.CancelledError):
            return "timeout" if seconds >= self.start_timeout else "cancelled"
        if isinstance(err, web.HTTPError):
            return "scheduler_error" if err.status_code == 503 else "server_failed"
        return "error"

    def _launch(self, options: ResolvedOptions) -> Launch:
        """What a backend starts, from validated options; its bootstrap secret is recorded (as a digest)."""
        mounts = self.data_mounts(options)
        self._data_locations = frozenset(f"{mount.proposal}/{mount.name}" for mount in mounts)
        self._data_notes = []
        self._report_seen = asyncio.Event()
        self._redeemed = asyncio.Event()
        if self._start.secrets_delivered:
            self._redeemed.set()  # before a hub restart
        if self.session is None:  # a start stored by a release before sessions
            self.session = open_session(options, self._share_group_template)
        env, secret_env = split_secret_env(
            self.get_env()
            | self.proposal_env(options)
            | mounts_env(self.data_locations, mounts)
            | session_env(self.session, self.end_warning)
        )
        secret = bootstrap.pending.issue(secret_env, self._secrets_redeemed)
        self._start = self._start.model_copy(update={"bootstraps": (*self._start.bootstraps, bootstrap.digest(secret))})
        return Launch(
            username=self.user.name,
            server=self._log_name,
            options=options,
            env=env,
            command=[*self.cmd, *self.get_args(), *session_args(self.session, self.access_check_interval)],
            mounts=tuple(mounts),
            data_locations=self.data_locations,
            identity=PosixIdentity.from_auth_state(self._auth_state),
            secret_env=secret_env,
            bootstrap=secret,
        )

    @property
    def _share_group_template(self) -> str:
        """The authenticator's name for a proposal's group (DaaSAuthenticator.proposal_group_template)."""
        return getattr(self.authenticator, "proposal_group_template", "proposal-{id}")

    async def _secrets_redeemed(self) -> None:
        """The server exchanges its bootstrap secret: a restart from now on must keep its token."""
        self._start = self._start.model_copy(update={"secrets_delivered": True})
        await self._save_state()
        self._redeemed.set()

    def _end_start(self) -> None:
        """The start is over (up, failed, stopped, cut off): its bootstrap secrets are worthless now."""
        for secret_digest in self._start.bootstraps:
            bootstrap.pending.withdraw(secret_digest)
        self._reported = None

    async def _start_and_wait(
        self,
        backend: Backend,
        launch: Launch,
        options: ResolvedOptions,
        reported: asyncio.Future[ServerAddress],
        resume: BackendState | None = None,
    ) -> ServerAddress:
        try:
            await backend.ready()
            self.resolved_summary = self._summary(options)
            self._show_proposal_title(options)
            async for checkpoint in backend.start(launch, resume):
                # Stored before the backend goes on: a hub that dies from here on finds what it made.
                self.backend_name, self.backend_state = options.backend, checkpoint  # the name profiles use
                await self._save_state()
        except SpawnFailed as err:
            raise web.HTTPError(503, str(err)) from None
        self._submitted.set()
        try:
            address = await backend.wait_for_address(self.backend_state, reported, self._redeemed)
        except SpawnFailed as err:
            raise web.HTTPError(500, str(err)) from None
        self._start = self._start.model_copy(
            update={"address": StoredAddress(host=address.host, port=address.port), "starting": False}
        )
        await self._save_state()
        return address

    async def _save_state(self) -> None:
        """Persist the state before going on (a checkpoint): a hub restart while a job queues must not orphan it.

        The commit is shared with the other spawners' states saved in the same turn of the event loop."""
        session = self._session
        if session is not None:
            self.orm_spawner.state = self.get_state()
            self.orm_spawner.user_options = self.user_options
            await group_commit.commit(session)

    # -- a start that a hub restart cut off ---------------------------------------------

    async def _resume(self) -> int | None:
        """Continue the start the last hub left (JupyterHub's check of a server row after a restart).

        JupyterHub (5.x and 6.x, `init_spawners`) polls every spawner that has a server row, and
        a start makes that row before it calls `start`: a start cut off by a restart is polled
        like a running server, then asked for its URL and stopped when nothing answers there.
        So the first poll of such a spawner continues the start and answers only once the
        server is up (None: JupyterHub then routes it) or the start is given up (1: JupyterHub
        then stops it, which cleans up what the start made). Later polls while it continues
        answer None at once, so that a stop is not held up by it.
        """
        if self._resuming is None:
            self._resuming = asyncio.ensure_future(self._resume_start())
        elif not self._resuming.done():
            return None
        try:
            return await asyncio.shield(self._resuming)
        except asyncio.CancelledError:
            if self._resuming.cancelled():
                return 0  # stopped meanwhile
            raise

    async def _resume_start(self) -> int | None:
        assert self.backend_name is not None and self.backend_state is not None
        self.log.info("Resuming the start of %s, cut off by a hub restart", self._log_name)
        reported = self._reported = asyncio.get_running_loop().create_future()
        try:
            backend = await self.ready_backend(self.backend_name)
            options = await self.resolve(self.user_options)
            if not (self._start.secrets_delivered or self.backend_state.secrets_given):
                self._new_server_token()
            launch = self._launch(options)
            for secret_digest in self._start.bootstraps[:-1]:  # what the job already holds
                bootstrap.pending.reissue(secret_digest, launch.secret_env, self._secrets_redeemed)
            address = await asyncio.wait_for(
                self._start_and_wait(backend, launch, options, reported, resume=self.backend_state),
                self.start_timeout,
            )
        except (web.HTTPError, SpawnFailed, ValueError, asyncio.TimeoutError) as err:
            why = getattr(err, "log_message", None) or str(err) or "it took longer than the start timeout"
            self.log.warning("Could not resume the start of %s: %s", self._log_name, why)
            self.last_end = f"Your server's start could not go on after the hub restarted: {why}"
            self._start = self._start.model_copy(update={"starting": False})
            await self._save_state()
            return 1  # JupyterHub stops it: the backend cleans up from the last checkpoint
        finally:
            self._end_start()
        self.log.info("Resumed %s at %s:%s", self._log_name, address.host, address.port)
        self._route_to(address)
        self._watch()
        return None

    def _new_server_token(self) -> None:
        """A fresh API token (same scopes and note) for a server that never got its old one.

        The hub keeps only hashes of tokens, so the one behind the job's bootstrap secret is
        lost with the hub that issued it; the server's OAuth client secret (its token) follows.
        """
        session = self._session
        old = session.get(orm.APIToken, self._start.token_id) if self._start.token_id is not None else None
        if old is None:
            raise SpawnFailed("the server's API token is gone")
        self.api_token = self.user.new_api_token(note=old.note, scopes=list(old.scopes))
        session.delete(old)
        client = self.orm_spawner.oauth_client
        if client is not None:
            client.secret = hash_token(self.api_token)
        session.commit()
        self._start = self._start.model_copy(update={"token_id": orm.APIToken.find(session, self.api_token).id})

    def _route_to(self, address: ServerAddress) -> None:
        """Point the hub's server row at the address (JupyterHub stores it only when its own start returns)."""
        if self.server is not None and (self.server.ip, self.server.port) != (address.host, address.port):
            self.server.ip, self.server.port = address.host, address.port
            if self._session is not None:
                self._session.commit()

    async def get_url(self) -> str:
        """The stored address: a hub killed as a start ended may not have written the server row yet."""
        if self._start.address is not None:
            self._route_to(ServerAddress(self._start.address.host, self._start.address.port))
        return await super().get_url()

    # -- after the start -----------------------------------------------------------------

    def _watch(self) -> None:
        """Subscribe to the backend's view once: after start, or at the first poll after a restart."""
        if self._unwatch is None and self.backend_state is not None and self.backend_name:
            backend = self.backend(self.backend_name)
            self._unwatch = backend.watch(self.backend_state, self._ended_on_its_own)

    def _ended_on_its_own(self, why: str) -> None:
        """The backend saw the server end (external scancel, node failure): tell the hub now, the user next."""
        self.last_end = why
        task = asyncio.ensure_future(self.poll_and_notify())
        self._notify_tasks.add(task)
        task.add_done_callback(self._notify_tasks.discard)

    async def poll(self) -> int | None:
        if self.backend_state is None or self.backend_name is None:
            return 0
        if self._start.starting and not self._started_here:
            return await self._resume()
        if self._session_ended:
            return 0
        backend = await self.ready_backend(self.backend_name)
        over = self._session_over(backend)
        if over is not None:
            return await self._end_session(over)
        self._watch()
        status = await backend.poll(self.backend_state)
        if (
            status is not None
            and self.session is not None
            and ended_idle(self.session, time.time(), self._last_activity)
        ):
            self.last_end = idle_message(self.session)
        return status

    @property
    def _last_activity(self) -> float | None:
        """The hub's last sign of use of this server (reports from the server, traffic through the proxy)."""
        last = self.orm_spawner.last_activity if self.orm_spawner is not None else None
        return last.replace(tzinfo=timezone.utc).timestamp() if last is not None else None

    async def _end_session(self, why: str) -> int | None:
        """Stop the server whose session is over, here: JupyterHub stops only servers that poll as running.

        0 once it is gone (JupyterHub then cleans up and the home page says why); None while it
        could not be stopped (the next poll tries again).
        """
        self.log.info("Stopping %s: %s", self._log_name, why)
        try:
            await self.stop()  # unsubscribes first: its end is told here, not as one on its own
        except SpawnFailed as err:
            self.log.warning("Could not stop %s at the end of its session: %s", self._log_name, err)
            return None
        self.last_end = why
        self._session_ended = True
        return 0

    def _session_over(self, backend: Backend) -> str | None:
        """Why the hub must end the server now (its lifetime is over; idle on a machine that outlives it)."""
        if self.session is None or self._start.starting:
            return None
        now = time.time()
        over = lifetime_over(self.session, now)
        if over is None and not backend.ends_with_server:
            over = idle_over(self.session, now, self._last_activity)
        return over

    async def stop(self, now: bool = False) -> None:
        if self._resuming is not None and not self._resuming.done():
            self._resuming.cancel()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self.backend_state is not None and self.backend_name is not None:
            backend = await self.ready_backend(self.backend_name)
            await backend.stop(self.backend_state)
        self._forget_server_token()
        self._forget_options()  # a later spawn without options must not reuse them

    def run_post_stop_hook(self) -> Any:
        """After every stop, also of a server that ended on its own: its shares end with it."""
        if self._session is not None:
            end_shares(self._session, self.orm_spawner)
        return super().run_post_stop_hook()

    def _forget_server_token(self) -> None:
        """Delete the server's token by its id when this hub never knew it (it started before a restart).

        JupyterHub deletes the token it knows (`api_token`) after stop; a hub that restarted knows
        none, and the server's token would stay valid with nothing left to use it.
        """
        session = self._session
        if self.api_token or self._start.token_id is None or session is None:
            return
        token = session.get(orm.APIToken, self._start.token_id)
        if token is not None:
            session.delete(token)
            session.commit()

    def _forget_options(self) -> None:
        """Clear the options JupyterHub keeps for the next spawn without options (an empty REST body)."""
        self.user_options = {}
        session = self._session
        if session is not None:
            self.orm_spawner.user_options = None
            session.commit()

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        await self._submitted.wait()
        if self.backend_state is None or self.backend_name is None:
            return
        async for event in self.backend(self.backend_name).progress(self.backend_state):
            yield event.as_dict()
        await self._report_seen.wait()  # JupyterHub ends this generator when the start ends
        for note in self._data_notes:
            yield {"progress": 90, "message": note}

    def session_view(self) -> dict[str, Any]:
        """What the hub's home page shows of this server: when it ends, why it last ended, whom it is shared with."""
        if not self.active or self.session is None:
            return {"last_end": self.last_end}
        ends_at = self.session.ends_at
        idle_ends_at = self.session.idle_ends_at(self._last_activity)
        view: dict[str, Any] = {
            "profile": self.session.profile,
            "proposal": (self.resolved_summary or {}).get("proposal"),
            "ends_at": _iso(ends_at) if ends_at is not None else None,
            "ends_by": self.session.ends_by,
            "idle_timeout": format_duration(self.session.idle_timeout) if self.session.idle_timeout else None,
            "idle_ends_at": _iso(idle_ends_at) if idle_ends_at is not None else None,
            "sharing": None,
        }
        group = self.session.share_group
        if group is not None and self.ready and self._session is not None:
            view["sharing"] = shares_model(self.orm_spawner, group, members(self._session, group, self.user.name))
        return view

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.backend_state is not None and self.backend_name is not None:
            stored = StoredServer(
                backend=self.backend_name,
                version=self.backend_state.version,
                state=self.backend_state.dump(),
                options=self.resolved_summary,
                start=self._start,
                session=self.session,
            )
            state[STATE_KEY] = stored.model_dump(mode="json")
        if self.last_end:
            state[LAST_END_KEY] = self.last_end
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.last_end = state.get(LAST_END_KEY)
        saved = state.get(STATE_KEY)
        if not saved:
            return
        try:
            stored = StoredServer.load(saved)
            self.backend_state = self.backend(stored.backend).load_state(stored.state, stored.version)
        except (ValueError, SpawnFailed) as err:
            # Nothing can poll or stop it: say so where operators look, and treat it as gone.
            self.log.error("Stored state of %s cannot be loaded (%s): %r", self._log_name, err, saved)
            return
        self.backend_name = stored.backend
        self.resolved_summary = stored.options
        self._start = stored.start
        self.session = stored.session

    def clear_state(self) -> None:
        super().clear_state()
        self.backend_state = None
        self.backend_name = None
        self.resolved_summary = None
        self._start = StartRecord()
        self.session = None
        self._session_ended = False
        self._started_here = False
        self._resuming = None
        self._submitted = asyncio.Event()


def stored_states(session: Any, backend: Backend) -> list[BackendState]:
    """Every state of this backend's kind in the hub database (of all users' servers, running or starting)."""
    states = []
    for (saved,) in session.query(orm.Spawner.state).filter(orm.Spawner.state.isnot(None)):
        stored = (saved or {}).get(STATE_KEY)
        if not stored:
            continue
        try:
            server = StoredServer.load(stored)
            if server.backend == backend.name:
                states.append(backend.load_state(server.state, server.version))
        except ValueError:
            continue  # logged where its own spawner loads it
    return states


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def unreachable_data_notes(locations: tuple[str, ...]) -> list[str]:
    """What the person reads about data their server could not open, one line per proposal."""
    by_proposal: dict[str, list[str]] = {}
    for item in locations:
        proposal, name = item.split("/", 1)
        by_proposal.setdefault(proposal, []).append(name)
    return [
        f"Your server starts without the {' and '.join(names)} data of proposal {proposal}: the compute node "
        "does not let you open it. If you joined this proposal recently, the node may not know it yet: start "
        "the server again in a few minutes, or ask the facility's support (the job log has the details)."
        for proposal, names in by_proposal.items()
    ]
