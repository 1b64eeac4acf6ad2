"""run_command: a command cut off by its timeout ends whole, with whatever it started (sudo starts it so)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import pytest

from daas_core.commands import CommandFailed, run_command


def processes_with(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout.split()


async def test_a_timeout_kills_the_command_and_its_children() -> None:
    marker = f"command-{uuid.uuid4().hex}"
    # The child is what sudo's command is to sudo: killing only the process we started leaves it running.
    forks = f"import os, time; os.fork(); time.sleep(300)  # {marker}"
    with pytest.raises(CommandFailed) as failed:
        # Bounded: killing only the first process left its child holding the pipes, and the call hung.
        await asyncio.wait_for(run_command([sys.executable, "-c", forks], timeout=1, name="sbatch"), 30)
    assert failed.value.timed_out and str(failed.value) == "sbatch gave no answer within 1 s"
    deadline = time.monotonic() + 10  # a bound for the kernel to end them, not a measure
    while processes_with(marker):
        assert time.monotonic() < deadline, "the command's child outlived the timeout"
        await asyncio.sleep(0.05)


async def test_output_and_failures_are_unchanged() -> None:
    assert (await run_command([sys.executable, "-c", "print('up')"], timeout=30)).stdout == "up\n"
    with pytest.raises(CommandFailed) as failed:
        await run_command([sys.executable, "-c", "import sys; sys.exit(3)"], timeout=30, name="scancel")
    assert str(failed.value) == "scancel exited with status 3" and not failed.value.timed_out
