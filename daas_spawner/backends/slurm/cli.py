"""The command-line transport: Slurm's own commands, run as argv lists, sbatch and scancel as the person."""

from __future__ import annotations

import os
from collections.abc import Sequence

from daas_core.accounts import as_user
from daas_core.commands import CommandFailed, run_command

from ..base import SpawnFailed
from .availability import PartitionAvailability, parse_availability, sinfo_availability_argv
from .commands import (
    JobInfo,
    NodeInfo,
    jobs_with_comment,
    parse_job_id,
    parse_sinfo_nodes,
    parse_squeue,
    sbatch_argv,
    scancel_argv,
    sinfo_nodes_argv,
    squeue_argv,
    squeue_comment_argv,
)
from .transport import SlurmTransport, Submission

COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")


class CliTransport(SlurmTransport):
    """sbatch/scancel through the user prefix (sudo); squeue, sinfo and scontrol as the hub."""

    def __init__(
        self, *, bin_dir: str, user_prefix: Sequence[str], job_name: str, timeout: float, ping_timeout: float
    ) -> None:
        self.bin_dir = bin_dir
        self.user_prefix = list(user_prefix)
        self.job_name = job_name
        self.timeout = timeout
        self.ping_timeout = ping_timeout

    def _bin(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def _prefix(self, username: str) -> list[str]:
        return as_user(self.user_prefix, username, [])

    async def check(self) -> None:
        missing = [name for name in COMMANDS if not os.access(self._bin(name), os.X_OK)]
        if missing:
            raise SpawnFailed(f"the hub cannot run {', '.join(missing)} in {self.bin_dir}: ask the facility's support")

    async def close(self) -> None:
        """Nothing to release: every request is a process of its own."""

    async def ping(self) -> bool:
        result = await run_command([self._bin("scontrol"), "ping"], timeout=self.ping_timeout)
        return " is UP" in result.stdout

    async def jobs(self) -> dict[str, JobInfo]:
        result = await run_command(squeue_argv(self._bin("squeue"), self.job_name), timeout=self.timeout)
        return parse_squeue(result.stdout)

    async def jobs_with_comment(self, comment: str) -> list[str]:
        listed = await run_command(squeue_comment_argv(self._bin("squeue"), self.job_name), timeout=self.timeout)
        return jobs_with_comment(listed.stdout, comment)

    async def submit(self, submission: Submission) -> str:
        spec = submission.spec
        argv = [
            *sbatch_argv(self._prefix(spec.username), self._bin("sbatch"), submission.options, spec),
            f"--comment={submission.comment}",
        ]
        result = await run_command(argv, timeout=self.timeout, stdin=submission.script, name="sbatch")
        try:
            return parse_job_id(result.stdout)
        except ValueError as err:
            raise CommandFailed("sbatch", str(err)) from None

    async def cancel(self, username: str, job_id: str) -> None:
        argv = scancel_argv(self._prefix(username), self._bin("scancel"), job_id)
        await run_command(argv, timeout=self.timeout, name="scancel")

    async def nodes(self) -> dict[str, NodeInfo]:
        result = await run_command(sinfo_nodes_argv(self._bin("sinfo")), timeout=self.timeout)
        return parse_sinfo_nodes(result.stdout)

    async def availability(self) -> dict[str, PartitionAvailability]:
        result = await run_command(sinfo_availability_argv(self._bin("sinfo")), timeout=self.timeout)
        return parse_availability(result.stdout)
