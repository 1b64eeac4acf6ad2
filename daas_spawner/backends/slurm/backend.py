"""Slurm backend: submit as the user, one shared view of the queue, cancel to stop; over the CLI or slurmrestd."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar

from pydantic import Field
from traitlets import Enum, Float, Instance, List, TraitError, Unicode, default, validate

from daas_core.accounts import UNIX_NAME
from daas_core.commands import CommandFailed
from daas_core.fields import check_account_template
from daas_core.shared_query import SharedQuery

from ... import metrics
from ...availability import AvailabilityCache
from ...profiles import Profile
from ..base import (
    BOOTSTRAP_ENV,
    Backend,
    BackendState,
    Launch,
    NotRunningYet,
    ProgressEvent,
    ServerAddress,
    SpawnFailed,
)
from .cli import CliTransport
from .commands import JobInfo, JobSpec, NodeInfo, batch_script, job_account
from .profile import SlurmProfile
from .queue import JobStatus, Phase, SlurmQueue
from .rest import RestTransport, SlurmRest
from .transport import SlurmTransport, Submission

_NO_TIME = {"", "N/A", "Unknown", "None"}
_ENDINGS = {
    "OUT_OF_MEMORY": "ran out of memory (ask for more memory)",
    "TIMEOUT": "reached its time limit",
    "CANCELLED": "was cancelled",
    "FAILED": "failed",
    "NODE_FAIL": "lost its node",
    "BOOT_FAIL": "could not boot its node",
    "PREEMPTED": "was preempted by another job",
    "DEADLINE": "missed its deadline",
    "COMPLETED": "exited",
    "COMPLETING": "ended",  # a cancelled job lists as COMPLETING too, for a moment
}


class SlurmState(BackendState):
    """A server's Slurm job: found by its comment until sbatch answered, by its id after.

    Version 1 (releases up to 055a6f9) was saved once, after sbatch: job_id, username, log.
    """

    version: ClassVar[int] = 2

    username: str = Field(pattern=f"^{UNIX_NAME.pattern}$")
    comment: str = Field("", pattern=r"^(jupyterhub-daas-[0-9a-f]{16})?$")
    job_id: str | None = Field(None, pattern=r"^[0-9]+$")
    log: str = ""

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:
            return {"username": data.get("username"), "job_id": data.get("job_id"), "log": data.get("log", "")}
        return super().migrate(data, version)

    @property
    def job(self) -> str:
        """The job id of a start that got past sbatch (every call but poll and stop has one)."""
        if self.job_id is None:
            raise ValueError("this server's job was not submitted yet")
        return self.job_id


def _ending(status: JobStatus) -> str:
    """How an ended job ended, in a scientist's words."""
    if status.info is None:
        return "left the queue"
    return _ENDINGS.get(status.info.state, f"ended ({status.info.state.lower()})")


class SlurmBackend(Backend[SlurmState]):
    """Runs each single-user server as a Slurm batch job submitted as the user."""

    name = "slurm"
    profile_class = SlurmProfile
    state_class = SlurmState

    transport = Enum(
        ["cli", "rest"],
        "cli",
        config=True,
        help="""How the hub talks to Slurm. "cli": Slurm's commands on a submit host, sbatch and
        scancel through `user_prefix` (sudo), munge and slurm.conf there. "rest": slurmrestd over
        HTTP with a short-lived token per person (`c.SlurmRest`): no sudo, munge or Slurm
        installation on the hub's host, for hubs in a pod or on a locked-down VM. Same jobs,
        same messages either way.""",
    )
    rest = Instance(SlurmRest, help="The REST transport's settings (`c.SlurmRest`).")

    @default("rest")
    def _rest_default(self) -> SlurmRest:
        return SlurmRest(parent=self)

    slurm_bin_dir = Unicode(
        "/usr/bin",
        config=True,
        help="""Directory holding sbatch, squeue, scancel, sinfo and scontrol (the "cli" transport).
        Absolute, because sudo resets PATH.""",
    )
    user_prefix = List(
        Unicode(),
        config=True,
        help="""Argv prefix that runs sbatch and scancel as the user ("cli" transport); `{username}` is replaced.

        Default: `c.UserAccounts.user_prefix` (`sudo -n -u {username} --`), which the services use
        too. A hub running as root can keep it; an unprivileged hub needs a sudo rule allowing
        exactly `sbatch` and `scancel` as the target users (see the README). Use [] only when the
        hub itself is the job owner (single-user test setups).""",
    )

    @default("user_prefix")
    def _user_prefix_default(self) -> list[str]:
        return list(self.user_accounts.user_prefix)

    job_name = Unicode(
        "jupyterhub-daas",
        config=True,
        help="Slurm job name of every server job. The shared job-list query selects jobs by this name.",
    )
    working_dir = Unicode(
        "{home}",
        config=True,
        help="Job working directory (--chdir); `{username}` and `{home}` are replaced.",
    )
    output = Unicode(
        "jupyterhub-daas-%j.log",
        config=True,
        help="Job output file (--output), relative to working_dir unless absolute; %j is the job id.",
    )
    account_template = Unicode(
        "{proposal}",
        config=True,
        help="""Slurm account of a job that works for a proposal, when its profile names no account;
        `{proposal}` is the proposal id (e.g. "p{proposal}" for accounts named p20231234). Empty:
        such jobs use Slurm's default account.""",
    )
    server_bind_ip = Unicode(
        "0.0.0.0",  # noqa: S104 (the hub reaches the server on the node's address)
        config=True,
        help="Address the server listens on inside the job (DAAS_BIND_IP).",
    )
    poll_interval = Float(
        30.0,
        config=True,
        help="Seconds between the hub's batched job-list queries (squeue, or GET /jobs) while servers only run.",
    )
    busy_interval = Float(
        1.0,
        config=True,
        help="Seconds between batched queries while some start or stop is waiting (still one query for all).",
    )
    command_timeout = Float(
        20.0,
        config=True,
        help="Seconds before a scheduler command counts as failed (a hung controller).",
    )
    ping_timeout = Float(
        3.0,
        config=True,
        help="""Seconds a spawn waits for `scontrol ping` before it submits (0: no ping).

        With the controller down, sbatch takes its own retries (10-20 s) to fail; the ping fails at
        once, so the user reads "Slurm is not answering" within seconds. Concurrent spawns share one
        ping, and its answer holds for busy_interval seconds.""",
    )
    stop_timeout = Float(
        60.0,
        config=True,
        help="Seconds to wait after the cancel until the job has left the node.",
    )
    availability_ttl = Float(
        30.0,
        config=True,
        help="""Seconds one cluster-availability view (one sinfo, or GET /nodes + /partitions) stays current.

        All viewers and the spawn path share that view: at most one query per ttl for the whole
        hub, whatever the number of users, and a failed one is retried after ttl at the earliest.""",
    )
    availability_first_wait = Float(
        1.0,
        config=True,
        help="Seconds the very first availability request waits for the first query; later ones never wait.",
    )

    @validate("account_template")
    def _valid_account_template(self, proposal: Any) -> str:
        try:
            return check_account_template(proposal.value) if proposal.value else proposal.value
        except ValueError as err:
            raise TraitError(f"account_template {proposal.value!r}: {err}") from None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.slurm = self._transport()
        self.queue = SlurmQueue(self._listed_jobs, interval=self.poll_interval, busy_interval=self.busy_interval)
        self.controller = SharedQuery(self._controller_up, ttl=self.busy_interval)
        self._nodes: dict[str, NodeInfo] = {}
        self._nodes_query = SharedQuery(self._timed(self.slurm.nodes, "nodes"), ttl=0)
        self._report_queries: dict[str, float] = {}  # job id -> when its last report queried Slurm
        self._cleanups: set[asyncio.Task] = set()  # cancelling what cut-off submissions left
        self.availability_cache = AvailabilityCache(
            self._timed(self.slurm.availability, "availability"),
            ttl=self.availability_ttl,
            first_wait=self.availability_first_wait,
        )
        metrics.watch_age(self.name, "jobs", lambda: self.queue.age)
        metrics.watch_age(self.name, "availability", lambda: self.availability_cache.age)

    def _timed(self, query: Callable[[], Awaitable[Any]], name: str) -> Callable[[], Awaitable[Any]]:
        """A shared read with its duration and failures in the hub's metrics."""
        return metrics.timed_query(query, self.name, self.transport, name)

    async def _listed_jobs(self) -> dict[str, JobInfo]:
        """The shared job list (one query for the hub); its pending jobs' reasons go to the metrics."""
        jobs = await self._timed(self.slurm.jobs, "jobs")()
        metrics.record_pending(self.name, (info.reason for info in jobs.values() if info.pending))
        return jobs

    def _transport(self) -> SlurmTransport:
        timeouts = {"job_name": self.job_name, "timeout": self.command_timeout, "ping_timeout": self.ping_timeout}
        if self.transport == "rest":
            return RestTransport(self.rest, **timeouts)
        return CliTransport(bin_dir=self.slurm_bin_dir, user_prefix=self.user_prefix, **timeouts)

    async def _controller_up(self) -> bool:
        try:
            return await self._timed(self.slurm.ping, "ping")()
        except CommandFailed as err:
            self.log.warning("Slurm controller not answering: %s", err)
            return False

    async def _node(self, name: str) -> NodeInfo | None:
        """The node's addresses; an unknown name refreshes the list with one query shared by all who ask."""
        if name not in self._nodes:
            self._nodes = await self._nodes_query.get()
        return self._nodes.get(name)

    async def availability(self, profiles: Sequence[Profile]) -> dict[str, Any]:
        """Free cores, GPUs, memory and nodes of these profiles' partitions, from the shared cache (never raises)."""
        partitions = {
            name for profile in profiles if isinstance(profile, SlurmProfile) for name in profile.resources.partitions
        }
        return (await self.availability_cache.snapshot()).only(partitions).as_dict()

    # -- life of the backend -----------------------------------------------------------

    async def setup(self) -> None:
        """Refuse at once, saying what is missing, when the transport cannot work (no commands, no key)."""
        await self.slurm.check()

    async def close(self) -> None:
        """Stop the shared queue loop and the availability query, then the transport; jobs keep running."""
        for task in list(self._cleanups):
            task.cancel()
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        await self.queue.close()
        await self.availability_cache.close()
        await self.slurm.close()

    # -- start ---------------------------------------------------------------------------

    async def start(self, launch: Launch, resume: SlurmState | None = None) -> AsyncIterator[SlurmState]:
        username = launch.username
        if resume is not None and resume.job_id is not None:
            self.queue.track(resume.job_id)  # submitted before this hub started: any view of it counts
            self.log.info("Re-attached %s to Slurm job %s", launch.server, resume.job_id)
            yield resume
            return
        home = self.account(username).pw_dir
        working_dir = self.working_dir.replace("{username}", username).replace("{home}", home)
        output = self.output if self.output.startswith("/") else os.path.join(working_dir, self.output)
        # A comment known before submission finds the job of an sbatch cut off before it answered,
        # in this hub (a failed sbatch) or in the next (a hub killed during sbatch).
        comment = resume.comment if resume is not None and resume.comment else f"jupyterhub-daas-{secrets.token_hex(8)}"
        if resume is not None:
            looked = time.monotonic()
            found = await self._find_resumed(username, comment)
            if found is not None:
                self.queue.track(found, submitted_at=looked)  # views from before the lookup may not know it
                self.log.info("Re-attached %s to Slurm job %s, found by its comment", launch.server, found)
                yield SlurmState(username=username, comment=comment, job_id=found, log=output.replace("%j", found))
                return
        env = {
            **launch.env,
            BOOTSTRAP_ENV: launch.bootstrap,  # the script is kept and shown to operators: no token in it
            "DAAS_BIND_IP": self.server_bind_ip,
            "DAAS_PROFILE": launch.options.profile.id,
            "DAAS_OPTIONS": json.dumps(launch.options.summary(), sort_keys=True),
        }
        spec = JobSpec(
            username=username,
            job_name=self.job_name,
            working_dir=working_dir,
            output=output,
            account=job_account(launch.options, self.account_template),
            env=env,
            command=launch.command,
            mounts=launch.mounts,
        )
        try:
            script = batch_script(launch.options, spec)
        except ValueError as err:
            raise SpawnFailed(f"cannot write this server's job script: {err}") from None
        if self.ping_timeout and not await self.controller.get():
            raise SpawnFailed(f"{self.slurm.peer} is not answering (a ping got no answer); please try again later")
        yield SlurmState(username=username, comment=comment)  # stored before the submission may make a job
        try:
            submission = Submission(launch.options, spec, script, comment, home)
            job_id = await self.slurm.submit(submission)
            # Only a query that starts after the submission returned must list the job: earlier
            # ones (even ones started while it ran) may not know it yet.
            submitted_at = time.monotonic()
        except CommandFailed as err:
            self._cancel_submitted(username, comment)  # it may have answered oddly after submitting
            if err.timed_out:
                raise SpawnFailed(f"Slurm is not answering ({err}); please try again in a few minutes") from None
            raise SpawnFailed(f"Slurm did not accept the job: {err}") from None
        self.log.info("Submitted %s as Slurm job %s", launch.server, job_id)
        self.queue.track(job_id, submitted_at=submitted_at)
        yield SlurmState(username=username, comment=comment, job_id=job_id, log=output.replace("%j", job_id))

    async def _find_resumed(self, username: str, comment: str) -> str | None:
        """The job a cut-off sbatch submitted, if any; a second one (never expected) is cancelled."""
        looked = time.monotonic()
        try:
            found = await self._jobs_by_comment(comment)
        except CommandFailed as err:
            raise SpawnFailed(f"Slurm is not answering ({err}); please try again in a few minutes") from None
        for extra in found[1:]:
            await self._stop_job(username, extra, seen_at=looked)
        return found[0] if found else None

    async def _jobs_by_comment(self, comment: str) -> list[str]:
        return await self.slurm.jobs_with_comment(comment)

    def _cancel_submitted(self, username: str, comment: str) -> None:
        """In the background: cancel any job a submission that failed or timed out may have made all the same."""
        task = asyncio.ensure_future(self._cancel_by_comment(username, comment))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _cancel_by_comment(self, username: str, comment: str) -> None:
        """Look the job up by its comment and cancel it as the user; retried until Slurm answers, for stop_timeout."""
        deadline = time.monotonic() + self.stop_timeout
        while True:
            try:
                for job_id in await self._jobs_by_comment(comment):
                    self.log.warning(
                        "Cancelling Slurm job %s of %s, left by a submission that failed", job_id, username
                    )
                    await self.slurm.cancel(username, job_id)
                return
            except CommandFailed as err:
                if time.monotonic() >= deadline:
                    self.log.error(
                        "Could not check for a job left by a failed submission of %s (%s): %s", username, comment, err
                    )
                    return
                self.log.warning("Checking for a job left by a failed submission of %s, will retry: %s", username, err)
                await asyncio.sleep(self.busy_interval)

    async def wait_for_address(
        self, state: SlurmState, reported: Awaitable[ServerAddress], redeemed: asyncio.Event
    ) -> ServerAddress:
        job_id = state.job
        reported = asyncio.ensure_future(reported)
        async with self.queue.hurry(job_id):
            while not reported.done():
                status = self.queue.status(job_id)
                if status.ended:
                    raise SpawnFailed(self._ended_message(state, status))
                changed = asyncio.ensure_future(self.queue.changed())
                await asyncio.wait({reported, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
        return reported.result()

    async def check_report(self, state: SlurmState, address: ServerAddress) -> ServerAddress:
        """Route only to the node Slurm runs this job on, whatever the job claims."""
        job_id = state.job
        status = self.queue.status(job_id)
        if status.phase is not Phase.ACTIVE:
            await self._newer_view(job_id)
            status = self.queue.status(job_id)
        if status.phase is not Phase.ACTIVE or status.info is None:
            raise NotRunningYet(f"job {job_id} is not running yet")
        self._report_queries.pop(job_id, None)
        try:
            node = await self._node(status.info.nodes)
        except CommandFailed as err:
            raise ValueError(f"cannot look up node {status.info.nodes}: {err}") from None
        if node is None or address.host not in {node.name, node.hostname, node.address}:
            raise ValueError(f"host {address.host!r} is not the node running job {job_id}")
        return ServerAddress(node.address, address.port)

    async def _newer_view(self, job_id: str) -> None:
        """A view of the queue newer than this report, for a job the last view shows not running.

        A job's launcher reports just after the job starts, so its first report queries Slurm at once
        (the server waits on it). Further reports of the same job within busy_interval wait for the
        queue's next view (busy while the start waits): a job that keeps reporting cannot make the hub
        run squeue faster than that.
        """
        now = time.monotonic()
        if now - self._report_queries.get(job_id, -self.busy_interval) >= self.busy_interval:
            self._report_queries[job_id] = now
            with contextlib.suppress(CommandFailed):
                await self.queue.refresh()
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.changed(), self.busy_interval + self.command_timeout)

    # -- watch ---------------------------------------------------------------------------

    async def poll(self, state: SlurmState) -> int | None:
        if state.job_id is None:
            return None  # sbatch has not answered (in this hub or the last): the start or stop decides
        job_id = state.job_id
        self.queue.track(job_id)
        status = await self.queue.current_status(job_id)
        if not status.ended:
            return None
        return 0 if status.info is not None and status.info.state == "COMPLETED" else 1

    def watch(self, state: SlurmState, on_end: Callable[[str], None]) -> Callable[[], None]:
        if state.job_id is None:
            return lambda: None
        job_id = state.job_id
        self.queue.track(job_id)

        def ended() -> None:
            why = self._ended_running_message(state, self.queue.status(job_id))
            self.log.warning("%s", why)
            on_end(why)

        return self.queue.on_end(job_id, ended)

    async def progress(self, state: SlurmState) -> AsyncIterator[ProgressEvent]:
        job_id = state.job
        yield ProgressEvent(20, f"Submitted as Slurm job {job_id}")
        shown = ""
        while True:
            status = self.queue.status(job_id)
            message = self._describe(job_id, status)
            if message != shown:
                shown = message
                yield ProgressEvent(40 if status.phase is not Phase.ACTIVE else 70, message)
            if status.phase in (Phase.ACTIVE, Phase.ENDED):
                return
            await self.queue.changed()

    @staticmethod
    def _describe(job_id: str, status: JobStatus) -> str:
        info = status.info
        if status.phase is Phase.ACTIVE and info is not None:
            return f"Job {job_id} running on {info.nodes}; starting the server"
        if status.phase is Phase.PENDING and info is not None:
            message = f"Job {job_id} pending"
            if info.reason and info.reason != "None":
                message += f" (reason: {info.reason})"
            if info.start_time not in _NO_TIME:
                message += f", expected start {info.start_time}"
            return message
        if status.phase is Phase.ENDED:
            return f"Job {job_id} ended"
        return f"Job {job_id} submitted; waiting for Slurm"

    @staticmethod
    def _ended_message(state: SlurmState, status: JobStatus) -> str:
        """Why the job ended, in words a scientist understands, and where its log is."""
        what = _ending(status)
        if status.info is not None and status.info.reason not in ("", "None"):
            what += f" [{status.info.reason}]"
        return f"Slurm job {state.job_id} {what} before the server started; see the job log at {state.log}"

    @staticmethod
    def _ended_running_message(state: SlurmState, status: JobStatus) -> str:
        """Why a running server's job ended without the hub stopping it (node failure, scancel, time limit)."""
        what = _ending(status)
        if status.info is not None and status.info.state == "NODE_FAIL":
            what += "; your work since the last save is lost, start a new server"
        return f"Your server's Slurm job {state.job_id} {what}; see the job log at {state.log}"

    # -- stop ----------------------------------------------------------------------------

    async def stop(self, state: SlurmState) -> None:
        if state.job_id is not None:
            await self._stop_job(state.username, state.job_id)
            return
        if not state.comment:
            return
        # A start cut off around sbatch: whatever job it made is found by its comment.
        looked = time.monotonic()
        try:
            found = await self._jobs_by_comment(state.comment)
        except CommandFailed as err:
            raise SpawnFailed(f"cannot check Slurm for the job of a cut-off start ({err}); it may remain") from None
        for job_id in found:
            await self._stop_job(state.username, job_id, seen_at=looked)

    async def _stop_job(self, username: str, job_id: str, seen_at: float = 0.0) -> None:
        """Cancel as the user until the job is gone; bounded by stop_timeout.

        `seen_at`: when the job was last known to exist (a queue view from before then does not count).
        """
        self._report_queries.pop(job_id, None)
        self.queue.track(job_id, submitted_at=seen_at)
        deadline = time.monotonic() + self.stop_timeout
        cancelled = False
        async with self.queue.hurry(job_id):
            while not self._gone(self.queue.status(job_id)):
                if not cancelled:
                    try:
                        await self.slurm.cancel(username, job_id)
                        cancelled = True
                    except CommandFailed as err:
                        self.log.warning("Cancelling Slurm job %s failed, will retry: %s", job_id, err)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.queue.untrack(job_id)
                    raise SpawnFailed(
                        f"Slurm job {job_id} still present {self.stop_timeout:g} s after it was cancelled"
                    )
                try:
                    await asyncio.wait_for(self.queue.changed(), remaining)
                except asyncio.TimeoutError:
                    pass
        self.queue.untrack(job_id)

    @staticmethod
    def _gone(status: JobStatus) -> bool:
        return status.ended and (status.info is None or status.info.state != "COMPLETING")
