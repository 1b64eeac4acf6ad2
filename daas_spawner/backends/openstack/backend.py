"""OpenStack backend: the single-user server in a virtual machine, booted by cloud-init.

The hub keeps one view of its VMs (view.py: one `servers list` filtered by its tag per
interval); poll, progress, the end of a server and the reconciliation are lookups in it. What
this module does with the API is what a person's action needs: create the VM at a start (its
user_data starts the server, which reports its address with its own token), delete it at a
stop, at the end of its lifetime, or when no server in the hub's database owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, ClassVar

from traitlets import Float, Unicode

from daas_core.mount_builders import cloud_init_mounts
from daas_core.shared_query import SharedQuery

from ... import metrics
from ...availability import AvailabilityCache
from ..base import BackendState, Launch, NotRunningYet, ProgressEvent, ServerAddress, SpawnFailed
from ..contained import SERVER_VARIABLES, ContainedBackend
from ..launcher_source import launcher_source
from .availability import FlavorAvailability, flavor_availability
from .cloud import Cloud, CloudError
from .cloud_init import BootInputs, user_data
from .profile import OpenStackProfile, OpenStackRequest
from .servers import EXPIRES, START, ServerInputs, expires_at, expiry, server_body, server_name
from .status import GONE, end_reason, progress_event, refusal_in_words, sentence
from .view import ServerView


class OpenStackState(BackendState):
    """One server's VM: which start made it, its id once Nova gave one, and when its lifetime ends.

    Version 1 is the first layout.
    """

    version: ClassVar[int] = 1

    start_id: str
    name: str
    expires_at: float  # seconds since the epoch
    server_id: str | None = None  # None: the create was not answered (yet); the VM is found by start_id


class OpenStackBackend(ContainedBackend[OpenStackState]):
    """Starts servers as VMs; one shared list per hub answers poll, progress and the reconciliation."""

    name = "openstack"
    profile_class = OpenStackProfile
    state_class = OpenStackState
    ends_with_server = False  # the VM runs on after its server: the hub ends idle ones
    backend_variables = SERVER_VARIABLES | {"USER", "LOGNAME", "DAAS_REPORT_ROUTE"}

    cloud = Unicode(
        config=True,
        help="""The cloud's entry in clouds.yaml (openstacksdk's search path, or $OS_CLIENT_CONFIG_FILE): a
        project member's credentials (an application credential is best), never an admin's.""",
    )
    tag = Unicode(
        "daas",
        config=True,
        help="""The tag on every VM this hub creates; its one list per interval asks for it. Hubs sharing a
        project need different tags: each deletes the tagged VMs it does not own.""",
    )
    interval = Float(10.0, config=True, help="Seconds between lists of the hub's VMs while nothing waits.")
    busy_interval = Float(2.0, config=True, help="Seconds between lists while a start or a stop waits on them.")
    api_timeout = Float(30.0, config=True, help="Seconds one call to the cloud may take.")
    stop_timeout = Float(120.0, config=True, help="Seconds a stop waits for the VM to be gone.")
    reconcile_interval = Float(
        300.0,
        config=True,
        help="""Seconds between reconciliations (the first runs with the backend's first list): tagged VMs
        whose lifetime is over, or that no server in the hub's database owns, are deleted (and logged).""",
    )
    flavor_ttl = Float(300.0, config=True, help="Seconds the list of flavors (sizes, ids) is reused.")
    availability_ttl = Float(30.0, config=True, help="Seconds one view of the project's quota serves the form.")
    home_path = Unicode("/home/{username}", config=True, help="The person's home in the VM; $HOME.")
    python = Unicode(
        "/usr/bin/python3",
        config=True,
        help="The image's Python that runs the launcher, for environments without a `prefix`.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: ServerView | None = None
        self.client: Cloud | None = None
        self._created_at: dict[str, float] = {}  # server id -> time.monotonic() of its create
        self._deleting: dict[str, asyncio.Future[None]] = {}  # server id -> its background delete
        self._reconciled_at: float | None = None
        self._flavors: SharedQuery[list[dict[str, Any]]] | None = None
        self.availability_cache: AvailabilityCache | None = None

    # -- life of the backend ----------------------------------------------------------

    async def setup(self) -> None:
        if not self.cloud:
            raise SpawnFailed("the OpenStack backend has no cloud: the site must set c.OpenStackBackend.cloud")
        client = Cloud(self.cloud, self.api_timeout)
        servers = metrics.timed_query(lambda: client.list_servers(self.tag), self.name, "api", "servers")
        view = ServerView(servers, self.interval, self.busy_interval)
        self.client, self.view = client, view  # the first list's reconciliation reads them
        view.subscribe(self._reconcile)
        await view.refresh()
        view.start()
        self._flavors = SharedQuery(
            metrics.timed_query(client.flavors, self.name, "api", "flavors"), ttl=self.flavor_ttl
        )
        cache = self.availability_cache = AvailabilityCache(self._flavor_availability, ttl=self.availability_ttl)
        metrics.watch_age(self.name, "availability", lambda: cache.age)

    async def close(self) -> None:
        if self.view is not None:
            await self.view.close()
            self.view = None
        if self.availability_cache is not None:
            await self.availability_cache.close()
        for deleting in list(self._deleting.values()):
            deleting.cancel()

    def _view(self) -> ServerView:
        if self.view is None:
            raise SpawnFailed("the OpenStack backend is not set up")
        return self.view

    def _client(self) -> Cloud:
        if self.client is None:
            raise SpawnFailed("the OpenStack backend is not set up")
        return self.client

    # -- start ---------------------------------------------------------------------------

    def _server(self, state: OpenStackState) -> dict[str, Any] | None:
        """The state's VM as the view shows it: by id, or (a create never answered) by its start's id."""
        view = self._view()
        if state.server_id is not None:
            return view.server(state.server_id)
        return view.find(START, state.start_id)

    async def start(self, launch: Launch, resume: OpenStackState | None = None) -> AsyncIterator[OpenStackState]:
        view = self._view()
        if resume is not None:
            await view.refresh()  # an answer about what exists now, not before the restart
            found = self._server(resume)
            if found is not None:
                why = end_reason(found)
                if why is not None:
                    raise SpawnFailed(sentence(why))
                self.log.info("Re-attached %s to VM %s", launch.server, found["id"])
                yield resume.model_copy(update={"server_id": found["id"]})
                return
            if resume.server_id is not None:
                raise SpawnFailed(sentence(GONE))
        if view.error is not None:
            raise SpawnFailed(f"The cloud is not answering ({view.error}); please try again later.")
        request: OpenStackRequest = launch.request  # type: ignore[assignment]
        identity = self.identity(launch)
        start_id = resume.start_id if resume is not None else secrets.token_hex(8)
        lifetime_end = resume.expires_at if resume is not None else time.time() + request.walltime_seconds
        state = OpenStackState(
            start_id=start_id, name=server_name(launch.username, launch.server), expires_at=lifetime_end
        )
        yield state  # stored before the create: the next hub finds the VM by its start's id, or deletes it
        try:
            boot = user_data(
                BootInputs(
                    description=launch.server,
                    python=self._python(launch),
                    launcher=launcher_source(),
                    command=launch.command,
                    env=self._env(launch),
                    identity=identity,
                    home=self._home(launch.username),
                    mounts=self._mounts(launch),
                )
            )
        except ValueError as err:
            raise SpawnFailed(f"cannot describe this server's VM: {err}") from None
        client = self._client()
        try:
            image_id = await client.image_id(request.openstack.images[launch.options.environment.id])
            flavor_id = await self._flavor_id(request.flavor)
            body = server_body(
                ServerInputs(
                    name=state.name,
                    hub_tag=self.tag,
                    username=launch.username,
                    server=launch.server,
                    profile=launch.options.profile.id,
                    start_id=start_id,
                    expires_at=lifetime_end,
                    image_id=image_id,
                    flavor_id=flavor_id,
                    settings=request.openstack,
                    user_data=boot,
                )
            )
            created = await client.create_server(body)
        except CloudError as err:
            if err.status is None:
                raise SpawnFailed(f"The cloud is not answering ({err}); please try again later.") from None
            raise SpawnFailed(refusal_in_words(err.status, err.body or str(err))) from None
        self._created_at[created["id"]] = time.monotonic()
        self.log.info("Created VM %s (%s) for %s", created["id"], state.name, launch.server)
        yield state.model_copy(update={"server_id": created["id"]})

    async def _flavor_id(self, flavor: str) -> str:
        assert self._flavors is not None
        for known in await self._flavors.get():
            if flavor in (known.get("id"), known.get("name")):
                return str(known["id"])
        raise CloudError(f"the cloud has no flavor {flavor!r} for this project", 400)

    def _python(self, launch: Launch) -> str:
        prefix = launch.options.environment.prefix
        return f"{prefix}/bin/python3" if prefix else self.python

    def _home(self, username: str) -> str:
        return self.home_path.replace("{username}", username)

    def _mounts(self, launch: Launch) -> dict[str, Any]:
        if not launch.mounts or launch.data_locations is None:
            return {}
        try:
            return cloud_init_mounts(launch.data_locations, launch.mounts)
        except ValueError as err:
            raise SpawnFailed(f"cannot mount this server's data: {err}") from None

    def _env(self, launch: Launch) -> dict[str, str]:
        """The server's environment in user_data (`server_env`); the launcher reports the VM's own address."""
        name = launch.username
        return self.server_env(launch, self._home(name), USER=name, LOGNAME=name, DAAS_REPORT_ROUTE="1")

    # -- a running server -----------------------------------------------------------------

    def _end(self, state: OpenStackState) -> str | None:
        """Why the server is over (a sentence for the person), from the view; None while it may run."""
        if time.time() >= state.expires_at:
            return f"Your server reached the end of its lifetime ({expiry(state.expires_at)}); its VM is deleted."
        server = self._server(state)
        if server is None:
            if state.server_id is None:
                return None  # a start cut off before Nova answered: the resumed start decides
            created = self._created_at.get(state.server_id, 0.0)
            if not self._view().shows_gone(state.server_id, created):
                return None
            why = end_reason(None)
        else:
            why = end_reason(server)
        return None if why is None else sentence(why)

    async def wait_for_address(
        self, state: OpenStackState, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        """The address the VM's launcher reported (checked in `check_report`); an ended VM is deleted."""
        view = self._view()
        report = asyncio.ensure_future(reported)
        try:
            async with view.hurry():
                while True:
                    why = self._end(state)
                    if why is not None:
                        await self.stop(state)
                        raise SpawnFailed(why)
                    with contextlib.suppress(asyncio.TimeoutError):
                        return await asyncio.wait_for(asyncio.shield(report), view.busy_interval)
        finally:
            if not report.done():
                report.cancel()

    async def check_report(self, state: OpenStackState, address: ServerAddress) -> ServerAddress:
        server = self._server(state)
        if server is None or server.get("status") != "ACTIVE":
            raise NotRunningYet("the cloud does not show this VM running yet")
        known = {ip.get("addr") for ips in (server.get("addresses") or {}).values() for ip in ips}
        if address.host not in known:
            try:
                known |= await self._client().addresses(server["id"])
            except CloudError as err:
                raise NotRunningYet(f"the VM's addresses cannot be read now ({err})") from None
        if address.host not in known:
            raise ValueError(f"{address.host} is not an address of this server's VM")
        return address

    async def progress(self, state: OpenStackState) -> AsyncIterator[ProgressEvent]:
        view = self._view()
        last = None
        while self._end(state) is None:
            server = self._server(state)
            event = progress_event(server)
            if event is not None and event != last:
                last = event
                yield event
            if server is not None and server.get("status") == "ACTIVE":
                return
            await view.next_list()

    async def stop(self, state: OpenStackState) -> None:
        view = self._view()
        server = self._server(state)
        if server is None and state.server_id is None:
            await view.refresh()  # a create whose answer was lost may have made it since the last list
            server = self._server(state)
        server_id = server["id"] if server is not None else state.server_id
        if server_id is None:
            return
        await self._delete(server_id)
        deleted = time.monotonic()
        deadline = deleted + self.stop_timeout
        async with view.hurry():
            while not view.shows_gone(server_id, deleted):
                if time.monotonic() > deadline:
                    raise SpawnFailed(f"VM {server_id} is still there after {self.stop_timeout:.0f}s")
                await view.next_list()
        self._created_at.pop(server_id, None)

    async def _delete(self, server_id: str) -> None:
        try:
            await self._client().delete_server(server_id)
        except CloudError as err:
            raise SpawnFailed(f"the cloud did not delete VM {server_id} ({err}); it may still run") from None

    def _remove_ended(self, state: OpenStackState) -> None:
        """Delete the VM of a server that is over (lifetime, error, shut down): JupyterHub will not stop it."""
        server = self._server(state)
        if server is not None:
            self._delete_in_background(server["id"], "its server ended")

    def _delete_in_background(self, server_id: str, why: str) -> None:
        if server_id in self._deleting:
            return

        async def delete() -> None:
            try:
                await self._delete(server_id)
                self.log.info("Deleted VM %s: %s", server_id, why)
            except SpawnFailed as err:
                self.log.warning("Could not delete VM %s (%s): %s", server_id, why, err)
            finally:
                self._deleting.pop(server_id, None)

        self._deleting[server_id] = asyncio.ensure_future(delete())

    # -- reconciliation ---------------------------------------------------------------------

    def _reconcile(self) -> None:
        """After a good list, every `reconcile_interval`: delete tagged VMs past their lifetime or owned by no one."""
        view = self._view()
        if view.error is not None or view.listed_at is None:
            return
        if self._reconciled_at is not None and view.listed_at - self._reconciled_at < self.reconcile_interval:
            return
        self._reconciled_at = view.listed_at
        owned = None if self.hub_states is None else {state.start_id for state in self.hub_states()}
        now = time.time()
        for server in view.servers.values():
            metadata = server.get("metadata") or {}
            end = expires_at(metadata)
            if end is not None and end <= now:
                self._delete_in_background(server["id"], f"its lifetime ended at {metadata[EXPIRES]}")
            elif owned is not None and metadata.get(START) not in owned:
                self._delete_in_background(server["id"], "no server in the hub's database owns it")

    # -- the form -----------------------------------------------------------------------------

    async def _flavor_availability(self) -> dict[str, FlavorAvailability]:
        assert self._flavors is not None
        client = self._client()
        flavors, limits = await asyncio.gather(self._flavors.get(), client.limits())
        return flavor_availability(flavors, limits)

    async def availability(self, profiles: Sequence[Any]) -> dict[str, Any] | None:
        if self.availability_cache is None:
            return {"error": "the OpenStack backend is not set up"}
        gpus = {flavor.name: flavor.gpus for profile in profiles for flavor in profile.resources.flavors}
        answer = (await self.availability_cache.snapshot()).only(gpus).as_dict()
        for name, flavor in answer["partitions"].items():
            if gpus[name] is not None:  # the site's count wins over the extra specs'
                flavor["gpus"] = gpus[name]
        return answer
