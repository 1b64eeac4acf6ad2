"""The sandbox backend: jupyterhub-singleuser as a process on the hub machine, told the user's greeting.

Written against the Backend contract only (no code of the packaged backends), so that the
integration test shows what a site's own backend needs. It keeps its processes in memory: a
server does not outlive a hub restart (poll then says it ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, ClassVar

from traitlets import List, Unicode

from daas_core.accounts import as_user
from daas_spawner.backends.base import Backend, BackendState, Launch, ServerAddress, SpawnFailed
from daas_spawner.profiles import Profile

from .profile import SandboxProfile, SandboxRequest

GREETING_ENV = "SANDBOX_GREETING"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxState(BackendState):
    """The server's process, its port and the greeting it was given."""

    version: ClassVar[int] = 1

    pid: int
    port: int
    greeting: str


class SandboxBackend(Backend[SandboxState]):
    """Starts each server as a child process, through `user_prefix`."""

    name = "sandbox"
    profile_class = SandboxProfile
    state_class = SandboxState

    user_prefix = List(
        Unicode(),
        [],
        config=True,
        help="Argv prefix that runs the server as the user (`{username}` replaced); it must keep the environment.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._processes: dict[int, asyncio.subprocess.Process] = {}

    async def start(self, launch: Launch, resume: SandboxState | None = None) -> AsyncIterator[SandboxState]:
        if resume is not None:  # its processes live in this hub only: one a restart cut off is gone
            raise SpawnFailed("the sandbox server's start was cut off by a hub restart")
        request = launch.request
        if not isinstance(request, SandboxRequest):
            raise SpawnFailed(f"the sandbox backend cannot start a {type(request).__name__}")
        home = self.account(launch.username).pw_dir
        port = _free_port()
        url = urllib.parse.urlsplit(launch.env.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0/"))
        env = {
            **launch.env,
            **launch.secret_env,
            "JUPYTERHUB_SERVICE_URL": urllib.parse.urlunsplit(url._replace(netloc=f"127.0.0.1:{port}")),
            GREETING_ENV: request.greeting,
        }
        argv = as_user(self.user_prefix, launch.username, launch.command)
        process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=home, start_new_session=True)
        self._processes[process.pid] = process
        yield SandboxState(pid=process.pid, port=port, greeting=request.greeting)

    async def wait_for_address(
        self, state: SandboxState, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        while await self.poll(state) is None:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", state.port)
                writer.close()
                return ServerAddress("127.0.0.1", state.port)
            await asyncio.sleep(0.2)
        raise SpawnFailed(f"the sandbox server {state['pid']} exited before it listened")

    async def poll(self, state: SandboxState) -> int | None:
        process = self._processes.get(state.pid)
        return 0 if process is None else process.returncode

    async def stop(self, state: SandboxState) -> None:
        process = self._processes.pop(state.pid, None)
        if process is None or process.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                await asyncio.wait_for(process.wait(), 10)
                return
            except asyncio.TimeoutError:
                continue

    async def availability(self, profiles: Sequence[Profile]) -> dict[str, Any]:
        running = sum(process.returncode is None for process in self._processes.values())
        return {"servers_running": running}
