"""Local backend: the single-user server as a process on the hub machine (the demo default)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable
from importlib.resources import files
from typing import ClassVar

from jupyterhub.utils import random_port
from pydantic import Field
from traitlets import Float, List, Unicode

from daas_core.accounts import UNIX_NAME, acts_as_user, as_user

from ...launcher import live_process_stat, port_check
from ..base import Backend, BackendState, Launch, ServerAddress, SpawnFailed
from .profile import LocalProfile

LISTEN_CHECK_INTERVAL = 0.1  # seconds between looks at the kernel's socket table while a server starts


def bind_env(env: dict[str, str], ip: str, port: int) -> dict[str, str]:
    """Point JUPYTERHUB_SERVICE_URL at the address the hub chose for this server."""
    url = urllib.parse.urlsplit(env.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0/"))
    return {**env, "JUPYTERHUB_SERVICE_URL": urllib.parse.urlunsplit(url._replace(netloc=f"{ip}:{port}"))}


def process_start_time(pid: int) -> int | None:
    """When a live process started (clock ticks since boot, field 22 of /proc/<pid>/stat); None: none, or dead.

    A pid alone does not name a process across a hub restart: the kernel reuses pids.
    """
    fields = live_process_stat(pid)
    return None if fields is None else int(fields[19])


class LocalState(BackendState):
    """A local server: its process (pid and start time: pids are reused), its account and its port.

    Version 1 is the layout of every release so far.
    """

    version: ClassVar[int] = 1

    pid: int = Field(gt=1)
    started: int | None = None  # clock ticks since boot (None: the process was gone at once)
    uid: int = Field(ge=0)
    host: str
    port: int = Field(ge=1, le=65535)

    @property
    def secrets_given(self) -> bool:
        return True  # the process got its environment when it started, before this checkpoint


class LocalBackend(Backend[LocalState]):
    """Starts servers as child processes of the hub; state survives a hub restart by pid."""

    name = "local"
    profile_class = LocalProfile
    state_class = LocalState

    user_prefix = List(
        Unicode(),
        [],
        config=True,
        help="""Argv prefix that runs the server as the user, e.g. ["sudo", "-E", "-H", "-n", "-u", "{username}", "--"].

        The prefix must pass the environment through (sudo -E): the server's API token travels
        in the environment, never on a command line. Empty (the default) runs every server as
        the hub's own Unix user, which is what the demo does; use a prefix only with a hub that
        may act as the users.""",
    )
    working_dir = Unicode(
        "",
        config=True,
        help="Server working directory, `{username}` replaced; created (mode 0700) if missing. Empty: the hub's.",
    )
    ip = Unicode("127.0.0.1", config=True, help="Address the local servers listen on.")
    stop_timeout = Float(10.0, config=True, help="Seconds between SIGTERM and SIGKILL when stopping.")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._processes: dict[int, asyncio.subprocess.Process] = {}

    async def start(self, launch: Launch, resume: LocalState | None = None) -> AsyncIterator[LocalState]:
        if resume is not None:
            # The one checkpoint comes after the process started: a resumed start re-attaches to it.
            yield resume
            return
        if acts_as_user(self.user_prefix):
            uid = self.account(launch.username).pw_uid  # servers run as the user: only as a person's account
        elif UNIX_NAME.fullmatch(launch.username):  # one account for all: the name only names a folder
            uid = os.getuid()
        else:
            raise SpawnFailed(f"user name {launch.username!r} cannot be used for a local directory")
        port = random_port()
        # The profile's env over the spawner's; a process environment is not kept, so the tokens go in as they are.
        env = bind_env(launch.env | launch.options.profile.env | launch.secret_env, self.ip, port)
        prefix = launch.options.environment.prefix
        if prefix:
            env["PATH"] = os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", os.defpath)
        cwd = None
        if self.working_dir:
            cwd = self.working_dir.replace("{username}", launch.username)
            os.makedirs(cwd, mode=0o700, exist_ok=True)
        argv = as_user(self.user_prefix, launch.username, self._command(launch))
        try:
            process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, start_new_session=True)
        except OSError as err:
            raise SpawnFailed(f"could not start {argv[0]}: {err.strerror}") from None
        self._processes[process.pid] = process
        self.log.info("Started %s as local process %d on port %d", launch.server, process.pid, port)
        started = process_start_time(process.pid)
        yield LocalState(pid=process.pid, started=started, uid=uid, host=self.ip, port=port)

    @staticmethod
    def _command(launch: Launch) -> list[str]:
        """The server command; with data locations, through the launcher, which links them as the user."""
        if "DAAS_DATA_DIR" not in launch.env:
            return launch.command
        launcher = str(files("daas_spawner").joinpath("launcher.py"))
        return [sys.executable, "-I", launcher, "--no-report", *launch.command]

    async def wait_for_address(
        self, state: LocalState, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        """The address once the server's account listens on its port, and no other account does.

        The hub picked the port: until the server binds it, another user's process could take
        it, and the hub would route this person's browser there.
        """
        port = state.port
        while True:
            if await self.poll(state) is not None:
                raise SpawnFailed(f"the server process {state.pid} exited before it listened")
            listening, taken = port_check(port, state.uid)
            if taken:
                await self.stop(state)
                raise SpawnFailed(f"{taken}; please start again")
            if listening:
                return ServerAddress(state.host, port)
            await asyncio.sleep(LISTEN_CHECK_INTERVAL)

    async def poll(self, state: LocalState) -> int | None:
        pid = state.pid
        process = self._processes.get(pid)
        if process is not None:
            return process.returncode
        # A server from before a hub restart, not our child any more: the same pid must be the same process.
        started = process_start_time(pid)
        if started is None or started != (state.started if state.started is not None else started):
            return 0
        return None

    async def _exited_within(self, state: LocalState, seconds: float) -> bool:
        process = self._processes.get(state.pid)
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), seconds)
            except asyncio.TimeoutError:
                return False
            return True
        deadline = time.monotonic() + seconds
        while await self.poll(state) is None:  # not our child: nothing to wait on but polling
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def stop(self, state: LocalState) -> None:
        pid = state.pid
        if pid not in self._processes and await self.poll(state) is not None:
            return  # gone, or the pid is another process's now: nothing of this server's to signal
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            if await self._exited_within(state, self.stop_timeout):
                break
        self._processes.pop(pid, None)
