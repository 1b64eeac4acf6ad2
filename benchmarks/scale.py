"""Facility scale: 100, 250 and 500 servers running at once on one hub (issue #21).

    /opt/jupyterhub-daas/venv/bin/python benchmarks/scale.py [--counts 100,250,500] [--steady 60]
        [--systems daas,batchspawner] [--batchspawner-max 100] [--postgres] [--profile]

Real Slurm jobs on the test cluster (posed with N/2+8 CPUs and 512 MB per job per node), a real JupyterHub
with configurable-http-proxy, the product's launcher in every DaaS job; the single-user server is
`standin_server.py` (what the hub needs of a server, a few MB each: 500 `jupyterhub-singleuser` do not fit
in this machine's 2 cores and 24 GiB). Per system the servers are started in steps (0 -> 100 -> 250 -> 500,
each step one storm of concurrent `POST /hub/api/users/<u>/server`), and at each level it measures:
- the hub while the servers run (`--steady` seconds): scheduler calls per minute, hub CPU (% of one core),
  its reaped children's CPU (sudo, squeue), peak RSS;
- p50/p95 of `GET /hub/home` (a logged-in person) and of the admin's `GET /hub/api/users` (a full page);
- the storm: all ready, failures, the hub-side overhead per spawn (as spawns.py);
then, at the highest level: one `squeue` of the hub's jobs timed (process, and our parse of its output)
and a hub restart (servers kept, lost, routes back, time), then all servers stopped at once.
With `--profile` py-spy samples the hub in each storm and steady phase: flame graphs (SVG) in
benchmarks/profiles/. With `--postgres` the hub's database is on PostgreSQL (tests/cluster/postgres.sh).
batchspawner's in-job helper keeps JupyterHub imported in every server (about 70 MB each), so it goes to
`--batchspawner-max` servers only. Needs root, benchmarks/setup.sh and nothing running on the test cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    BENCH_VENV,
    PREFIX,
    REPO,
    RESULTS,
    Profiler,
    VenvHub,
    active_servers,
    ensure_users,
    environment,
    log,
    peer_venv_missing,
    percentile,
    require_fresh_install,
    run_main,
    save,
)
from benchmarks.spawns import (
    HUB_COMMON,
    JOB_NAMES,
    TOOK,
    Bench,
    CommandCalls,
    HubMeter,
    Phase,
    Spawn,
    batchspawner_config,
    bench_cluster,
    bench_profiles,
    bench_workdir,
    cli_config,
    daas_config,
    running_hubs,
)
from daas_spawner.backends.slurm.commands import parse_squeue, squeue_argv
from tests.integration.hub import PASSWORD, Hub
from tests.integration.slurm import CommandLog

SYSTEMS = ("daas", "batchspawner")
STANDIN = PREFIX / "standin"  # bin/python3 (the system's) and bin/jupyterhub-singleuser (standin_server.py)
LATENCY_REQUESTS = 100
LATENCY_PATHS = {"home": "/hub/home", "admin_users": "/hub/api/users?offset=0&limit=200"}
MB_PER_JOB = 512


def install_standin() -> None:
    """The stand-in server as an environment prefix the jobs can read (root's home is closed to them)."""
    bin_dir = STANDIN / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = bin_dir / "python3"
    if not python.exists():
        python.symlink_to("/usr/bin/python3")
    shutil.copyfile(REPO / "benchmarks" / "standin_server.py", bin_dir / "jupyterhub-singleuser")
    (bin_dir / "jupyterhub-singleuser").chmod(0o755)
    for path in (STANDIN, bin_dir):
        path.chmod(0o755)


SUBMITTED = re.compile(r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*\] Submitted (\S+) as Slurm job", re.MULTILINE)


@dataclass
class ScaleSpawn(Spawn):
    """spawns.py's Spawn, and when the hub had the job submitted (its log): the hub's own time is apart."""

    submitted: float = math.nan

    @property
    def hub_own(self) -> float:
        """The hub's time: POST -> sbatch returned, and listening -> ready (not Slurm's, not the server's)."""
        return (self.submitted - self.posted) + (self.ready - self.listening)


@dataclass
class Level:
    """One step of the ramp: the storm that reached `n` servers, then `n` running."""

    system: str
    n: int
    storm: int
    spawns: list[ScaleSpawn] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        done = [s for s in self.spawns if not s.failed]
        overheads = [s.overhead for s in done if not math.isnan(s.overhead)]
        ready = max((s.ready for s in done), default=math.nan)
        steady = next((p for p in self.phases if p.name == "steady"), None)
        out: dict[str, Any] = {
            "storm": self.storm,
            "failures": len(self.spawns) - len(done),
            "all_ready_s": ready - min((s.posted for s in self.spawns), default=math.nan),
            "spawn_p50_s": percentile([s.seconds for s in done], 50),
            "overhead_p50_s": percentile(overheads, 50),
            "overhead_p95_s": percentile(overheads, 95),
            # The parts, medians: the hub before sbatch returned, Slurm's start, the job, the hub after listening.
            "post_to_submitted_p50_s": percentile([s.submitted - s.posted for s in done], 50),
            "submitted_to_job_start_p50_s": percentile([s.job_started - s.submitted for s in done], 50),
            "job_start_to_listening_p50_s": percentile([s.listening - s.job_started for s in done], 50),
            "listening_to_ready_p50_s": percentile([s.ready - s.listening for s in done], 50),
            "hub_own_p50_s": percentile([s.hub_own for s in done], 50),
            "hub_own_p95_s": percentile([s.hub_own for s in done], 95),
            "latency_ms": self.latency_ms,
        }
        if steady is not None:
            minutes = steady.seconds / 60
            out["steady"] = {
                "seconds": round(steady.seconds, 1),
                "calls_per_min": {name: count / minutes for name, count in steady.commands.items()},
                "hub_cpu_pct": 100 * steady.hub_cpu_s / steady.seconds,
                "children_cpu_pct": 100 * steady.command_cpu_s / steady.seconds,
                "hub_peak_rss_mb": steady.hub_peak_rss_mb,
                "slurmctld_cpu_pct": 100 * steady.daemon_cpu_s.get("slurmctld", math.nan) / steady.seconds,
            }
        return out


class ScaleBench(Bench):
    """spawns.py's Bench (hubs, command logs, start/stop through the REST API) with the stand-in server."""

    def __init__(
        self, workdir: Path, users: list[str], systems: Sequence[str], timeout: float, db_urls: dict[str, str]
    ) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.users = users
        self.systems = systems
        self.job_starts = workdir / "job-starts.log"
        self.commands = {name: CommandLog(workdir / name / "slurm-bin") for name in systems}
        self.calls = {name: CommandCalls(log) for name, log in self.commands.items()}
        self.hubs: dict[str, Hub] = {}
        profiles = bench_profiles(workdir / "profiles.yaml", STANDIN)
        common = {
            system: textwrap.dedent(HUB_COMMON) + (f'\nc.JupyterHub.db_url = "{url}"\n' if url else "")
            for system, url in db_urls.items()
        }
        if "daas" in systems:
            daas = textwrap.dedent(daas_config(profiles)) + textwrap.dedent(cli_config(self.commands["daas"]))
            self.hubs["daas"] = Hub(workdir / "daas" / "hub", common["daas"] + daas)
        if "batchspawner" in systems:
            peer = textwrap.dedent(batchspawner_config(self.commands["batchspawner"], STANDIN / "bin"))
            config = common["batchspawner"] + peer
            self.hubs["batchspawner"] = VenvHub(workdir / "batchspawner" / "hub", config, BENCH_VENV / "bin")

    @contextlib.asynccontextmanager
    async def logged_in(self, hub: Hub, user: str) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=hub.url, follow_redirects=True, timeout=60) as client:
            await client.get("/hub/login")
            form = {"username": user, "password": PASSWORD, "_xsrf": client.cookies.get("_xsrf")}
            # Not followed: after a login JupyterHub goes on to /hub/spawn, which starts a server of a
            # spawner without an options form (batchspawner).
            response = await client.post("/hub/login", data=form, follow_redirects=False)
            if response.status_code != 302:
                raise RuntimeError(f"login as {user}: HTTP {response.status_code}")
            yield client

    async def latency(self, system: str, user: str) -> dict[str, dict[str, float]]:
        """p50/p95 of the home page (as `user`) and the admin's users page, LATENCY_REQUESTS each, one at a time."""
        hub = self.hubs[system]
        out = {}
        async with self.logged_in(hub, user) as person, self.client(system) as admin:
            for name, path in LATENCY_PATHS.items():
                client, url = (person, path) if name == "home" else (admin, path.removeprefix("/hub/api"))
                times = []
                for i in range(LATENCY_REQUESTS + 5):
                    began = time.perf_counter()
                    response = await client.get(url)
                    elapsed = time.perf_counter() - began
                    response.raise_for_status()
                    if i >= 5:  # warm-up
                        times.append(elapsed * 1000)
                out[name] = {"p50": percentile(times, 50), "p95": percentile(times, 95)}
        return out

    async def storm(self, system: str, level: Level, meter: HubMeter, profiler: Profiler) -> None:
        hub = self.hubs[system]
        offset = hub.log_path.stat().st_size
        async with self.client(system) as client:
            async with profiler.phase(hub.pid, f"storm-{level.n}"):
                async with meter.phase(Phase("storm", time.time()), self.calls[system]) as storming:
                    level.phases.append(storming)
                    await self.start_servers(client, system, level.spawns)
        by_user = {s.user: s for s in level.spawns}
        text = hub.log_path.read_text(errors="replace")[offset:]
        for match in TOOK.finditer(text):
            if match.group(1) in by_user:
                by_user[match.group(1)].hub_took = float(match.group(2))
        for match in SUBMITTED.finditer(text):
            if match.group(2) in by_user:
                stamp = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                by_user[match.group(2)].submitted = stamp
        self.fill_timings(level)

    async def steady(self, system: str, level: Level, meter: HubMeter, profiler: Profiler, seconds: float) -> None:
        async with profiler.phase(self.hubs[system].pid, f"steady-{level.n}"):
            async with meter.phase(Phase("steady", time.time()), self.calls[system]) as running:
                level.phases.append(running)
                await asyncio.sleep(seconds)

    def squeue_cost(self, system: str) -> dict[str, Any]:
        """The hub's one listing of all its jobs, as it runs it (process time), and our parse of its answer."""
        argv = squeue_argv("/usr/bin/squeue", JOB_NAMES[system])
        began = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
        process_s = time.perf_counter() - began
        rounds = 200
        began = time.perf_counter()
        for _ in range(rounds):
            jobs = parse_squeue(out)
        parse_s = (time.perf_counter() - began) / rounds
        return {"jobs": len(jobs), "bytes": len(out), "process_ms": process_s * 1000, "parse_ms": parse_s * 1000}

    async def restart(self, system: str) -> dict[str, Any]:
        """Stop and start the hub with its servers running: kept, lost, routes back, scheduler calls."""
        hub, commands = self.hubs[system], self.commands[system]
        async with self.client(system) as client:
            users = sorted(u for u, s in (await active_servers(client)).items() if s.get("ready"))
        before = {name: commands.count(name) for name in ("squeue", "scancel", "sbatch")}
        await asyncio.to_thread(hub.stop)
        began = time.monotonic()
        await asyncio.to_thread(hub.start, 300)
        api_s = time.monotonic() - began
        expected = {f"/user/{user}/" for user in users}
        routes_s = math.nan
        while time.monotonic() - began < 300:
            if expected <= set(await asyncio.to_thread(hub.routes)):
                routes_s = time.monotonic() - began
                break
            await asyncio.sleep(0.2)
        async with self.client(system) as client:
            servers = await active_servers(client)
        ready = {u for u, s in servers.items() if s.get("ready")}
        async with httpx.AsyncClient(timeout=60) as proxy:
            answers = await asyncio.gather(
                *(proxy.get(f"{hub.url}/user/{u}/api") for u in users), return_exceptions=True
            )
        return {
            "servers": len(users),
            "kept": len(ready & set(users)),
            "lost": len(set(users) - ready),
            "api_back_s": round(api_s, 2),
            "routes_back_s": round(routes_s, 2),
            "answering_through_proxy": sum(isinstance(a, httpx.Response) and a.status_code == 200 for a in answers),
            **{f"{name}_during_restart": commands.count(name) - before[name] for name in before},
        }

    async def stop_everything(self, system: str, users: list[str]) -> dict[str, Any]:
        began = time.monotonic()
        async with self.client(system) as client:
            await self.stop_servers(client, system, users)
        return {"servers": len(users), "all_gone_s": round(time.monotonic() - began, 1)}

    async def ramp(self, system: str, counts: list[int], steady: float, profile: bool) -> dict[str, Any]:
        hub = self.hubs[system]
        meter = HubMeter(hub.pid)
        profiler = Profiler(profile, system)
        levels = []
        zero = Level(system, 0, 0)
        zero.latency_ms = await self.latency(system, self.users[0])
        await self.steady(system, zero, meter, profiler, steady)
        levels.append(zero)
        log(f"{system}: 0 servers: {json.dumps(zero.stats(), default=str)}")
        running = 0
        for n in counts:
            level = Level(system, n, n - running, [ScaleSpawn(u) for u in self.users[running:n]])
            await self.storm(system, level, meter, profiler)
            running = n
            level.latency_ms = await self.latency(system, self.users[0])
            await self.steady(system, level, meter, profiler, steady)
            levels.append(level)
            stats = level.stats()
            log(f"{system}: {n} servers: {json.dumps(stats, default=str)}")
            for spawn in level.spawns:
                if spawn.failed:
                    log(f"  {spawn.user}: {spawn.failed}")
        result: dict[str, Any] = {"levels": [{"n": lv.n, **lv.stats()} for lv in levels]}
        result["spawns"] = [asdict(s) for lv in levels for s in lv.spawns]
        result["squeue"] = self.squeue_cost(system)
        log(f"{system}: squeue at {running}: {result['squeue']}")
        result["restart"] = await self.restart(system)
        log(f"{system}: restart with {running}: {result['restart']}")
        result["stop"] = await self.stop_everything(system, self.users[:running])
        log(f"{system}: stop {running}: {result['stop']}")
        return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="100,250,500", help="servers running at each level (default 100,250,500)")
    parser.add_argument("--steady", type=float, default=60, help="seconds measured at each level (default 60)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="subset of daas,batchspawner")
    parser.add_argument("--batchspawner-max", type=int, default=100, help="batchspawner's highest level (100)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds until a server counts as failed")
    parser.add_argument("--postgres", action="store_true", help="the hubs' database on PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graphs in benchmarks/profiles/")
    parser.add_argument("--json", type=Path, default=RESULTS / "scale.json", help="results file")
    parser.add_argument("--workdir", type=Path, default=None, help="hub directories and logs (default: new /tmp dir)")
    args = parser.parse_args(argv)
    args.count_list = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    args.system_list = [s for s in SYSTEMS if s in {x.strip() for x in args.systems.split(",")}]
    if not args.system_list or not args.count_list or min(args.count_list) < 1:
        parser.error("--systems and --counts must name something")
    return args


def database_url(system: str, postgres: bool) -> str:
    """A fresh PostgreSQL database per hub (tests/cluster/postgres.sh), or the Hub's SQLite file."""
    if not postgres:
        return ""
    out = subprocess.run(
        ["bash", str(REPO / "tests/cluster/postgres.sh"), "database", f"bench_scale_{system}"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


async def measure(bench: ScaleBench, args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for system in args.system_list:
        counts = [n for n in args.count_list if system != "batchspawner" or n <= args.batchspawner_max]
        if counts:
            results[system] = await bench.ramp(system, counts, args.steady, args.profile)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_fresh_install()
    if "batchspawner" in args.system_list and peer_venv_missing():
        return 2
    workdir = bench_workdir(args.workdir, "daas-bench-scale-")
    top = max(args.count_list)
    users = [f"scale{i:03d}" for i in range(1, top + 1)]
    log(f"{len(users)} Unix accounts")
    ensure_users(users)
    install_standin()
    began = time.monotonic()
    cpus = top // 2 + 8
    memory_mb = (top // 2 + 8) * MB_PER_JOB
    results: dict[str, Any] = {}
    with bench_cluster(cpus, workdir / "job-starts.log", memory_mb):
        db_urls = {system: database_url(system, args.postgres) for system in args.system_list}
        bench = ScaleBench(workdir, users, args.system_list, args.timeout, db_urls)
        with running_hubs(bench, users):
            results = asyncio.run(measure(bench, args))
    result = {
        "environment": environment(),
        "settings": {
            "counts": args.count_list,
            "steady_s": args.steady,
            "systems": args.system_list,
            "batchspawner_max": args.batchspawner_max,
            "database": "postgresql" if args.postgres else "sqlite",
            "cpus_per_node": cpus,
            "memory_mb_per_node": memory_mb,
            "request": "1 CPU, 512 MB, 1 h, partition cpu; the stand-in server",
            "latency_requests": LATENCY_REQUESTS,
            "workdir": str(workdir),
            "elapsed_s": round(time.monotonic() - began, 1),
        },
        "results": results,
    }
    save(args.json, result)
    print(table(result))
    print(f"\n{result['settings']['elapsed_s']} s in all; JSON: {args.json}; logs: {workdir}")
    return 0


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'system':<13}{'N':>4} {'storm':>5} {'fail':>4} {'all ready s':>11} {'ovh p50 s':>9} "
        f"{'squeue/min':>10} {'hub CPU %':>9} {'child %':>7} {'RSS MB':>7} {'home p95 ms':>11} {'users p95 ms':>12}"
    ]
    for system, res in result["results"].items():
        for lv in res["levels"]:
            steady = lv.get("steady", {})
            lines.append(
                f"{system:<13}{lv['n']:>4} {lv['storm']:>5} {lv['failures']:>4} {lv['all_ready_s']:>11.1f} "
                f"{lv['overhead_p50_s']:>9.2f} {steady.get('calls_per_min', {}).get('squeue', 0):>10.1f} "
                f"{steady.get('hub_cpu_pct', math.nan):>9.2f} {steady.get('children_cpu_pct', math.nan):>7.2f} "
                f"{steady.get('hub_peak_rss_mb', math.nan):>7.0f} {lv['latency_ms']['home']['p95']:>11.1f} "
                f"{lv['latency_ms']['admin_users']['p95']:>12.1f}"
            )
        lines.append(f"{system}: squeue {res['squeue']}; restart {res['restart']}; stop {res['stop']}")
    return "\n".join(lines)


if __name__ == "__main__":
    os.umask(0o022)
    run_main(main)
