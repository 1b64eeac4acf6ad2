"""Run scheduler commands: argv lists, never a shell, always with a timeout.

Every backend that talks to a scheduler through its command-line tools goes through
`run_command`, so there is one place that guarantees no user value is parsed by a shell
and that a hung controller cannot hang the hub.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


class CommandFailed(RuntimeError):
    """A command that could not run, timed out or exited non-zero.

    For a scheduler this is not an answer about any job: callers treat it as transient.
    """

    def __init__(self, name: str, reason: str, stderr: str = "", *, timed_out: bool = False) -> None:
        detail = f": {stderr.strip()[-500:]}" if stderr.strip() else ""
        super().__init__(f"{name} {reason}{detail}")
        self.name = name
        self.reason = reason
        self.stderr = stderr
        self.timed_out = timed_out


@dataclass(frozen=True)
class CommandResult:
    stdout: str
    stderr: str
    seconds: float


async def run_command(
    argv: Sequence[str], *, timeout: float, stdin: str | None = None, name: str | None = None
) -> CommandResult:
    """Run argv (no shell) and return its output; raise CommandFailed on any failure.

    `name` is what errors call the command (e.g. "sbatch" when argv starts with a sudo prefix).
    """
    name = name or argv[0]
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # one process group: a sudo prefix and the command, killed together
        )
    except OSError as err:
        raise CommandFailed(name, f"could not start ({err.strerror})") from None
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except asyncio.TimeoutError:
        kill_group(process)
        await process.wait()
        raise CommandFailed(name, f"gave no answer within {timeout:g} s", timed_out=True) from None
    seconds = time.monotonic() - started
    out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    if process.returncode != 0:
        raise CommandFailed(name, f"exited with status {process.returncode}", err)
    log.debug("%s took %.3f s", name, seconds)
    return CommandResult(out, err, seconds)


def kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the command's process group (started with start_new_session), not only the sudo in front of it.

    A cut-off sbatch must not submit later, nor a reader go on reading.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except PermissionError:  # an unprivileged hub reaches only its sudo
        process.kill()
    except ProcessLookupError:
        pass
