"""Run scheduler commands: argv lists, never a shell, always with a timeout.

Every backend that talks to a scheduler through its command-line tools goes through
`run_command`, so there is one place that guarantees no user value is parsed by a shell
and that a hung controller cannot hang the hub.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


class CommandFailed(RuntimeError):
    """A command that could not run, timed out or exited non-zero.

    For a scheduler this is not an answer about any job: callers treat it as transient.
    """

    def __init__(self, argv: Sequence[str], reason: str, stderr: str = "") -> None:
        detail = f": {stderr.strip()[-500:]}" if stderr.strip() else ""
        super().__init__(f"{argv[0]} {reason}{detail}")
        self.argv = list(argv)
        self.reason = reason
        self.stderr = stderr


@dataclass(frozen=True)
class CommandResult:
    stdout: str
    stderr: str
    seconds: float


async def run_command(argv: Sequence[str], *, timeout: float, stdin: str | None = None) -> CommandResult:
    """Run argv (no shell) and return its output; raise CommandFailed on any failure."""
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        raise CommandFailed(argv, f"could not start ({err.strerror})") from None
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise CommandFailed(argv, f"timed out after {timeout:g} s") from None
    seconds = time.monotonic() - started
    out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    if process.returncode != 0:
        raise CommandFailed(argv, f"exited with status {process.returncode}", err)
    log.debug("%s took %.3f s", argv[0], seconds)
    return CommandResult(out, err, seconds)
