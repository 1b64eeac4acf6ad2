"""How the Slurm backend talks to Slurm: one contract, two transports (cli.py, rest.py).

The backend decides what to submit, when to look and what an answer means; a transport only
carries each request to Slurm and brings the answer back in the same shapes (JobInfo, NodeInfo,
PartitionAvailability), so both transports share the options model, the batch script, the
shared queue view, the address check and every message a person reads.

Rules for a transport:
- `submit` and `cancel` act as the person named, with that person's Slurm rights, never the
  hub's: a cancel of someone else's job is refused by Slurm, not by the transport.
- The shared reads (`jobs`, `jobs_with_comment`, `nodes`, `availability`, `ping`) are one request
  each for the whole hub, whatever the number of servers.
- Every failure raises `CommandFailed` (`timed_out` when Slurm did not answer in time); it is
  never an answer about a job. A refusal carries Slurm's own words.
- No secret is logged or put into an error message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ...options import ResolvedOptions
from .availability import PartitionAvailability
from .commands import JobInfo, JobSpec, NodeInfo
from .profile import SlurmRequest


@dataclass(frozen=True)
class Submission:
    """One server job as the backend decided it: resources, spec, script and the comment that finds it."""

    options: ResolvedOptions[SlurmRequest]
    spec: JobSpec
    script: str
    comment: str
    home: str


class SlurmTransport(ABC):
    """The requests the Slurm backend makes; see the module's rules."""

    #: What the messages call the other end ("Slurm", "Slurm's REST API at <url>").
    peer: str = "Slurm"

    @abstractmethod
    async def check(self) -> None:
        """Refuse (SpawnFailed, naming what is missing) when this transport cannot work at all."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; bounded, and never touches a job."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the controller says it is up; CommandFailed when no answer came."""

    @abstractmethod
    async def jobs(self) -> dict[str, JobInfo]:
        """Every job of this hub (by the job name), ended ones too while Slurm still lists them."""

    @abstractmethod
    async def jobs_with_comment(self, comment: str) -> list[str]:
        """Live jobs of this hub carrying this comment: a job whose submission was cut off."""

    @abstractmethod
    async def submit(self, submission: Submission) -> str:
        """Submit as `submission.spec.username`; the job id."""

    @abstractmethod
    async def cancel(self, username: str, job_id: str) -> None:
        """Cancel a job as `username` (Slurm refuses anyone else's)."""

    @abstractmethod
    async def nodes(self) -> dict[str, NodeInfo]:
        """Every node's name, host name and address."""

    @abstractmethod
    async def availability(self) -> dict[str, PartitionAvailability]:
        """What each partition could run now (availability.py's counting rules)."""
