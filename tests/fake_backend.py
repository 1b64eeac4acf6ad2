"""A backend made for the tests: each server is a volume (a directory) and a process, made in two steps.

Like a VM (a volume, then a server on it), its start has things to checkpoint in between, and a
thing made but not yet checkpointed (the process) is found again by a marker, as a cut-off
sbatch's job is found by its comment. The process is a plain HTTP server on the port the hub
gave (`JUPYTERHUB_SERVICE_URL`), so JupyterHub's own checks of the server pass. While
`<world>/hold` exists, a start waits after making its volume (a server that queues). Every call
that matters is written to `<world>/calls.log`, for the lifecycle test through a real hub.

A hub uses it with `c.DaaSSpawner.backend_classes = {"local": "<module>.FakeBackend"}` and
`c.FakeBackend.world = "<dir>"`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from traitlets import Unicode

from daas_spawner.backends.base import Backend, BackendState, Launch, ProgressEvent, ServerAddress, SpawnFailed
from daas_spawner.backends.local.backend import process_start_time
from daas_spawner.backends.local.profile import LocalProfile

MARKER = "DAAS_FAKE_SERVER"  # in the process environment: finds a process the last checkpoint does not name
SERVE = (
    "import os, urllib.parse, http.server as h\n"
    "url = urllib.parse.urlsplit(os.environ['JUPYTERHUB_SERVICE_URL'])\n"
    "h.HTTPServer((url.hostname, url.port), h.SimpleHTTPRequestHandler).serve_forever()\n"
)


class FakeState(BackendState):
    """The fake's server: its name in the world, whether its volume is made, its process."""

    version: ClassVar[int] = 1

    name: str = Field(pattern=r"^[a-z0-9-]+$")
    volume: bool = False
    pid: int | None = None
    started: int | None = None
    port: int | None = None

    @property
    def secrets_given(self) -> bool:
        return self.pid is not None


def find_process(name: str) -> int | None:
    """The live process of a fake server, by the marker in its environment."""
    wanted = f"{MARKER}={name}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeBackend(Backend[FakeState]):
    """Servers as volumes and processes under `world`; no scheduler."""

    # It stands in for the local backend (`c.DaaSSpawner.backend_classes = {"local": ...}`), so it
    # takes that name and those profiles: a backend's name and its profiles' discriminator are one.
    name = "local"
    profile_class = LocalProfile
    state_class = FakeState

    world = Unicode(
        "/tmp/daas-fake-world",
        config=True,
        help="Directory of the fake's volumes and of calls.log, the record of its calls.",
    )

    def record(self, *words: object) -> None:
        Path(self.world).mkdir(parents=True, exist_ok=True)
        with open(Path(self.world) / "calls.log", "a") as log:
            log.write(" ".join(map(str, words)) + "\n")

    def volume(self, state: FakeState) -> Path:
        return Path(self.world) / "volumes" / state.name

    async def setup(self) -> None:
        self.record("setup", os.getpid())

    async def close(self) -> None:
        self.record("close", os.getpid())

    async def start(self, launch: Launch, resume: FakeState | None = None) -> AsyncIterator[FakeState]:
        state = resume or FakeState(name=f"{launch.username}-{secrets.token_hex(4)}")
        self.record("resume" if resume else "start", state.name)
        if resume is None:
            yield state  # before anything is made: the name finds it
        if not state.volume:
            self.volume(state).mkdir(parents=True, exist_ok=True)
            state = state.model_copy(update={"volume": True})
            yield state
        while (Path(self.world) / "hold").exists():  # noqa: ASYNC110 (a test holds the start: a file, not an event)
            await asyncio.sleep(0.1)
        if state.pid is None:
            made = find_process(state.name)
            if made is not None:  # by a start cut off before its checkpoint, with secrets a resume replaced
                await self._kill(made)
            port = free_port()
            service = urllib.parse.urlsplit(launch.env.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0/"))
            env = {
                **launch.env,
                **launch.secret_env,
                MARKER: state.name,
                "JUPYTERHUB_SERVICE_URL": urllib.parse.urlunsplit(service._replace(netloc=f"127.0.0.1:{port}")),
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SERVE, env=env, cwd=self.volume(state), start_new_session=True
            )
            pid = process.pid
            state = state.model_copy(update={"pid": pid, "started": process_start_time(pid), "port": port})
            yield state
        elif resume is not None:
            yield state  # re-attached to what the last hub made

    async def wait_for_address(
        self, state: FakeState, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        assert state.port is not None
        while True:
            if await self.poll(state) is not None:
                raise SpawnFailed(f"fake server {state.name} ended before it listened")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", state.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return ServerAddress("127.0.0.1", state.port)

    def _alive(self, state: FakeState) -> int | None:
        """The server's live process, by pid and start time or by marker."""
        if state.pid is not None and process_start_time(state.pid) == state.started:
            return state.pid
        return find_process(state.name) if state.pid is None else None

    async def poll(self, state: FakeState) -> int | None:
        self.record("poll", state.name)
        return None if self._alive(state) is not None or (self.volume(state).exists() and state.pid is None) else 0

    async def stop(self, state: FakeState) -> None:
        self.record("stop", state.name)
        pid = self._alive(state)
        if pid is not None:
            await self._kill(pid)
        shutil.rmtree(self.volume(state), ignore_errors=True)

    @staticmethod
    async def _kill(pid: int) -> None:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process_start_time(pid) is not None:
            if time.monotonic() > deadline:
                raise SpawnFailed(f"fake server process {pid} did not stop")
            await asyncio.sleep(0.05)

    async def progress(self, state: FakeState) -> AsyncIterator[ProgressEvent]:
        yield ProgressEvent(50, f"Fake server {state.name} made")
