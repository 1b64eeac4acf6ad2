"""Hardening figures: hub restart, slurmctld outages, a node daemon killed; DaaS and batchspawner side by side.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/hardening.py [--scenarios restart,outage,burst,node]

The same hubs, cluster and users as benchmarks/spawns.py (one DaaS hub, one batchspawner SlurmSpawner
hub, both with their defaults; N single-user servers of 1 CPU / 512 MB on partition cpu). Each scenario
reports counts, for each system:

- ``restart``: M running servers (--servers, default 50), the hub stopped and started again: servers
  kept / lost, jobs cancelled, seconds until the API answers and until every route is back, servers
  answering through the proxy afterwards;
- ``outage``: K servers running (--running, default 10) on both hubs, slurmctld stopped for --outage s
  (default 120); during it a burst of spawn requests: how long until each fails and what the user reads;
  servers dropped during and after; controller back -> a new server ready;
- ``burst``: K spawns requested on both hubs, slurmctld stopped one second later for --outage s: spawns
  that end ready / failed, servers dropped afterwards, jobs left in the queue that no server owns;
- ``node``: one server per hub, the slurmd of its node killed: seconds until Slurm marks the job ended,
  until the hub notices (its poll), and what the hub says.

Needs root, benchmarks/setup.sh, and nothing else using the test cluster. Writes benchmarks/results/hardening.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    POLL,
    RESULTS,
    active_servers,
    ensure_users,
    environment,
    log,
    require_fresh_install,
    run_main,
    save,
)
from benchmarks.spawns import HUBS, JOB_NAMES, Bench, Spawn, bench_cluster, bench_workdir, cluster, running_hubs
from tests.integration.slurm import job_details

SCENARIOS = ("restart", "outage", "burst", "node")
SLURM_DIR = Path(os.environ.get("DAAS_SLURM_DIR", "/var/tmp/daas-slurm"))
SETTLE = 35.0  # seconds: one 30 s poll interval of either hub, and a margin


def ready_users(servers: dict[str, dict[str, Any]]) -> set[str]:
    return {user for user, server in servers.items() if server.get("ready")}


async def failure_of(client: httpx.AsyncClient, user: str, response: httpx.Response, posted: float) -> dict[str, Any]:
    """When the user learns that a spawn failed, and what they read (the POST's error, else the progress stream)."""
    if response.status_code >= 400:
        message = response.json().get("message", response.text) if response.content else ""
        return {"failed_after_s": round(time.time() - posted, 2), "status": response.status_code, "message": message}
    async with client.stream("GET", f"/users/{user}/server/progress", timeout=600) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event.get("failed") or event.get("ready"):
                    return {
                        "failed_after_s": round(time.time() - posted, 2),
                        "status": response.status_code,
                        "message": event.get("message", ""),
                        "ready": bool(event.get("ready")),
                    }
    return {"failed_after_s": round(time.time() - posted, 2), "status": response.status_code, "message": ""}


class Hardening:
    def __init__(self, bench: Bench, systems: Sequence[str]) -> None:
        self.bench = bench
        self.systems = systems

    # -- restart ----------------------------------------------------------------------------

    async def restart(self, system: str, servers: int) -> dict[str, Any]:
        bench, hub, commands = self.bench, self.bench.hubs[system], self.bench.commands[system]
        spawns = [Spawn(u) for u in bench.users[:servers]]
        async with bench.client(system) as client:
            await bench.start_servers(client, system, spawns)
        jobs = {s.user: s.job_id for s in spawns if not s.failed}
        log(f"restart {system}: {len(jobs)} of {servers} servers running; stopping the hub")
        before = {name: commands.count(name) for name in ("squeue", "scancel")}
        await asyncio.to_thread(hub.stop)
        began = time.monotonic()
        await asyncio.to_thread(hub.start)
        api_s = time.monotonic() - began
        expected = {f"/user/{user}/" for user in jobs}
        routes_s = None
        while time.monotonic() - began < 120:
            if expected <= set(await asyncio.to_thread(hub.routes)):
                routes_s = time.monotonic() - began
                break
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(timeout=30) as proxy:
            answers = await asyncio.gather(*(proxy.get(f"{hub.url}/user/{user}/api") for user in jobs))
        async with bench.client(system) as client:
            after = await active_servers(client)
            kept = {u for u in ready_users(after) if u in jobs}
            live = set(await asyncio.to_thread(bench.live_jobs, JOB_NAMES[system]))
            result = {
                "servers": len(jobs),
                "spawn_failures": servers - len(jobs),
                "kept": len(kept),
                "lost": len(jobs) - len(kept),
                "jobs_gone": sum(1 for job in jobs.values() if job not in live),
                "scancel_during_restart": commands.count("scancel") - before["scancel"],
                "squeue_during_restart": commands.count("squeue") - before["squeue"],
                "api_back_s": round(api_s, 2),
                "routes_back_s": None if routes_s is None else round(routes_s, 2),
                "answering_through_proxy": sum(1 for r in answers if r.status_code == 200),
            }
            await bench.stop_servers(client, system, bench.users[:servers])
        return result

    # -- controller outages -----------------------------------------------------------------

    async def outage(self, running: int, burst: int, seconds: float) -> dict[str, Any]:
        bench = self.bench
        first, extra = bench.users[:running], bench.users[running : running + burst]
        recovery_user = bench.users[running + burst]
        results: dict[str, Any] = {}
        clients = {system: bench.client(system) for system in self.systems}
        try:
            await asyncio.gather(*(bench.start_servers(clients[s], s, [Spawn(u) for u in first]) for s in self.systems))
            before = {s: ready_users(await active_servers(clients[s])) for s in self.systems}
            counts = ", ".join(f"{s} {len(before[s])}" for s in self.systems)
            log(f"outage: {counts} servers running; stopping slurmctld")
            await asyncio.to_thread(cluster, "stop-controller")
            stopped = time.time()
            lowest = {s: len(before[s]) for s in self.systems}

            async def sample() -> None:
                while True:
                    for s in self.systems:
                        lowest[s] = min(lowest[s], len(ready_users(await active_servers(clients[s])) & before[s]))
                    await asyncio.sleep(2)

            sampler = asyncio.ensure_future(sample())
            await asyncio.sleep(5)
            failures = await asyncio.gather(*(self.burst_during_outage(clients[s], s, extra) for s in self.systems))
            await asyncio.sleep(max(0.0, seconds - (time.time() - stopped)))
            sampler.cancel()
            await asyncio.to_thread(cluster, "start-controller")
            back = time.time()
            log("outage: slurmctld back; a new spawn on each hub")
            recovery = {s: Spawn(recovery_user) for s in self.systems}
            await asyncio.gather(*(bench.start_servers(clients[s], s, [recovery[s]]) for s in self.systems))
            await asyncio.sleep(SETTLE)
            for s, failed in zip(self.systems, failures, strict=True):
                after = ready_users(await active_servers(clients[s]))
                results[s] = {
                    "running_before": len(before[s]),
                    "dropped_during_outage": len(before[s]) - lowest[s],
                    "dropped_after_recovery": len(before[s] - after),
                    "spawns_during_outage": failed,
                    "controller_back_to_new_server_ready_s": (
                        None if recovery[s].failed else round(recovery[s].ready - back, 2)
                    ),
                    "recovery_spawn_failure": recovery[s].failed,
                }
            for s in self.systems:
                await bench.stop_servers(clients[s], s, [*first, *extra, recovery_user])
        finally:
            await restore(clients)
        return results

    @staticmethod
    async def burst_during_outage(client: httpx.AsyncClient, system: str, users: list[str]) -> list[dict[str, Any]]:
        body = json.dumps({"profile": "cpu", "cores": "min", "memory": "512M"} if system == "daas" else {})

        async def one(user: str) -> dict[str, Any]:
            posted = time.time()
            response = await client.post(f"/users/{user}/server", content=body)
            return {"user": user, **await failure_of(client, user, response, posted)}

        return list(await asyncio.gather(*(one(u) for u in users)))

    async def burst(self, count: int, seconds: float) -> dict[str, Any]:
        bench = self.bench
        users = bench.users[:count]
        clients = {system: bench.client(system) for system in self.systems}
        spawns = {s: [Spawn(u) for u in users] for s in self.systems}
        results: dict[str, Any] = {}
        try:
            starting = [asyncio.ensure_future(bench.start_servers(clients[s], s, spawns[s])) for s in self.systems]
            await asyncio.sleep(1)
            log(f"burst: {count} spawns requested on each hub; stopping slurmctld")
            await asyncio.to_thread(cluster, "stop-controller")
            await asyncio.sleep(seconds)
            await asyncio.to_thread(cluster, "start-controller")
            log("burst: slurmctld back; waiting for every spawn to settle")
            await asyncio.gather(*starting)
            await asyncio.sleep(SETTLE)
            for s in self.systems:
                servers = await active_servers(clients[s])
                ready = ready_users(servers)
                owned = {sp.job_id for sp in spawns[s] if sp.user in servers}
                live = set(await asyncio.to_thread(bench.live_jobs, JOB_NAMES[s]))
                ended_ready = {sp.user for sp in spawns[s] if not sp.failed}
                results[s] = {
                    "requested": count,
                    "ended_ready": len(ended_ready),
                    "failed": sum(1 for sp in spawns[s] if sp.failed),
                    "failure_messages": sorted({sp.failed[:200] for sp in spawns[s] if sp.failed}),
                    "dropped_after_ready": len(ended_ready - ready),
                    "jobs_owned_by_no_server": len(live - owned),
                }
            for s in self.systems:
                await bench.stop_servers(clients[s], s, users)
        finally:
            await restore(clients)
        return results

    # -- a node daemon killed ---------------------------------------------------------------

    async def node(self) -> dict[str, Any]:
        bench = self.bench
        user = bench.users[0]
        clients = {system: bench.client(system) for system in self.systems}
        spawns = {s: Spawn(user) for s in self.systems}
        results: dict[str, Any] = {}
        try:
            await asyncio.gather(*(bench.start_servers(clients[s], s, [spawns[s]]) for s in self.systems))
            nodes = {s: job_details(spawns[s].job_id)["NodeList"] for s in self.systems}
            for node in sorted(set(nodes.values())):
                pid = int((SLURM_DIR / "run" / f"slurmd-{node}.pid").read_text())
                log(f"node: killing slurmd of {node} (pid {pid}), running {[s for s in nodes if nodes[s] == node]}")
                os.kill(pid, signal.SIGKILL)
            killed = time.time()
            slurm_ended: dict[str, float] = {}
            hub_noticed: dict[str, float] = {}
            while len(hub_noticed) < len(self.systems) and time.time() - killed < 300:
                for s in self.systems:
                    state = await asyncio.to_thread(job_state, spawns[s].job_id)
                    if s not in slurm_ended and state not in ("RUNNING", "COMPLETING"):
                        slurm_ended[s] = time.time()
                    if s not in hub_noticed and user not in await active_servers(clients[s]):
                        hub_noticed[s] = time.time()
                await asyncio.sleep(POLL)
            for s in self.systems:
                log_text = bench.hubs[s].log_path.read_text(errors="replace")
                mentions = re.compile(rf"\bjob {spawns[s].job_id}\b", re.IGNORECASE)
                said = [line for line in log_text.splitlines() if mentions.search(line)]
                results[s] = {
                    "node": nodes[s],
                    "job_state_after": await asyncio.to_thread(job_state, spawns[s].job_id),
                    "slurm_ended_after_s": round(slurm_ended[s] - killed, 1) if s in slurm_ended else None,
                    "hub_noticed_after_s": round(hub_noticed[s] - killed, 1) if s in hub_noticed else None,
                    "hub_behind_slurm_s": (
                        round(hub_noticed[s] - slurm_ended[s], 1) if s in hub_noticed and s in slurm_ended else None
                    ),
                    "hub_log": said[-3:],
                }
            for s in self.systems:
                await clients[s].delete(f"/users/{user}/server")
        finally:
            await asyncio.to_thread(cluster, "start")  # starts the killed slurmd and resumes its node
            for client in clients.values():
                await client.aclose()
        for s in self.systems:
            await bench.wait_no_jobs(JOB_NAMES[s])
        return results


async def restore(clients: dict[str, httpx.AsyncClient]) -> None:
    """After an outage scenario, also a failed one: the controller up again, the clients closed."""
    if not await asyncio.to_thread(controller_answers):
        await asyncio.to_thread(cluster, "start-controller")
    for client in clients.values():
        await client.aclose()


def job_state(job_id: str) -> str:
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60, check=False
    ).stdout.strip()
    return out or "GONE"


def controller_answers() -> bool:
    return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=30, check=False).returncode == 0


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="subset of restart,outage,burst,node")
    parser.add_argument("--servers", type=int, default=50, help="running servers for the restart (default 50)")
    parser.add_argument("--running", type=int, default=10, help="servers per hub during outages (default 10)")
    parser.add_argument("--outage", type=float, default=120, help="seconds slurmctld stays stopped (default 120)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds until a server counts as failed")
    parser.add_argument("--json", type=Path, default=RESULTS / "hardening.json", help="results file")
    parser.add_argument("--workdir", type=Path, default=None, help="hub directories and logs (default: new /tmp dir)")
    args = parser.parse_args(argv)
    args.scenario_list = [s for s in SCENARIOS if s in {x.strip() for x in args.scenarios.split(",")}]
    if not args.scenario_list:
        parser.error(f"--scenarios: choose among {', '.join(SCENARIOS)}")
    return args


async def run(hardening: Hardening, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in args.scenario_list:
        log(f"scenario {scenario}")
        if scenario == "restart":
            results[scenario] = {s: await hardening.restart(s, args.servers) for s in hardening.systems}
        elif scenario == "outage":
            results[scenario] = await hardening.outage(args.running, 5, args.outage)
        elif scenario == "burst":
            results[scenario] = await hardening.burst(args.running, args.outage)
        else:
            results[scenario] = await hardening.node()
        log(f"{scenario}: {json.dumps(results[scenario], default=str)}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_fresh_install()
    workdir = bench_workdir(args.workdir, "daas-bench-hardening-")
    users = [f"bench{i:02d}" for i in range(1, max(args.servers, args.running + 6) + 1)]
    ensure_users(users)
    began = time.monotonic()
    bench = Bench(workdir, users, HUBS, args.timeout)
    with bench_cluster(max(8, len(users) // 2 + 8), bench.job_starts), running_hubs(bench, users):
        results = asyncio.run(run(Hardening(bench, HUBS), args))
    result = {
        "environment": environment(),
        "settings": {**{k: v for k, v in vars(args).items() if k != "json"}, "workdir": str(workdir)},
        "elapsed_s": round(time.monotonic() - began, 1),
        "results": results,
    }
    save(args.json, result)
    print(json.dumps(results, indent=2, default=str))
    print(f"\n{result['elapsed_s']} s in all; JSON: {args.json}; logs: {workdir}")
    return 0


if __name__ == "__main__":
    run_main(main)
