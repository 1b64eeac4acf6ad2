"""Run the reader (reader.py) as the requesting user: argv through the user prefix, no shell.

The service never opens user data itself; each request is one reader process started as
the user, so the filesystem decides what they may read. JSON answers are read whole
(bounded); file reads come back as a header and a byte stream the service passes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from daas_spawner.accounts import AccountPolicy, AccountRefused, acts_as_user

log = logging.getLogger("daas-data")

READER = [sys.executable, "-I", "-m", "daas_services.data.reader"]
MAX_ANSWER = 64 << 20  # a JSON answer larger than this is refused, not buffered
STREAM_CHUNK = 256 << 10


class ReaderError(Exception):
    """The reader answered with an error, or could not run; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or {}


@dataclass(frozen=True)
class UserReader:
    """Starts readers as users: `prefix` (e.g. sudo -n -u {username} --) + the reader's argv."""

    prefix: Sequence[str]
    command: Sequence[str] = tuple(READER)
    timeout: float = 60.0
    accounts: AccountPolicy = field(default_factory=AccountPolicy.default)

    def argv(self, username: str) -> list[str]:
        if acts_as_user(self.prefix):  # else (an empty prefix) the service's own account reads
            try:
                self.accounts.check(username)
            except AccountRefused as err:
                raise ReaderError(403, f"the service does not read as this account: {err}") from None
        return [part.replace("{username}", username) for part in self.prefix] + list(self.command)

    async def _start(self, username: str, request: dict[str, Any]) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self.argv(username),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=MAX_ANSWER,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(request).encode())
            await process.stdin.drain()
            process.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it ended at once (sudo refused, no Python): its missing answer says so
        return process

    async def ask(self, username: str, request: dict[str, Any]) -> dict[str, Any]:
        """One JSON answer from a reader running as `username`."""
        process = await self._start(username, request)
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise ReaderError(504, "reading took too long") from None
        return _answer(stdout.split(b"\n", 1)[0], stderr, username)

    async def stream(self, username: str, request: dict[str, Any]) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The reader's header and an iterator over the bytes it sends; the process ends with the iterator."""
        process = await self._start(username, request)
        assert process.stdout is not None and process.stderr is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), self.timeout)
            header = _answer(line, b"" if line else await process.stderr.read(4096), username)
        except BaseException:
            await _end(process)
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await process.stdout.read(STREAM_CHUNK):
                    yield chunk
            finally:
                await _end(process)

        return header, body()


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass
    await process.wait()


def _answer(line: bytes, stderr: bytes, username: str) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError:
        log.error("reader for %s gave no answer: %s", username, stderr.decode(errors="replace")[-2000:])
        raise ReaderError(502, "the data reader could not run for this user") from None
    error = document.get("error") if isinstance(document, dict) else None
    if error:
        raise ReaderError(int(error["status"]), str(error["message"]), document)
    return document
