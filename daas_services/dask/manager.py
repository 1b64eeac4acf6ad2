"""Cluster lifecycle on the service side: every Slurm job of a cluster is the service's own submission.

The scheduler runs in a Slurm job of its own (as the owner, on a compute node), never on the
hub host. The service makes the cluster's TLS credentials and hands them to that job once,
against a one-time secret; it accepts the job's report of its ports only when Slurm says
where the job runs and a connection with the service's own credentials proves it is this
cluster's scheduler. Workers are Slurm jobs the service submits with resources from the
site's limits; the scheduler only says how many it would like (adaptive), the service caps
that at the cluster's limit and submits or cancels. Ending a cluster cancels every job id
the service submitted (and, for a submission whose answer was lost, the cluster's job names).
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from distributed.core import rpc
from distributed.security import Security
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from daas_core.accounts import AccountPolicy, AccountRefused, as_user
from daas_core.commands import CommandFailed, run_command

from .jobs import (
    JobResources,
    sbatch_argv,
    scheduler_job_name,
    scheduler_script,
    worker_job_name,
    worker_script,
)
from .limits import ResolvedCluster
from .records import ClusterRecord, ClusterRecords

log = logging.getLogger("daas-dask")

SCHEDULER_TIMEOUT = 30.0
# squeue states of a job that still holds or waits for a node (others: it has ended).
QUEUED_STATES = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "RESIZING", "UNKNOWN"}


class ClusterError(Exception):
    """A cluster operation that failed; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ReadyReport(BaseModel):
    """All a scheduler job may tell the service: its two ports (the host comes from Slurm)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    port: int = Field(ge=1, le=65535)
    dashboard_port: int = Field(ge=1, le=65535)


@dataclass
class Starting:
    """A cluster whose scheduler job has not reported yet: its secret and the report's outcome."""

    secret: str
    address: asyncio.Future[tuple[str, int]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class SchedulerJobSettings:
    """Where and how big scheduler jobs are: the site's choice (e.g. a QOS that starts them at once)."""

    partition: str | None = None  # None: the cluster's own partition
    qos: str | None = None
    cores: int = 1
    memory_mb: int = 1024


def security(tls: dict[str, str]) -> Security:
    """The cluster's credentials (PEM text) as distributed's Security, for the service's side."""
    return Security(
        tls_ca_file=tls["ca"], tls_client_cert=tls["cert"], tls_client_key=tls["key"], require_encryption=True
    )


def check_report(raw: Any) -> ReadyReport:
    try:
        return ReadyReport.model_validate(raw)
    except ValidationError as err:
        raise ClusterError(400, f"the report holds two ports and nothing else ({err.error_count()} errors)") from None


class ClusterManager:
    """Starts, steers and ends clusters; one per service."""

    def __init__(
        self,
        records: ClusterRecords,
        user_prefix: Sequence[str],
        *,
        service_url: str,
        workdir_template: str = "{home}/.daas-dask/{cluster}",
        python: str = sys.executable,
        interface: str | None = None,
        dashboard_prefix: str = "/services/daas-dask/dashboard/",
        scheduler_job: SchedulerJobSettings | None = None,
        start_timeout: float = 120.0,
        control_timeout: float = 10.0,
        stop_timeout: float = 60.0,
        death_timeout: int = 60,
        slurm_bin_dir: str = "/usr/bin",
        accounts: AccountPolicy | None = None,
    ) -> None:
        self.records = records
        self.accounts = accounts or AccountPolicy.default()
        self.user_prefix = list(user_prefix)
        self.service_url = service_url.rstrip("/") + "/"
        self.workdir_template = workdir_template
        self.python = python
        self.interface = interface
        self.dashboard_prefix = dashboard_prefix
        self.scheduler_job = scheduler_job or SchedulerJobSettings()
        self.start_timeout = start_timeout
        self.control_timeout = control_timeout
        self.stop_timeout = stop_timeout
        self.death_timeout = death_timeout
        self.slurm_bin_dir = slurm_bin_dir
        self._starting: dict[str, Starting] = {}
        self._security: dict[str, Security] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _bin(self, name: str) -> str:
        return f"{self.slurm_bin_dir.rstrip('/')}/{name}"

    def account(self, username: str) -> pwd.struct_passwd:
        """The owner's Unix account, if the service may act as it (never root or a daemon)."""
        try:
            return self.accounts.check(username)
        except AccountRefused as err:
            raise ClusterError(403, f"the service does not act as this account: {err}") from None

    def _as_user(self, username: str, argv: list[str]) -> list[str]:
        self.account(username)
        return as_user(self.user_prefix, username, argv)

    def workdir(self, record: ClusterRecord) -> str:
        home = self.account(record.username).pw_dir
        return self.workdir_template.format(home=home, username=record.username, cluster=record.id)

    def security(self, record: ClusterRecord) -> Security:
        """The service's copy of a cluster's credentials (never read back from the cluster)."""
        if record.id not in self._security:
            if not record.tls:
                raise ClusterError(409, "the cluster has no credentials")
            self._security[record.id] = security(record.tls)
        return self._security[record.id]

    async def _submit(self, record: ClusterRecord, resources: JobResources, script: str) -> str:
        argv = self._as_user(record.username, sbatch_argv(self._bin("sbatch"), resources))
        try:
            result = await run_command(argv, timeout=SCHEDULER_TIMEOUT, stdin=script, name="sbatch")
        except CommandFailed as err:
            log.error("cluster %s: %s", record.id, err)
            raise ClusterError(502, "Slurm did not take the cluster's job") from None
        return result.stdout.strip().split(";")[0]

    # -- start ---------------------------------------------------------------------------

    async def start(self, username: str, resolved: ResolvedCluster) -> ClusterRecord:
        self.account(username)  # refused before anything is recorded or submitted
        cluster_id = secrets.token_hex(8)
        made = Security.temporary()  # this cluster's own key: only its holders reach its scheduler
        record = ClusterRecord(
            id=cluster_id,
            username=username,
            status="starting",
            job_name=worker_job_name(cluster_id),
            resolved=resolved.model_dump(),
            tls={"ca": made.tls_ca_file, "cert": made.tls_client_cert, "key": made.tls_client_key},
        )
        self.records.save(record)  # before anything runs: a crash from here on is cleaned up
        starting = self._starting[cluster_id] = Starting(secrets.token_urlsafe(32))
        try:
            await self._start_scheduler(record, starting)
            record.scheduler_address, record.dashboard_port = await self._wait_ready(record, starting)
        except ClusterError as err:
            await self._cleanup(record, f"did not start: {err}", status="failed")
            raise
        finally:
            self._starting.pop(cluster_id, None)
        record.status = "running"
        self.records.save(record)
        log.info("cluster %s of %s runs at %s", cluster_id, username, record.scheduler_address)
        adapt = resolved.adapt
        try:
            return await self.steer(record, resolved.workers if adapt is None else None, adapt and adapt.model_dump())
        except ClusterError as err:
            await self._cleanup(record, f"did not start: {err}", status="failed")
            raise

    async def _start_scheduler(self, record: ClusterRecord, starting: Starting) -> None:
        resolved = record.resolved
        workdir = self.workdir(record)
        try:
            mkdir = self._as_user(record.username, ["mkdir", "-p", "-m", "0700", workdir])
            await run_command(mkdir, timeout=SCHEDULER_TIMEOUT, name="mkdir")
        except CommandFailed as err:
            log.error("cluster %s: %s", record.id, err)
            raise ClusterError(502, "the cluster's folder could not be made for this user") from None
        settings = self.scheduler_job
        resources = JobResources(
            job_name=scheduler_job_name(record.id),
            partition=settings.partition or resolved["partition"],
            account=resolved["account"],
            qos=settings.qos,
            cores=settings.cores,
            memory_mb=settings.memory_mb,
            walltime_seconds=resolved["walltime_seconds"],
            workdir=workdir,
            output=f"{workdir}/scheduler.log",
        )
        script = scheduler_script(
            self.python,
            record.id,
            workdir,
            self.service_url,
            starting.secret,
            resolved["idle_timeout"],
            f"{self.dashboard_prefix}{record.id}",
            self.interface,
        )
        record.scheduler_job = await self._submit(record, resources, script)
        self.records.save(record)

    async def _wait_ready(self, record: ClusterRecord, starting: Starting) -> tuple[str, int]:
        """The accepted report; the wait ends early if the scheduler job leaves the queue."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                return await asyncio.wait_for(asyncio.shield(starting.address), 2.0)
            except asyncio.TimeoutError:
                pass
            if await self._job_state(record.scheduler_job) is None:
                raise ClusterError(502, "the cluster's scheduler job ended before it reported (see scheduler.log)")
        raise ClusterError(504, "the cluster's scheduler did not start in time")

    def _starting_for(self, cluster_id: str, secret: str | None) -> Starting:
        starting = self._starting.get(cluster_id)
        given = (secret or "").encode()
        if starting is None or not given or not secrets.compare_digest(starting.secret.encode(), given):
            raise ClusterError(403, "no starting cluster has this secret")
        return starting

    def bootstrap(self, cluster_id: str, secret: str | None) -> dict[str, str]:
        """The credentials for the scheduler job that holds the cluster's secret (until it reports)."""
        self._starting_for(cluster_id, secret)
        record = self.records.get(cluster_id)
        if record is None or not record.tls:
            raise ClusterError(403, "no starting cluster has this secret")
        return record.tls

    async def report(self, cluster_id: str, secret: str | None, raw: Any) -> None:
        """Accept a scheduler's ports only if they lead to this cluster's scheduler on the job's node."""
        starting = self._starting_for(cluster_id, secret)
        report = check_report(raw)
        record = self.records.get(cluster_id)
        assert record is not None  # the record is saved before the secret exists
        host = await self._job_host(record.scheduler_job)
        address = f"tls://{host}:{report.port}"
        try:
            await self._verify(record, address, host, report.dashboard_port)
        except (OSError, asyncio.TimeoutError, ValueError, KeyError) as err:
            log.warning("cluster %s: refused the report %s (%s)", cluster_id, report, type(err).__name__)
            raise ClusterError(400, "the reported ports are not this cluster's scheduler on its job's node") from None
        if not starting.address.done():
            starting.address.set_result((address, report.dashboard_port))
        self._starting.pop(cluster_id, None)  # the secret is spent

    async def _verify(self, record: ClusterRecord, address: str, host: str, dashboard_port: int) -> None:
        """Both ports answer with this cluster's certificate (and accept the service's): nothing else's."""
        async with rpc(address, connection_args=self.security(record).get_connection_args("client")) as scheduler:
            identity = await asyncio.wait_for(scheduler.identity(), self.control_timeout)
        if identity.get("type") != "Scheduler":
            raise ValueError("not a scheduler")
        health = f"https://{host}:{dashboard_port}{self.dashboard_prefix}{record.id}/health"
        request = HTTPRequest(health, ssl_options=self.dashboard_tls(record), request_timeout=self.control_timeout)
        await AsyncHTTPClient().fetch(request)

    def dashboard_tls(self, record: ClusterRecord) -> Any:
        """TLS to a dashboard: trusts the cluster's certificate only, shows the service's (it is required)."""
        return self.security(record).get_connection_args("client")["ssl_context"]

    @staticmethod
    def dashboard_url(record: ClusterRecord, path: str, scheme: str = "https") -> str:
        """A dashboard URL on the scheduler's node (the host the service took from Slurm)."""
        assert record.scheduler_address is not None
        host = record.scheduler_address.removeprefix("tls://").rsplit(":", 1)[0]
        return f"{scheme}://{host}:{record.dashboard_port}{path}"

    async def _job_state(self, job: str | None) -> tuple[str, str] | None:
        """(state, node) of a job while Slurm lists it; None once it has left (a failed query: unknown)."""
        if job is None:
            return None
        squeue = [self._bin("squeue"), "--noheader", f"--jobs={job}", "--format=%T %N"]
        try:
            output = (await run_command(squeue, timeout=SCHEDULER_TIMEOUT)).stdout.split()
        except CommandFailed as err:
            if "Invalid job id" in err.stderr:
                return None
            log.warning("%s", err)
            return ("UNKNOWN", "")
        if not output or output[0] not in QUEUED_STATES:
            return None
        return output[0], output[1] if len(output) > 1 else ""

    async def _job_host(self, job: str | None) -> str:
        """The address of the node Slurm runs the job on: where its scheduler must be."""
        state = await self._job_state(job)
        if state is None or state[0] != "RUNNING" or not state[1]:
            raise ClusterError(409, "the cluster's scheduler job is not running")
        sinfo = [self._bin("sinfo"), "--noheader", "--Node", f"--nodes={state[1]}", "--format=%o"]
        try:
            addresses = (await run_command(sinfo, timeout=SCHEDULER_TIMEOUT)).stdout.split()
        except CommandFailed as err:
            log.warning("%s", err)
            raise ClusterError(503, "Slurm did not say where the scheduler runs") from None
        if not addresses:
            raise ClusterError(503, "Slurm did not say where the scheduler runs")
        return addresses[0]

    # -- steer ---------------------------------------------------------------------------

    async def call(self, record: ClusterRecord, op: str, **kwargs: Any) -> Any:
        """One handler call on the cluster's scheduler, over its TLS comm."""
        if record.scheduler_address is None:
            raise ClusterError(409, "the cluster has no scheduler yet")
        args = self.security(record).get_connection_args("client")
        try:
            async with rpc(record.scheduler_address, connection_args=args) as scheduler:
                return await asyncio.wait_for(getattr(scheduler, op)(**kwargs), self.control_timeout)
        except (OSError, asyncio.TimeoutError) as err:
            raise ClusterError(503, f"the cluster's scheduler is not answering ({type(err).__name__})") from None

    async def info(self, record: ClusterRecord) -> dict[str, Any] | None:
        """Live figures, or None when the scheduler does not answer."""
        if record.status != "running" or record.scheduler_address is None:
            return None
        try:
            identity = await self.call(record, "identity")
        except ClusterError:
            return None
        workers = identity.get("workers", {}).values()
        return {
            "workers": len(workers),
            "cores": sum(worker.get("nthreads", 0) for worker in workers),
            "memory": sum(worker.get("memory_limit") or 0 for worker in workers),
            "jobs": len(record.worker_jobs),
            "requested": record.requested,
        }

    async def steer(self, record: ClusterRecord, workers: int | None, adapt: dict[str, int] | None) -> ClusterRecord:
        """A fixed size or adaptive bounds, already checked against the cluster's limit; applied now."""
        return await self.apply(record.id, {"workers": workers, "adapt": adapt})

    async def apply(self, cluster_id: str, requested: dict[str, Any] | None = None) -> ClusterRecord:
        """Submit or cancel worker jobs towards the wanted count, never above the cluster's max_workers.

        One change at a time per cluster, on the stored record: job ids are never lost to a stale copy.
        """
        async with self._locks.setdefault(cluster_id, asyncio.Lock()):
            record = self.records.get(cluster_id)
            assert record is not None
            if record.status != "running":
                return record
            if requested is not None:
                record.requested = requested
            wanted = await self._wanted(record)
            live = await self._live(record)
            record.worker_jobs = live
            if len(live) < wanted:
                for _ in range(wanted - len(live)):
                    record.worker_jobs.append(await self._submit_worker(record))
                    self.records.save(record)
            elif len(live) > wanted:
                await self._scancel(record, live[wanted:])  # the newest: most likely still pending
                record.worker_jobs = live[:wanted]
            self.records.save(record)
            return record

    async def _wanted(self, record: ClusterRecord) -> int:
        requested = record.requested or {"workers": 0, "adapt": None}
        cap = record.resolved["max_workers"]
        if requested.get("adapt"):
            bounds = requested["adapt"]
            try:
                target = int(await self.call(record, "adaptive_target"))
            except (ClusterError, TypeError, ValueError):
                target = len(record.worker_jobs)  # no answer: keep what runs
            return min(max(target, bounds["minimum"]), bounds["maximum"], cap)
        return min(requested.get("workers") or 0, cap)

    async def _submit_worker(self, record: ClusterRecord) -> str:
        resolved = record.resolved
        workdir = self.workdir(record)
        resources = JobResources(
            job_name=record.job_name,
            partition=resolved["partition"],
            account=resolved["account"],
            qos=None,
            cores=resolved["cores"],
            memory_mb=resolved["memory_mb"],
            walltime_seconds=resolved["walltime_seconds"],
            workdir=workdir,
            output=f"{workdir}/worker-%j.log",
        )
        assert record.scheduler_address is not None
        script = worker_script(
            self.python,
            record.scheduler_address,
            workdir,
            resolved["cores"],
            resolved["memory_mb"],
            self.death_timeout,
            self.interface,
        )
        return await self._submit(record, resources, script)

    async def _live(self, record: ClusterRecord) -> list[str]:
        """The cluster's worker jobs Slurm still lists, in submission order."""
        listed = await self._listed(record.username)
        return [job for job in record.worker_jobs if listed is None or job in listed]

    async def _listed(self, username: str) -> set[str] | None:
        """The owner's job ids in the queue; None if Slurm did not answer."""
        squeue = [self._bin("squeue"), "--noheader", f"--user={username}", "--format=%i"]
        try:
            return set((await run_command(squeue, timeout=SCHEDULER_TIMEOUT)).stdout.split())
        except CommandFailed as err:
            log.warning("%s", err)
            return None

    async def _scancel(self, record: ClusterRecord, jobs: list[str], by_name: bool = False) -> None:
        names = [f"--name={record.job_name}", f"--name={scheduler_job_name(record.id)}"] if by_name else []
        for selection in ([jobs] if jobs else []) + [[name] for name in names]:
            try:
                scancel = self._as_user(record.username, [self._bin("scancel"), *selection])
                await run_command(scancel, timeout=SCHEDULER_TIMEOUT, name="scancel")
            except (CommandFailed, ClusterError) as err:  # an account refused never had jobs submitted
                log.warning("cluster %s: %s", record.id, err)

    # -- end -----------------------------------------------------------------------------

    async def stop(self, record: ClusterRecord, reason: str = "stopped by its owner") -> ClusterRecord:
        if not record.active:
            return record
        record.status = "stopping"
        self.records.save(record)
        await self._cleanup(record, reason)
        return record

    async def _cleanup(self, record: ClusterRecord, reason: str, status: str = "stopped") -> None:
        """Cancel every job of the cluster and wait until Slurm lists none of them."""
        jobs = [job for job in [record.scheduler_job, *record.worker_jobs] if job]
        await self._scancel(record, jobs, by_name=True)
        started = time.monotonic()
        while True:
            listed = await self._listed(record.username)
            if listed is not None and not listed & set(jobs):
                break
            if time.monotonic() - started > self.stop_timeout:
                log.error("cluster %s: jobs %s are still listed", record.id, jobs)
                break
            await asyncio.sleep(1)
        record.status, record.message, record.ended = status, reason, time.time()
        self.records.save(record)
        self._security.pop(record.id, None)
        log.info("cluster %s of %s %s: %s", record.id, record.username, status, reason)

    async def reconcile(self) -> None:
        """At service start: clusters whose scheduler answers are re-attached, the others ended."""
        for record in self.records.active():
            if record.status == "running" and await self.info(record) is not None:
                log.info("cluster %s of %s re-attached", record.id, record.username)
                continue
            await self._cleanup(record, "its scheduler was gone when the service restarted")

    async def end_lost(self, record: ClusterRecord, reason: str) -> None:
        """A running cluster whose scheduler stopped answering (idle timeout, crash): no orphans."""
        await self._cleanup(record, reason)
