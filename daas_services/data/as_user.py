"""Run the reader (reader.py) as the requesting user: argv through the user prefix, no shell.

The service never opens user data itself; each request is one reader process started as
the user, so the filesystem decides what they may read. JSON answers are read whole
(bounded); file reads come back as a header and a byte stream the service passes on.

What one person's reads may cost is bounded here: each reader gets an address-space and a
CPU-time limit (which it sets on itself), at most `per_person` of their readers run at once,
and a reader that outlives the timeout is killed with its whole process group, not only the
sudo in front of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from daas_core.accounts import AccountPolicy, AccountRefused, acts_as_user, as_user
from daas_core.commands import kill_group

log = logging.getLogger("daas-data")

READER = [sys.executable, "-I", "-m", "daas_services.data.reader"]
MAX_ANSWER = 64 << 20  # a JSON answer larger than this is refused, not buffered
STREAM_CHUNK = 256 << 10
STREAM_BUFFER = 1 << 20  # what a download buffers while its client reads slowly; then the reader waits


class ReaderError(Exception):
    """The reader answered with an error, or could not run; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or {}


class ReaderSlots:
    """At most `per_person` readers of one person at once; a further request waits up to `wait` seconds.

    A person's many requests (a script fetching files in parallel) must not take every process
    and every byte of memory the service host has, nor starve other people's reads.
    """

    def __init__(self, per_person: int, wait: float) -> None:
        self.per_person = per_person
        self.wait = wait
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}  # holders and waiters, so that an idle person's entry goes

    async def acquire(self, username: str) -> None:
        slots = self._slots.setdefault(username, asyncio.Semaphore(self.per_person))
        self._users[username] = self._users.get(username, 0) + 1
        try:
            if slots.locked():
                await asyncio.wait_for(slots.acquire(), self.wait)
            else:
                await slots.acquire()
        except asyncio.TimeoutError:
            self._forget(username)
            raise ReaderError(
                429, f"{self.per_person} of your reads are running; try again when one has ended"
            ) from None
        except BaseException:
            self._forget(username)
            raise

    def release(self, username: str) -> None:
        self._slots[username].release()
        self._forget(username)

    def _forget(self, username: str) -> None:
        self._users[username] -= 1
        if not self._users[username]:
            del self._users[username], self._slots[username]


@dataclass(frozen=True)
class PreviewBounds:
    """What one HDF5 preview may cost, checked by the reader on the file's metadata before it reads.

    `max_bytes`: the previewed values (elements x item size; fewer elements when each is large).
    `max_read_bytes`: what HDF5 reads and decompresses for them (every compressed chunk touched, whole).
    """

    max_bytes: int = 1 << 20
    max_read_bytes: int = 128 << 20


@dataclass(frozen=True)
class UserReader:
    """Starts readers as users: `prefix` (e.g. sudo -n -u {username} --) + the reader's argv.

    `memory` (bytes of address space) and `cpu_seconds` bound each reader; `cpu_seconds` does not
    bound downloads, whose CPU time grows with the bytes the person asked for. `timeout` bounds a
    JSON answer, and a download's header.
    """

    prefix: Sequence[str]
    command: Sequence[str] = tuple(READER)
    timeout: float = 60.0
    memory: int = 1 << 30
    cpu_seconds: int = 30
    per_person: int = 4
    queue_wait: float = 5.0
    accounts: AccountPolicy = field(default_factory=AccountPolicy.default)
    slots: ReaderSlots = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", ReaderSlots(self.per_person, self.queue_wait))

    def argv(self, username: str) -> list[str]:
        if acts_as_user(self.prefix):  # else (an empty prefix) the service's own account reads
            try:
                self.accounts.check(username)
            except AccountRefused as err:
                raise ReaderError(403, f"the service does not read as this account: {err}") from None
        return as_user(self.prefix, username, self.command)

    async def _start(
        self, username: str, request: dict[str, Any], limits: dict[str, int], buffer: int = MAX_ANSWER
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self.argv(username),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=buffer,
            start_new_session=True,  # one process group: sudo and the reader, killed together
        )
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps({**request, "limits": limits}).encode())
            await process.stdin.drain()
            process.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it ended at once (sudo refused, no Python): its missing answer says so
        return process

    async def ask(self, username: str, request: dict[str, Any]) -> dict[str, Any]:
        """One JSON answer from a reader running as `username`."""
        await self.slots.acquire(username)
        try:
            process = await self._start(username, request, {"memory": self.memory, "cpu_seconds": self.cpu_seconds})
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
            except asyncio.TimeoutError:
                raise ReaderError(504, f"reading took longer than {self.timeout:g} s") from None
            finally:
                await _end(process)
            return self._answer_or_cpu_limit(stdout.split(b"\n", 1)[0], stderr, username, process.returncode)
        finally:
            self.slots.release(username)

    async def stream(
        self, username: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], AsyncGenerator[bytes, None]]:
        """The reader's header and an iterator over the bytes it sends; the process ends with the iterator."""
        await self.slots.acquire(username)
        try:
            process = await self._start(username, request, {"memory": self.memory}, STREAM_BUFFER)
        except BaseException:
            self.slots.release(username)
            raise
        assert process.stdout is not None and process.stderr is not None

        async def first_line() -> tuple[bytes, bytes]:
            line = await process.stdout.readline()
            if line:
                return line, b""
            return line, await process.stderr.read(4096)

        try:
            try:
                line, stderr = await asyncio.wait_for(first_line(), self.timeout)
            except asyncio.TimeoutError:
                raise ReaderError(504, f"reading took longer than {self.timeout:g} s") from None
            header = _answer(line, stderr, username)
        except BaseException:
            await _end(process)
            self.slots.release(username)
            raise

        async def body() -> AsyncGenerator[bytes, None]:
            try:
                while chunk := await process.stdout.read(STREAM_CHUNK):
                    yield chunk
            finally:
                await _end(process)
                self.slots.release(username)

        return header, body()

    def _answer_or_cpu_limit(self, line: bytes, stderr: bytes, username: str, returncode: int | None) -> dict[str, Any]:
        """A reader that the kernel ended at its CPU limit (SIGXCPU, then SIGKILL) gave no answer."""
        if not line and returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            log.warning("reader for %s ended by signal %d", username, -returncode)
            raise ReaderError(504, f"reading needed more than the {self.cpu_seconds} s of CPU time a reader may use")
        return _answer(line, stderr, username)


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill the reader's whole process group (sudo and the reader); the reader also dies with its sudo."""
    if process.returncode is None:
        kill_group(process)
    # wait() returns once the pipes are closed too: a download whose client went away has left
    # unread output in a paused pipe, whose end of file only reading reaches.
    for output in (process.stdout, process.stderr):
        if output is not None:
            while await output.read(STREAM_CHUNK):
                pass
    await process.wait()


def _answer(line: bytes, stderr: bytes, username: str) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError:
        log.error("reader for %s gave no answer: %s", username, stderr.decode(errors="replace")[-2000:] or "(nothing)")
        raise ReaderError(502, "the data reader could not run for this user") from None
    error = document.get("error") if isinstance(document, dict) else None
    if error:
        raise ReaderError(int(error["status"]), str(error["message"]), document)
    return document
