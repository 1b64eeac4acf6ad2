"""Cluster lifecycle on the service side: start a launcher as the user, steer it, end it, no orphans.

Starting runs `launcher.py` through the user prefix (argv, no shell) in its own session, so
clusters outlive a service restart; the service then finds them again through the records
and each scheduler's TLS handler. A cluster whose scheduler is gone has its worker jobs
cancelled by name (as the user) before it is marked stopped, whatever ended it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pwd
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

from distributed.core import rpc
from distributed.security import Security

from daas_spawner.accounts import AccountPolicy, AccountRefused
from daas_spawner.commands import CommandFailed, run_command
from daas_spawner.quantities import format_walltime

from .limits import ResolvedCluster
from .records import ClusterRecord, ClusterRecords

log = logging.getLogger("daas-dask")

SCHEDULER_TIMEOUT = 30.0
LAUNCHER = [sys.executable, "-I", "-m", "daas_services.dask.launcher"]


class ClusterError(Exception):
    """A cluster operation that failed; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ClusterManager:
    """Starts, steers and ends clusters; one per service."""

    def __init__(
        self,
        records: ClusterRecords,
        user_prefix: Sequence[str],
        *,
        workdir_template: str = "{home}/.daas-dask/{cluster}",
        worker_python: str = sys.executable,
        interface: str | None = None,
        scheduler_host: str = "0.0.0.0",  # noqa: S104 (TLS with client certificates guards it)
        dashboard_prefix: str = "/services/daas-dask/dashboard/",
        start_timeout: float = 120.0,
        control_timeout: float = 10.0,
        stop_timeout: float = 60.0,
        slurm_bin_dir: str = "/usr/bin",
        accounts: AccountPolicy | None = None,
    ) -> None:
        self.records = records
        self.accounts = accounts or AccountPolicy.default()
        self.user_prefix = list(user_prefix)
        self.workdir_template = workdir_template
        self.worker_python = worker_python
        self.interface = interface
        self.scheduler_host = scheduler_host
        self.dashboard_prefix = dashboard_prefix
        self.start_timeout = start_timeout
        self.control_timeout = control_timeout
        self.stop_timeout = stop_timeout
        self.slurm_bin_dir = slurm_bin_dir
        self._reaping: set[asyncio.Future[Any]] = set()

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
        return [part.replace("{username}", username) for part in self.user_prefix] + argv

    # -- start ---------------------------------------------------------------------------

    async def start(self, username: str, home: str, resolved: ResolvedCluster) -> ClusterRecord:
        cluster_id = secrets.token_hex(8)
        record = ClusterRecord(
            id=cluster_id,
            username=username,
            status="starting",
            job_name=f"daas-dask-{cluster_id}",
            resolved=resolved.model_dump(),
        )
        self.records.save(record)  # before anything runs: a crash from here on is cleaned up
        spec = {
            "cluster_id": cluster_id,
            "job_name": record.job_name,
            "workdir": self.workdir_template.format(home=home, username=username, cluster=cluster_id),
            "resolved": record.resolved,
            "walltime": format_walltime(resolved.walltime_seconds),
            "worker_python": self.worker_python,
            "interface": self.interface,
            "scheduler_host": self.scheduler_host,
            "dashboard_prefix": f"{self.dashboard_prefix}{cluster_id}",
            "scancel": self._bin("scancel"),
        }
        try:
            ready = await self._launch(username, spec)
        except ClusterError as err:
            await self._cleanup(record, f"did not start: {err}", status="failed", grace=0)
            raise
        record.scheduler_address = ready["scheduler_address"]
        record.dashboard_port = ready["dashboard_port"]
        record.tls = ready["tls"]
        record.status = "running"
        self.records.save(record)
        log.info("cluster %s of %s runs at %s", cluster_id, username, record.scheduler_address)
        return record

    async def _launch(self, username: str, spec: dict[str, Any]) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            *self._as_user(username, LAUNCHER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # survives the service
        )
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        process.stdin.write(json.dumps(spec).encode())
        await process.stdin.drain()
        process.stdin.close()
        try:
            line = await asyncio.wait_for(process.stdout.readline(), self.start_timeout)
        except asyncio.TimeoutError:
            process.kill()
            raise ClusterError(504, "the cluster's scheduler did not start in time") from None
        try:
            ready = json.loads(line)
        except ValueError:
            stderr = (await process.stderr.read(4000)).decode(errors="replace")
            log.error("launcher for %s gave no answer: %s", username, stderr)
            raise ClusterError(502, "the cluster could not be started for this user") from None
        if "error" in ready:
            log.error("launcher for %s failed: %s", username, ready["error"])
            raise ClusterError(502, "the cluster could not be started for this user") from None
        # The launcher writes to its own log from now on; reap it in the background.
        reaper = asyncio.ensure_future(process.wait())
        self._reaping.add(reaper)
        reaper.add_done_callback(self._reaping.discard)
        return ready

    # -- steer ---------------------------------------------------------------------------

    @staticmethod
    def security(record: ClusterRecord) -> Security:
        tls = record.tls or {}
        return Security(
            tls_ca_file=tls.get("ca"),
            tls_client_cert=tls.get("cert"),
            tls_client_key=tls.get("key"),
            require_encryption=True,
        )

    async def call(self, record: ClusterRecord, op: str, **kwargs: Any) -> Any:
        """One handler call on the cluster's scheduler, over its TLS comm."""
        if record.scheduler_address is None:
            raise ClusterError(409, "the cluster has no scheduler yet")
        connection_args = self.security(record).get_connection_args("client")
        try:
            async with rpc(record.scheduler_address, connection_args=connection_args) as scheduler:
                return await asyncio.wait_for(getattr(scheduler, op)(**kwargs), self.control_timeout)
        except ValueError as err:
            raise ClusterError(400, str(err)) from None
        except (OSError, asyncio.TimeoutError) as err:
            raise ClusterError(503, f"the cluster's scheduler is not answering ({type(err).__name__})") from None

    async def info(self, record: ClusterRecord) -> dict[str, Any] | None:
        """Live figures, or None when the scheduler does not answer."""
        if not record.active or record.scheduler_address is None:
            return None
        try:
            return await self.call(record, "daas_info")
        except ClusterError:
            return None

    # -- end -----------------------------------------------------------------------------

    async def stop(self, record: ClusterRecord, reason: str = "stopped by its owner") -> ClusterRecord:
        if not record.active:
            return record
        record.status = "stopping"
        self.records.save(record)
        try:
            await self.call(record, "daas_close")
        except ClusterError as err:
            log.info("cluster %s: close not delivered (%s); cancelling its jobs", record.id, err)
        await self._cleanup(record, reason)
        return record

    async def _cleanup(self, record: ClusterRecord, reason: str, status: str = "stopped", grace: float = 10) -> None:
        """Wait for the cluster's jobs to go (the launcher cancels them); after `grace`, cancel what remains."""
        started = time.monotonic()
        cancelled = False
        while await self._jobs_left(record.job_name):
            waited = time.monotonic() - started
            if waited > self.stop_timeout:
                log.error("cluster %s: jobs named %s are still listed", record.id, record.job_name)
                break
            if waited >= grace and not cancelled:
                scancel = self._as_user(record.username, [self._bin("scancel"), f"--name={record.job_name}"])
                try:
                    await run_command(scancel, timeout=SCHEDULER_TIMEOUT, name="scancel")
                except CommandFailed as err:
                    log.warning("cluster %s: %s", record.id, err)
                cancelled = True
            await asyncio.sleep(1)
        record.status, record.message, record.ended = status, reason, time.time()
        self.records.save(record)
        log.info("cluster %s of %s %s: %s", record.id, record.username, status, reason)

    async def _jobs_left(self, job_name: str) -> bool:
        """Whether Slurm lists jobs of this name; a failed query counts as yes (keep waiting)."""
        squeue = [self._bin("squeue"), "--noheader", f"--name={job_name}", "--format=%i"]
        try:
            return bool((await run_command(squeue, timeout=SCHEDULER_TIMEOUT)).stdout.strip())
        except CommandFailed as err:
            log.warning("%s", err)
            return True

    async def reconcile(self) -> None:
        """At service start: clusters whose scheduler answers are re-attached, the others ended."""
        for record in self.records.active():
            if record.status == "running" and await self.info(record) is not None:
                log.info("cluster %s of %s re-attached", record.id, record.username)
                continue
            await self._cleanup(record, "its scheduler was gone when the service restarted", grace=0)

    async def end_lost(self, record: ClusterRecord, reason: str) -> None:
        """A running cluster whose scheduler stopped answering (idle timeout, crash): no orphans."""
        await self._cleanup(record, reason, grace=0)
