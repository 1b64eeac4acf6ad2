"""Concurrent spawns on the real Slurm test cluster: DaaS, batchspawner's SlurmSpawner and plain sbatch.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/spawns.py [--counts 1,10,50] [--repeats 3] [--steady 60]
        [--systems daas,daas-rest,batchspawner,floor]

Systems, each starting N single-user servers (1 CPU, 512 MB, 1 h on partition cpu) at once, for N users:
- ``daas``:  a JupyterHub with DaaSSpawner (profile cpu), N concurrent ``POST /hub/api/users/<u>/server``;
- ``daas-rest``: the same DaaS hub on the slurmrestd transport (per-user JWTs minted from a copy of the cluster's
  key; not in the default systems); its scheduler calls are the requests slurmrestd logs;
- ``batchspawner``: the same JupyterHub (peer venv) with batchspawner's SlurmSpawner, the same requests;
- ``floor``: no spawner; the same N ``jupyterhub-singleuser`` jobs submitted with plain ``sbatch`` as the users,
  timed until each answers HTTP. (jupyterhub-singleuser asks a hub for its version before it listens: the
  floor's jobs ask the idle DaaS hub.)

Per system, N and round: time until all are ready, per-user p50/p95/max, failures; the hub-side overhead per
spawn (the hub's own "took X seconds to start" minus job start -> server listening, the start taken by a
Slurm Prolog and the listening from the server's log); scheduler commands per minute while spawning, while
N servers run (`--steady` seconds, first round) and while stopping (logging wrappers around each command; for
daas-rest the request lines of slurmrestd's log);
hub CPU seconds and peak memory, and the CPU seconds of slurmctld, slurmrestd and munged. The systems
alternate in each round, their order rotating.

The benchmark restarts the test cluster with more CPUs per node (DAAS_SLURM_CPUS) and a job-start Prolog,
creates the Unix users bench01.. and restores the standard cluster at the end. Needs root,
benchmarks/setup.sh (the peer venv) and nothing running on the test cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    BENCH_VENV,
    INFO_LOGGING,
    POLL,
    PREFIX,
    REPO,
    RESULTS,
    ConcurrentRun,
    MeteredPhase,
    Profiler,
    VenvHub,
    active_servers,
    ensure_users,
    environment,
    fmt_spread,
    hub_client,
    log,
    peer_venv_missing,
    percentile,
    proxy_routes,
    require_fresh_install,
    rotated,
    run_main,
    save,
    spread,
    until_empty,
)
from benchmarks.common import Spawn as HubSpawn
from benchmarks.common import start_servers as start_all
from benchmarks.common import stop_servers as stop_all
from tests.integration.hub import Hub
from tests.integration.process import free_port
from tests.integration.slurm import CLUSTER_SCRIPT, CommandLog

SYSTEMS = ("daas", "daas-rest", "batchspawner", "floor")
DEFAULT_SYSTEMS = ("daas", "batchspawner", "floor")
HUBS = ("daas", "batchspawner")
DAAS_HUBS = ("daas", "daas-rest")  # the same DaaS hub on the cli and on the rest transport
JOB_NAMES = {
    "daas": "jupyterhub-daas",
    "daas-rest": "jupyterhub-daas-rest",
    "batchspawner": "spawner-jupyterhub",
    "floor": "bench-floor",
}
JOB_LIST = {"daas-rest": "GET /jobs"}  # the call that lists the queue; squeue for the others
# The test cluster's slurmrestd (tests/cluster/slurm.sh): its address, the JWT key and its request log.
REST_URL = "http://127.0.0.1:6830"
JWT_KEY = Path("/etc/slurm/jwt_hs256.key")
REST_LOG = Path("/var/tmp/daas-slurm/log/slurmrestd.log")
# The daemons that answer a hub's calls: their CPU is the scheduler's side of the load (munged: the CLI's auth).
DAEMON_PIDS = {
    "slurmctld": Path("/var/tmp/daas-slurm/run/slurmctld.pid"),
    "slurmrestd": Path("/var/tmp/daas-slurm/run/slurmrestd.pid"),
    "munged": Path("/run/munge/munged.pid"),
}
REST_REQUEST = re.compile(r"operations_router: \[\S+\] (GET|POST|PUT|PATCH|DELETE) (/\S*)$")
DAAS_OPTIONS = {"profile": "cpu", "cores": "min", "memory": "512M", "walltime": "1:00:00"}
SERVER_VENV = Path(sys.prefix)  # every system's servers run this venv's jupyterhub-singleuser
BATCHSPAWNER_JOB_LIB = PREFIX / "batchspawner-job"  # batchspawner-singleuser for that venv (setup.sh)
TOOK = re.compile(r"User (\S+) took ([\d.]+) seconds to start")
LISTENING = re.compile(r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \w+\] .*is running at:", re.MULTILINE)

HUB_COMMON = (
    INFO_LOGGING
    + """
    c.Spawner.start_timeout = 900  # N servers on 2 cores: never let JupyterHub's timeout decide
    c.Spawner.http_timeout = 600
    c.JupyterHub.concurrent_spawn_limit = 0
"""
)


def daas_config(profiles: Path) -> str:
    """Both DaaS hubs: the same profiles and the product's poll settings; only the transport differs."""
    return f"""
        from daas_hub import register_handlers
        from daas_spawner import load_profiles
        register_handlers()
        c.JupyterHub.spawner_class = "daas"
        c.DaaSSpawner.profiles = load_profiles("{profiles}")
    """


def cli_config(commands: CommandLog) -> str:
    return f"""
        c.SlurmBackend.transport = "cli"
        c.SlurmBackend.slurm_bin_dir = "{commands.bin_dir}"
    """


def rest_config(key_file: Path) -> str:
    """slurmrestd with tokens the hub mints per user; its own job name, so each hub's queue holds its jobs only."""
    job_name = JOB_NAMES["daas-rest"]
    return f"""
        c.SlurmBackend.transport = "rest"
        c.SlurmBackend.job_name = "{job_name}"
        c.SlurmRest.url = "{REST_URL}"
        c.SlurmRest.token_source = "key"
        c.SlurmRest.jwt_key_file = "{key_file}"
    """


def batchspawner_config(commands: CommandLog, server_bin: Path = SERVER_VENV / "bin") -> str:
    """batchspawner's defaults, but its commands through the logging wrappers and its server from `server_bin`."""
    bin_dir = commands.bin_dir
    job_path = f"{BATCHSPAWNER_JOB_LIB}/bin:{server_bin}:$PATH"
    return f"""
        c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
        c.SlurmSpawner.req_partition = "cpu"
        c.SlurmSpawner.req_nprocs = "1"
        c.SlurmSpawner.req_memory = "512M"
        c.SlurmSpawner.req_runtime = "1:00:00"
        c.SlurmSpawner.batch_submit_cmd = "{bin_dir}/sbatch --parsable"
        c.SlurmSpawner.batch_query_cmd = "{bin_dir}/squeue -h -j {{job_id}} -o '%T %B'"
        c.SlurmSpawner.batch_cancel_cmd = "{bin_dir}/scancel {{job_id}}"
        c.SlurmSpawner.req_prologue = "export PATH={job_path} PYTHONPATH={BATCHSPAWNER_JOB_LIB}"
        c.SlurmSpawner.req_keepvars_extra = "PATH,PYTHONPATH"  # else srun's step has no PATH
        c.SlurmSpawner.state_exechost_exp = "127.0.0.1"  # the nodes' names do not resolve; all are this host
    """


def floor_script(user: str, port: int, api_url: str) -> str:
    """What a hub would make a job run, without the hub: the server with its environment, nothing else."""
    prefix = f"/user/{user}/"
    env = {
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_API_TOKEN": "floor-token-unused",
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}{prefix}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
    }
    exports = "\n".join(f"export {name}={value}" for name, value in env.items())
    return f"#!/bin/bash\n{exports}\nexec {SERVER_VENV}/bin/jupyterhub-singleuser\n"


def bench_profiles(path: Path, prefix: Path = SERVER_VENV) -> Path:
    """The facility example, its environments pointed at `prefix` (the servers' venv, or scale.py's stand-in)."""
    data = yaml.safe_load((REPO / "profiles" / "facility.yaml").read_text())
    for profile in data["profiles"]:
        for env in profile.get("environments", []):
            env["prefix"] = str(prefix)
    path.write_text(yaml.safe_dump(data))
    return path


class RestHub(Hub):
    """The DaaS hub on the rest transport; it copies the cluster's JWT key as it starts (the cluster makes the key)."""

    def __init__(self, workdir: Path, extra_config: str) -> None:
        self.key_copy = workdir / "jwt_hs256.key"
        super().__init__(workdir, extra_config + textwrap.dedent(rest_config(self.key_copy)))

    def start(self, timeout: float = 60) -> Hub:
        shutil.copyfile(JWT_KEY, self.key_copy)
        os.chmod(self.key_copy, 0o600)  # the hub runs as root here: readable by it alone
        return super().start(timeout)


class CommandCalls:
    """The scheduler commands a system ran, from the logging wrappers (one timestamped line each)."""

    def __init__(self, commands: CommandLog) -> None:
        self.commands = commands

    def mark(self) -> float:
        return time.time()

    def since(self, mark: float) -> dict[str, int]:
        return dict(Counter(name for stamp, name, _ in self.commands.entries() if stamp >= mark))


class RestCalls:
    """The requests slurmrestd logged, one line each ("GET /jobs", "DELETE /job/{id}", ...).

    The log has no times: a phase counts the lines written since its start (only one hub uses slurmrestd)."""

    def __init__(self, path: Path = REST_LOG) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int) -> dict[str, int]:
        with self.path.open("rb") as log_file:
            log_file.seek(mark)
            lines = log_file.read().decode(errors="replace").splitlines()
        return dict(Counter(rest_call(match) for line in lines if (match := REST_REQUEST.search(line))))


def rest_call(match: re.Match[str]) -> str:
    """Calls of one kind count together: "GET /slurm/v0.0.38/job/42" -> "GET /job/{id}"."""
    path = re.sub(r"^/slurm/v[\d.]+", "", match.group(2))
    path = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    return f"{match.group(1)} {path}"


Calls = CommandCalls | RestCalls


def daemon_cpu() -> dict[str, float]:
    """CPU seconds so far of each daemon in DAEMON_PIDS that is running."""
    cpu = {}
    for name, pid_file in DAEMON_PIDS.items():
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            times = psutil.Process(int(pid_file.read_text())).cpu_times()
            cpu[name] = times.user + times.system
    return cpu


# -- one measured run -------------------------------------------------------------------------


@dataclass
class Spawn(HubSpawn):
    """A server start with its Slurm job, and the times the overhead is taken from."""

    job_id: str = ""
    log: str = ""
    hub_took: float = math.nan  # the hub's own figure
    job_started: float = math.nan  # Prolog
    listening: float = math.nan  # server log

    @property
    def overhead(self) -> float:
        return self.hub_took - (self.listening - self.job_started)


@dataclass
class Phase(MeteredPhase):
    commands: dict[str, int] = field(default_factory=dict)  # scheduler calls: commands, or REST requests
    hub_cpu_s: float = math.nan
    command_cpu_s: float = math.nan  # the hub's reaped children: sudo and the scheduler commands
    hub_peak_rss_mb: float = math.nan
    daemon_cpu_s: dict[str, float] = field(default_factory=dict)  # slurmctld, slurmrestd, munged

    def counts(self) -> dict[str, int]:
        return self.commands


@dataclass
class Run(ConcurrentRun):
    def stats(self) -> dict[str, Any]:
        seconds = [s.seconds for s in self.spawns if not s.failed]
        overheads = [s.overhead for s in self.spawns if not s.failed and not math.isnan(s.overhead)]
        done = [s for s in self.spawns if not s.failed]
        return {
            "all_ready_s": self.all_ready_s,
            "p50_s": percentile(seconds, 50),
            "p95_s": percentile(seconds, 95),
            "max_s": max(seconds, default=math.nan),
            "failures": sum(1 for s in self.spawns if s.failed),
            "overhead_p50_s": percentile(overheads, 50),
            "overhead_p95_s": percentile(overheads, 95),
            # The overhead's parts, and what is not overhead: medians over this run's servers.
            "post_to_job_start_p50_s": percentile([s.job_started - s.posted for s in done], 50),
            "job_start_to_listening_p50_s": percentile([s.listening - s.job_started for s in done], 50),
            "listening_to_ready_p50_s": percentile([s.ready - s.listening for s in done], 50),
        }


class HubMeter:
    """CPU seconds and peak RSS of the hub process, per phase (sampled; psutil)."""

    def __init__(self, pid: int | None) -> None:
        self.process = psutil.Process(pid) if pid else None
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    def _cpu(self) -> tuple[float, float]:
        if self.process is None:
            return math.nan, math.nan
        t = self.process.cpu_times()
        return t.user + t.system, t.children_user + t.children_system

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss / 2**20)
            await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def phase(self, phase: Phase, calls: Calls) -> Any:
        cpu, children = self._cpu()
        mark = calls.mark()
        daemons = daemon_cpu()
        self.peak = 0.0
        if self.process is not None:
            self._task = asyncio.ensure_future(self._sample())
        try:
            yield phase
        finally:
            phase.ended = time.time()
            if self._task is not None:
                self._task.cancel()
            cpu_after, children_after = self._cpu()
            phase.hub_cpu_s, phase.command_cpu_s = cpu_after - cpu, children_after - children
            phase.hub_peak_rss_mb = self.peak if self.process is not None else math.nan
            phase.commands = calls.since(mark)
            phase.daemon_cpu_s = {
                name: spent - daemons[name] for name, spent in daemon_cpu().items() if name in daemons
            }


class Bench:
    """The hubs, the cluster's command logs and the users; one method per system's run."""

    def __init__(self, workdir: Path, users: list[str], systems: Sequence[str], timeout: float) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.users = users
        self.systems = systems
        self.job_starts = workdir / "job-starts.log"
        self.commands = {name: CommandLog(workdir / name / "slurm-bin") for name in SYSTEMS if name != "daas-rest"}
        self.calls: dict[str, Calls] = {name: CommandCalls(log) for name, log in self.commands.items()}
        self.hubs: dict[str, Hub] = {}
        profiles = bench_profiles(workdir / "profiles.yaml")
        daas_common = textwrap.dedent(HUB_COMMON) + textwrap.dedent(daas_config(profiles))
        # The DaaS hub always runs: the floor's servers ask it for its version.
        self.hubs["daas"] = Hub(
            workdir / "daas" / "hub", daas_common + textwrap.dedent(cli_config(self.commands["daas"]))
        )
        if "daas-rest" in systems:
            self.hubs["daas-rest"] = RestHub(workdir / "daas-rest" / "hub", daas_common)
            self.calls["daas-rest"] = RestCalls()
        if "batchspawner" in systems:
            config = textwrap.dedent(HUB_COMMON) + textwrap.dedent(batchspawner_config(self.commands["batchspawner"]))
            self.hubs["batchspawner"] = VenvHub(workdir / "batchspawner" / "hub", config, BENCH_VENV / "bin")

    # -- helpers ----------------------------------------------------------------------------

    def started_jobs(self) -> dict[str, float]:
        starts = {}
        for line in self.job_starts.read_text().splitlines():
            job_id, _, stamp = line.partition(" ")
            starts[job_id] = float(stamp)
        return starts

    @staticmethod
    def listening_at(log_path: str) -> float:
        with contextlib.suppress(OSError):
            match = LISTENING.search(Path(log_path).read_text(errors="replace"))
            if match:
                return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        return math.nan

    def fill_timings(self, run: Run) -> None:
        starts = self.started_jobs()
        for spawn in run.spawns:
            spawn.job_started = starts.get(spawn.job_id, math.nan)
            spawn.listening = self.listening_at(spawn.log)

    @staticmethod
    def live_jobs(job_name: str) -> list[str]:
        out = subprocess.run(
            ["squeue", "-h", "-n", job_name, "-o", "%i"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
        return out.split()

    async def wait_no_jobs(self, job_name: str) -> None:
        await until_empty(lambda: asyncio.to_thread(self.live_jobs, job_name), f"jobs named {job_name}")

    # -- a hub's run ------------------------------------------------------------------------

    async def hub_run(self, system: str, n: int, round_no: int, steady: float, profiler: Profiler) -> Run:
        hub = self.hubs[system]
        run = Run(system, n, round_no, [Spawn(u) for u in self.users[:n]])
        meter = HubMeter(hub.process.process.pid if hub.process.process else None)
        calls = self.calls[system]
        log_offset = hub.log_path.stat().st_size
        async with self.client(system) as client:
            async with (
                profiler.phase(hub.pid, f"spawn-{n}-round{round_no + 1}"),
                meter.phase(Phase("spawn", time.time()), calls) as spawning,
            ):
                run.phases.append(spawning)
                await self.start_servers(client, system, run.spawns)
            if steady > 0:
                async with meter.phase(Phase("steady", time.time()), calls) as running:
                    run.phases.append(running)
                    await asyncio.sleep(steady)
            async with meter.phase(Phase("stop", time.time()), calls) as stopping:
                run.phases.append(stopping)
                await self.stop_servers(client, system, [s.user for s in run.spawns])
        by_user = {s.user: s for s in run.spawns}
        for match in TOOK.finditer(hub.log_path.read_text(errors="replace")[log_offset:]):
            if match.group(1) in by_user:
                by_user[match.group(1)].hub_took = float(match.group(2))
        self.fill_timings(run)
        return run

    def client(self, system: str) -> httpx.AsyncClient:
        return hub_client(self.hubs[system])

    async def start_servers(self, client: httpx.AsyncClient, system: str, spawns: list[Spawn]) -> None:
        """POST every spawn at once; return when each is ready or failed (its Spawn says which)."""
        body = json.dumps(DAAS_OPTIONS if system in DAAS_HUBS else {})
        await start_all(client, spawns, body, self.timeout, proxy_routes(self.hubs[system]))
        self.record_jobs(system, await active_servers(client), {s.user: s for s in spawns})

    async def stop_servers(self, client: httpx.AsyncClient, system: str, users: list[str]) -> None:
        """DELETE every server at once; return when the hub has none and their jobs have left the queue."""
        await stop_all(client, users)
        await self.wait_no_jobs(JOB_NAMES[system])

    def record_jobs(self, system: str, servers: dict[str, dict[str, Any]], by_user: dict[str, Spawn]) -> None:
        for user, server in servers.items():
            state = server.get("state") or {}
            spawn = by_user.get(user)
            if spawn is None:
                continue
            if system in DAAS_HUBS:
                job = state.get("daas", {}).get("state", {})
                spawn.job_id, spawn.log = job.get("job_id", ""), job.get("log", "")
            else:
                spawn.job_id = state.get("job_id", "")
                spawn.log = f"{pwd.getpwnam(user).pw_dir}/jupyterhub_slurmspawner_{spawn.job_id}.log"

    # -- the floor ---------------------------------------------------------------------------

    async def floor_run(self, n: int, round_no: int) -> Run:
        users = self.users[:n]
        run = Run("floor", n, round_no, [Spawn(u) for u in users])
        commands = self.commands["floor"]
        api_url = self.hubs["daas"].api_url
        ports = {u: free_port() for u in users}
        meter = HubMeter(None)

        async def submit(spawn: Spawn) -> None:
            home = pwd.getpwnam(spawn.user).pw_dir
            argv = [
                "sudo", "-n", "-u", spawn.user, "--", str(commands.bin_dir / "sbatch"), "--parsable",
                f"--job-name={JOB_NAMES['floor']}", "--partition=cpu", "--cpus-per-task=1", "--mem=512M",
                "--time=1:00:00", f"--chdir={home}", f"--output={home}/bench-floor-%j.log",
            ]  # fmt: skip
            spawn.posted = time.time()
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out, err = await process.communicate(floor_script(spawn.user, ports[spawn.user], api_url).encode())
            if process.returncode:
                spawn.failed = f"sbatch: {err.decode().strip()}"
                return
            spawn.job_id = out.decode().strip().split(";")[0]
            spawn.log = f"{home}/bench-floor-{spawn.job_id}.log"

        async def listening(client: httpx.AsyncClient, spawn: Spawn) -> None:
            url = f"http://127.0.0.1:{ports[spawn.user]}/user/{spawn.user}/api"
            while not spawn.failed:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        spawn.ready = time.time()
                        return
                await asyncio.sleep(POLL)

        async with httpx.AsyncClient(timeout=10) as client:
            async with meter.phase(Phase("spawn", time.time()), self.calls["floor"]) as spawning:
                run.phases.append(spawning)
                await asyncio.gather(*(submit(s) for s in run.spawns))
                _, late = await asyncio.wait(
                    [asyncio.ensure_future(listening(client, s)) for s in run.spawns], timeout=self.timeout
                )
                for task in late:
                    task.cancel()
                for spawn in run.spawns:
                    if math.isnan(spawn.ready) and not spawn.failed:
                        spawn.failed = f"not listening after {self.timeout:g} s"
        async with meter.phase(Phase("stop", time.time()), self.calls["floor"]) as stopping:
            run.phases.append(stopping)
            await asyncio.to_thread(subprocess.run, ["scancel", "-n", JOB_NAMES["floor"]], check=False, timeout=60)
            await self.wait_no_jobs(JOB_NAMES["floor"])
        self.fill_timings(run)
        return run


# -- cluster and users ------------------------------------------------------------------------


def cluster(action: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(["bash", str(CLUSTER_SCRIPT), action], check=True, timeout=300, env={**os.environ, **(env or {})})


def bench_workdir(workdir: Path | None, prefix: str) -> Path:
    """The directory for hub configs and logs; root only (the cluster is restarted, users are created)."""
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark restarts the test cluster and creates users")
    workdir = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    return workdir


@contextlib.contextmanager
def running_hubs(bench: Bench, users: Sequence[str]) -> Iterator[None]:
    """Each of the bench's hubs started, with the users created; every one stopped afterwards, whatever happened."""
    try:
        for name, hub in bench.hubs.items():
            log(f"{name}: starting hub at {hub.url} ({hub.workdir})")
            hub.start()
            hub.create_users(*users)
        yield
    finally:
        for hub in bench.hubs.values():
            with contextlib.suppress(Exception):
                hub.stop()


@contextlib.contextmanager
def bench_cluster(cpus: int, job_starts: Path, memory_mb: int | None = None) -> Iterator[None]:
    """The test cluster with `cpus` (and `memory_mb`) per node and the job-start Prolog; the standard one afterwards."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    posed = {"DAAS_SLURM_CPUS": str(cpus), "DAAS_SLURM_JOB_STARTS": str(job_starts)}
    if memory_mb:
        posed["DAAS_SLURM_MEMORY"] = str(memory_mb)
    cluster("stop")
    cluster("start", posed)
    try:
        yield
    finally:
        log("restoring the standard test cluster")
        cluster("stop")
        cluster("start", {"DAAS_SLURM_CPUS": "", "DAAS_SLURM_JOB_STARTS": "", "DAAS_SLURM_MEMORY": ""})
        signal.signal(signal.SIGTERM, previous)


# -- summary ----------------------------------------------------------------------------------


def summarise(runs: list[Run], counts: list[int], systems: Sequence[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for n in counts:
        row: dict[str, Any] = {}
        for system in systems:
            mine = [r for r in runs if r.system == system and r.n == n]
            if not mine:
                continue
            stats = [r.stats() for r in mine]
            entry: dict[str, Any] = {key: spread([s[key] for s in stats]) for key in stats[0] if key != "failures"}
            entry["failures"] = sum(s["failures"] for s in stats)
            entry["spawns"] = sum(r.n for r in mine)
            for phase in ("spawn", "steady", "stop"):
                phases = [p for r in mine for p in r.phases if p.name == phase]
                if not phases:
                    continue
                listing = JOB_LIST.get(system, "squeue")  # always reported, 0 included
                seen = sorted(
                    {listing, *(c for p in phases for c in p.commands)} - {"squeue", "sbatch", "scancel", "sinfo"}
                )
                entry[phase] = {
                    "seconds": spread([p.seconds for p in phases]),
                    "calls_per_min": spread([p.per_minute() for p in phases]),
                    **{
                        f"{c}_per_min": spread([p.per_minute(c) for p in phases])
                        for c in ("squeue", "sbatch", "scancel", "sinfo", *seen)
                    },
                    "hub_cpu_s": spread([p.hub_cpu_s for p in phases]),
                    "command_cpu_s": spread([p.command_cpu_s for p in phases]),
                    "hub_peak_rss_mb": spread([p.hub_peak_rss_mb for p in phases]),
                    **{
                        f"{name}_cpu_s": spread([p.daemon_cpu_s.get(name, math.nan) for p in phases])
                        for name in DAEMON_PIDS
                    },
                }
            row[system] = entry
        ratios = {}
        pairs = (
            ("daas", "floor"),
            ("batchspawner", "floor"),
            ("daas", "batchspawner"),
            ("daas-rest", "daas"),
            ("daas-rest", "floor"),
        )
        for a, b in pairs:
            per_round = []
            for round_no in sorted({r.round for r in runs}):
                ra = next((r for r in runs if (r.system, r.n, r.round) == (a, n, round_no)), None)
                rb = next((r for r in runs if (r.system, r.n, r.round) == (b, n, round_no)), None)
                if ra and rb:
                    per_round.append(ra.all_ready_s / rb.all_ready_s)
            if per_round:
                ratios[f"{a}/{b}"] = spread(per_round)
        row["ratios_all_ready"] = ratios
        summary[str(n)] = row
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = [
        "Concurrent spawns: seconds, median over rounds [min-max]; list/min: queue listings (squeue, or GET /jobs)",
        f"{'N':>3}  {'system':<12} {'all ready':<20} {'user p50':<20} {'user p95':<20} {'fail':>4}  "
        f"{'hub overhead p50':<20} {'list/min spawn':<18} {'list/min run':<16} {'hub CPU s':<12} {'peak MB':<8}",
    ]
    for n, row in summary.items():
        for system in SYSTEMS:
            e = row.get(system)
            if e is None:
                continue
            spawn, steady = e.get("spawn", {}), e.get("steady", {})
            listing = f"{JOB_LIST.get(system, 'squeue')}_per_min"
            lines.append(
                f"{n:>3}  {system:<12} {fmt_spread(e['all_ready_s']):<20} {fmt_spread(e['p50_s']):<20} "
                f"{fmt_spread(e['p95_s']):<20} {e['failures']:>4}  {fmt_spread(e['overhead_p50_s'], 2):<20} "
                f"{fmt_spread(spawn[listing]) if listing in spawn else '-':<18} "
                f"{fmt_spread(steady[listing]) if listing in steady else '-':<16} "
                f"{fmt_spread(spawn['hub_cpu_s']) if system != 'floor' else '-':<12} "
                f"{spawn['hub_peak_rss_mb']['median'] if system != 'floor' else math.nan:<8.0f}"
            )
        for pair, r in row["ratios_all_ready"].items():
            lines.append(f"{n:>3}  all ready {pair:<20} {fmt_spread(r, 2)}")
    return "\n".join(lines)


def load_table(summary: dict[str, Any]) -> str:
    """Scheduler calls per minute by phase (steady: N servers running, first round), and the CPU they cost."""
    lines = [
        "Scheduler calls per minute: median over rounds [min-max]; by call, and CPU s of slurmctld, slurmrestd and"
        " munged: medians",
        f"{'N':>3}  {'system':<12} {'phase':<7} {'seconds':<20} {'calls/min':<20} {'hub CPU s':<16} "
        f"{'commands CPU s':<16} {'ctld/rest/munge CPU s':<22} by call",
    ]
    for n, row in summary.items():
        for system in SYSTEMS:
            e = row.get(system)
            if e is None:
                continue
            for phase in ("spawn", "steady", "stop"):
                p = e.get(phase)
                if p is None:
                    continue
                by_call = ", ".join(
                    f"{key.removesuffix('_per_min')} {value['median']:.1f}"
                    for key, value in p.items()
                    if key.endswith("_per_min") and key != "calls_per_min" and value["median"] > 0
                )
                cpu = fmt_spread(p["hub_cpu_s"], 2) if system != "floor" else "-"
                children = fmt_spread(p["command_cpu_s"], 2) if system != "floor" else "-"
                daemons = "/".join(f"{p[f'{name}_cpu_s']['median']:.2f}" for name in DAEMON_PIDS)
                lines.append(
                    f"{n:>3}  {system:<12} {phase:<7} {fmt_spread(p['seconds']):<20} "
                    f"{fmt_spread(p['calls_per_min']):<20} {cpu:<16} {children:<16} {daemons:<22} {by_call or '-'}"
                )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,10,50", help="concurrent spawn counts N (default 1,10,50)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--steady", type=float, default=60, help="seconds N servers run, first round (default 60)")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"subset of {','.join(SYSTEMS)} (default {','.join(DEFAULT_SYSTEMS)}; daas-rest needs slurmrestd)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds until a server counts as failed")
    parser.add_argument("--cpus", type=int, default=0, help="CPUs per node of the benchmark cluster (default N/2+8)")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graphs of each spawn phase")
    parser.add_argument("--json", type=Path, default=RESULTS / "spawns.json", help="results file")
    parser.add_argument("--workdir", type=Path, default=None, help="hub directories and logs (default: new /tmp dir)")
    args = parser.parse_args(argv)
    args.count_list = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    args.system_list = [s for s in SYSTEMS if s in {x.strip() for x in args.systems.split(",")}]
    if not args.system_list or args.repeats < 1 or not args.count_list or min(args.count_list) < 1:
        parser.error("--systems, --repeats and --counts must name something")
    return args


async def measure(bench: Bench, args: argparse.Namespace) -> list[Run]:
    runs = []
    for round_no in range(args.repeats):
        for n in args.count_list:
            for system in rotated(args.system_list, round_no):
                steady = args.steady if round_no == 0 else 0
                if system == "floor":
                    run = await bench.floor_run(n, round_no)
                else:
                    run = await bench.hub_run(system, n, round_no, steady, Profiler(args.profile, f"spawns-{system}"))
                s = run.stats()
                log(
                    f"round {round_no + 1}/{args.repeats} N={n:<3} {system:<12} all ready {s['all_ready_s']:.1f} s, "
                    f"p50 {s['p50_s']:.1f} p95 {s['p95_s']:.1f} s, {s['failures']} failed, "
                    f"overhead p50 {s['overhead_p50_s']:.2f} s; commands {run.phases[0].commands}"
                )
                for spawn in run.spawns:
                    if spawn.failed:
                        log(f"  {spawn.user}: {spawn.failed}")
                runs.append(run)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_fresh_install()
    if "batchspawner" in args.system_list and peer_venv_missing():
        return 2
    workdir = bench_workdir(args.workdir, "daas-bench-spawns-")
    users = [f"bench{i:02d}" for i in range(1, max(args.count_list) + 1)]
    ensure_users(users)
    began = time.monotonic()
    bench = Bench(workdir, users, args.system_list, args.timeout)
    cpus = args.cpus or max(8, max(args.count_list) // 2 + 8)
    with bench_cluster(cpus, bench.job_starts), running_hubs(bench, users):
        runs = asyncio.run(measure(bench, args))
    summary = summarise(runs, args.count_list, args.system_list)
    result = {
        "environment": environment(),
        "settings": {
            "counts": args.count_list,
            "repeats": args.repeats,
            "steady_s": args.steady,
            "systems": args.system_list,
            "cpus_per_node": cpus,
            "request": "1 CPU, 512 MB, 1 h, partition cpu",
            "workdir": str(workdir),
            "elapsed_s": round(time.monotonic() - began, 1),
        },
        "summary": summary,
        "runs": [
            {
                **{k: v for k, v in asdict(r).items() if k != "spawns"},
                **r.stats(),
                "spawns": [asdict(s) for s in r.spawns],
            }
            for r in runs
        ],
    }
    save(args.json, result)
    print(table(summary))
    print()
    print(load_table(summary))
    print(f"\n{result['settings']['elapsed_s']} s in all; JSON: {args.json}; logs: {workdir}")
    return 0


if __name__ == "__main__":
    run_main(main)
