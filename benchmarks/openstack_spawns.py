"""Concurrent VM spawns on the real OpenStack test cloud: DaaS's OpenStack backend against plain `server create`.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/openstack_spawns.py [--counts 1,5] [--repeats 3] [--steady 60]

The cloud is tests/cluster/openstack.sh (Keystone, Nova with the fake driver, Placement, Glance, the Neutron
stand-in); its boot agent (tests/cluster/openstack_vms.py) plays each ACTIVE server's VM: it checks the
#cloud-config, writes its files and runs its systemd unit as the unit's User on the VM's own 127.77.x.y.
Systems, each starting N VMs at once (flavor daas.small, image daas-jupyter, no network), for N Unix users:
- ``daas``: a JupyterHub 6 with DaaSSpawner and one OpenStack profile (project member `daas-hub`, the backend's
  default intervals: a list every 10 s, every 2 s while a start or stop waits), N concurrent
  ``POST /hub/api/users/<u>/server``; ready = the hub's server model says ready (the hub has seen it answer);
- ``floor``: N concurrent ``openstack --os-cloud daas-hub server create ... --user-data FILE --tag daas-floor``
  (python-openstackclient of the cloud's venv, one process each) with a #cloud-config of the same shape (a
  systemd unit, daemon-reload, start --no-block) whose unit runs the same venv's JupyterLab (jupyter_server with
  the lab extension) as the user on the VM's address, no token; ready = it answers HTTP 200;
- ``floor-sdk`` (not in the default systems, a diagnostic): the floor's VMs created as the hub creates its own,
  through one warm openstacksdk connection (`POST /servers`, ids looked up once), no CLI process.

Per system, N and round: time from the first POST or create to all ready, per-user p50/max, failures, and
the stages of the VMs (seconds from the first request until the median and the last VM got there): create
answered, ACTIVE (the admin's list every 0.5 s), booted (the agent's boot.json), server listening (its log),
for DaaS the bootstrap secret redeemed and the address reported (the hub's log); nova-api requests without
``all_tenants`` (not the agent's or this benchmark's) per phase. The systems alternate in each round, their
order rotating; after each run the cloud has no server left. Then, once, 10 DaaS VMs running: the hub's
nova-api requests in `--steady` seconds, by method and path.
Needs root (users bench01.., the VMs' processes) and the running cloud; it resets the cloud at its start.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import math
import os
import pwd
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openstack
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    POLL,
    RESULTS,
    ConcurrentRun,
    MeteredPhase,
    Spawn,
    ensure_users,
    environment,
    fmt_spread,
    hub_client,
    log,
    percentile,
    require_fresh_install,
    rotated,
    run_main,
    save,
    spread,
    start_servers,
    stop_servers,
    until_empty,
)
from benchmarks.spawns import HUB_COMMON, bench_workdir
from tests.integration.hub import Hub
from tests.integration.openstack import CLOUDS, DIR, NOVA_ACCESS_LOG, VMS, Admin, cloud
from tests.integration.os_site import VENV, profile

SYSTEMS = ("daas", "floor", "floor-sdk")
DEFAULT_SYSTEMS = ("daas", "floor")
PROFILE = "vm-small"
FLAVOR = "daas.small"
IMAGE = "daas-jupyter"
DAAS_OPTIONS = {"profile": PROFILE, "flavor": FLAVOR, "environment": "lab", "walltime": "1:00:00"}
FLOOR_TAG = "daas-floor"
FLOOR_PORT = 8888  # each VM has its own address
FLOOR_UNIT = "daas-floor.service"
OPENSTACK_CLI = Path(os.environ.get("DAAS_OS_CACHE", "/var/cache/daas-openstack")) / "venv" / "bin" / "openstack"
WATCH_INTERVAL = 0.5  # seconds between the admin's lists that time ACTIVE (the boot agent lists as often)
STEADY_SERVERS = 10
# The first JupyterLab line that says the server listens, in the VM's server.log (both systems' servers).
LISTENING = re.compile(r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \w+\] .*is running at:", re.MULTILINE)
HUB_LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) [^\]]*\] (.*)$", re.MULTILINE)
# The hub's own stages of a DaaS start, from its log: the create answered, the launcher's two calls.
HUB_EVENTS = {
    "created": re.compile(r"^Created VM "),
    "redeemed": re.compile(r"^200 POST /hub/api/daas/server-secrets"),
    "reported": re.compile(r"^204 POST /hub/api/daas/server-address"),
    "report_409": re.compile(r"^409 POST /hub/api/daas/server-address"),
}
STAGES = {
    "daas": ("created", "active", "booted", "redeemed", "listening", "reported", "ready"),
    "floor": ("created", "active", "booted", "listening", "ready"),
    "floor-sdk": ("created", "active", "booted", "listening", "ready"),
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def daas_config(profiles: Path) -> str:
    """The product's defaults for the backend (interval 10 s, busy_interval 2 s): no test intervals."""
    return f"""
        from daas_spawner import load_profiles
        c.DaaSSpawner.profiles = load_profiles("{profiles}")
        c.OpenStackBackend.cloud = "daas-hub"
        c.OpenStackBackend.identity_source = "passwd"
    """


def local_time(stamp: str) -> float:
    """A log's `YYYY-mm-dd HH:MM:SS.fff` (the machine's local time) as epoch seconds."""
    return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


# -- the floor's VM --------------------------------------------------------------------------


def floor_user_data(user: str) -> str:
    """The #cloud-config the agent boots, shaped like DaaS's: a unit and its environment, the home, start."""
    account = pwd.getpwnam(user)
    home = f"/home/{user}"
    code = (
        "import os, sys; from jupyter_server.serverapp import main; "
        f"sys.argv[1:] = ['--ip=' + os.environ['DAAS_BIND_IP'], '--port={FLOOR_PORT}', '--no-browser', "
        "'--IdentityProvider.token=']; main()"
    )
    unit = textwrap.dedent(f"""\
        [Unit]
        Description=the benchmark's floor: JupyterLab as {user}

        [Service]
        Type=simple
        User={account.pw_uid}
        Group={account.pw_gid}
        EnvironmentFile=/etc/daas-floor/server.env
        WorkingDirectory={home}
        ExecStart="{VENV}/bin/python3" "-c" "{code}"
        Restart=no
    """)
    env = f"HOME={home}\nUSER={user}\nPATH={VENV}/bin:/usr/local/bin:/usr/bin:/bin\n"
    config = {
        "write_files": [
            {"path": "/etc/daas-floor/server.env", "permissions": "0600", "content": env},
            {"path": f"/etc/systemd/system/{FLOOR_UNIT}", "permissions": "0644", "content": unit},
        ],
        "runcmd": [
            ["install", "-d", "-o", str(account.pw_uid), "-g", str(account.pw_gid), "-m", "0700", home],
            ["systemctl", "daemon-reload"],
            ["systemctl", "start", "--no-block", FLOOR_UNIT],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, width=1000)


# -- what the cloud, the VMs and the hub say -------------------------------------------------


class ServerWatch:
    """The admin's list every WATCH_INTERVAL while a run spawns: when each server was first seen ACTIVE."""

    def __init__(self) -> None:
        self.admin = Admin()  # its own connection: the run's deletes use another
        self.active: dict[str, float] = {}  # server id -> epoch seconds of the answer that showed it ACTIVE
        self.seen: set[str] = set()

    async def run(self) -> None:
        while True:
            try:
                servers = await asyncio.to_thread(self.admin.servers, None)
            except Exception as err:  # a late answer only makes the stage later; say so and go on
                log(f"the admin's list failed: {err}")
                servers = []
            now = time.time()
            for server in servers:
                self.seen.add(server["id"])
                if server["status"] == "ACTIVE":
                    self.active.setdefault(server["id"], now)
            await asyncio.sleep(WATCH_INTERVAL)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores: /proc/stat's first line, all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def booted_at(server_id: str) -> float:
    """When the agent booted the VM: its boot.json (written before the files and the unit's start)."""
    try:
        return (VMS / server_id / "boot.json").stat().st_mtime
    except OSError:
        return math.nan


def listening_at(server_id: str) -> float:
    """When the VM's JupyterLab said it listens (its log, both systems' servers write the same line)."""
    try:
        found = LISTENING.search((VMS / server_id / "server.log").read_text(errors="replace"))
    except OSError:
        return math.nan
    return local_time(found[1]) if found else math.nan


class LogTail:
    """A log read from a mark on (the nova-api access log, the hub's log)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def lines(self) -> str:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            return file.read().decode(errors="replace")


def nova_call(line: str) -> str | None:
    """An access-log line as "METHOD /path?query-names" (ids as <id>); None for the admin's and the agent's
    (all_tenants) and for lines that are no request."""
    quoted = line.split('"')
    request = quoted[1].split() if len(quoted) > 2 else []
    if len(request) < 2 or "all_tenants" in request[1]:
        return None
    path, _, query = request[1].partition("?")
    names = sorted({pair.partition("=")[0] for pair in query.split("&") if pair})
    return f"{request[0]} {UUID.sub('<id>', path)}" + (f"?{'&'.join(names)}" if names else "")


def hub_events(text: str) -> dict[str, list[float]]:
    """Epoch seconds of each HUB_EVENTS line in a stretch of the hub's log."""
    events: dict[str, list[float]] = {name: [] for name in HUB_EVENTS}
    for stamp, message in HUB_LINE.findall(text):
        for name, pattern in HUB_EVENTS.items():
            if pattern.match(message):
                events[name].append(local_time(stamp))
    return events


# -- one measured run -------------------------------------------------------------------------


@dataclass
class Phase(MeteredPhase):
    requests: dict[str, int] = field(default_factory=dict)  # nova_call -> count

    def counts(self) -> dict[str, int]:
        return self.requests


@dataclass
class FloorSpawn(Spawn):
    """A floor VM: its id, and when its `server create` answered."""

    server_id: str = ""
    created: float = math.nan


@dataclass
class Run(ConcurrentRun):
    # Epoch seconds at which each VM reached each stage (one value per VM; the order is not the users').
    stages: dict[str, list[float]] = field(default_factory=dict)
    reports_refused: int = 0  # the hub's 409s to a launcher's report (the view did not show the VM ACTIVE yet)
    # CPU seconds from the first request until all were ready: the whole machine (cloud, agent, VMs, hub) and the hub.
    cpu_s: dict[str, float] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        seconds = [s.seconds for s in self.spawns if not s.failed]
        first = min((s.posted for s in self.spawns), default=math.nan)
        stages: dict[str, float] = {}
        for name, times in self.stages.items():
            stages[f"stage_{name}_p50_s"] = percentile(times, 50) - first
            stages[f"stage_{name}_last_s"] = max(times, default=math.nan) - first if len(times) == self.n else math.nan
        return {
            "all_ready_s": self.all_ready_s,
            "p50_s": percentile(seconds, 50),
            "max_s": max(seconds, default=math.nan),
            "failures": sum(1 for s in self.spawns if s.failed),
            "reports_refused": self.reports_refused,
            **{f"cpu_{name}_s": value for name, value in self.cpu_s.items()},
            **stages,
        }

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if k != "spawns"}
        return {**fields, **self.stats(), "spawns": [asdict(s) for s in self.spawns]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """A run of an earlier invocation (--append), from its JSON."""
        spawn = Spawn if data["system"] == "daas" else FloorSpawn
        return cls(
            data["system"],
            data["n"],
            data["round"],
            [spawn(**s) for s in data["spawns"]],
            [Phase(**p) for p in data["phases"]],
            data.get("stages", {}),
            data.get("reports_refused", 0),
            data.get("cpu_s", {}),
        )


class Bench:
    """The DaaS hub, the floor's user_data and the cloud; one run = N spawns and their stop."""

    def __init__(self, workdir: Path, users: list[str], timeout: float) -> None:
        self.admin = Admin()
        self.users = users
        self.timeout = timeout
        profiles = workdir / "profiles.yaml"
        flavors = [{"name": FLAVOR, "display_name": "Small"}]
        profiles.write_text(yaml.safe_dump({"default_profile": PROFILE, "profiles": [profile(PROFILE, flavors)]}))
        config = textwrap.dedent(HUB_COMMON) + textwrap.dedent(daas_config(profiles))
        self.hub = Hub(workdir / "hub", config, env={"OS_CLIENT_CONFIG_FILE": str(CLOUDS)})
        self.hub_log = LogTail(self.hub.log_path)
        self.nova = LogTail(NOVA_ACCESS_LOG)
        self.project: Any = None  # floor-sdk's warm connection as the hub's project member, made at its first run
        self.floor_body: dict[str, Any] = {}
        self.user_data = {}
        for user in users:
            self.user_data[user] = workdir / "floor" / f"{user}.yaml"
            self.user_data[user].parent.mkdir(exist_ok=True)
            self.user_data[user].write_text(floor_user_data(user))

    @contextlib.asynccontextmanager
    async def metered(self, phase: Phase) -> Any:
        """The phase's nova-api requests, but the admin's and the agent's."""
        self.nova.mark()
        try:
            yield phase
        finally:
            phase.ended = time.time()
            text = await asyncio.to_thread(self.nova.lines)
            phase.requests = dict(Counter(c for line in text.splitlines() if (c := nova_call(line))))

    async def servers(self, tag: str | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.admin.servers, tag)

    async def no_servers(self) -> None:
        """The cloud has no server (a stop's deletes may still be under way)."""
        await until_empty(self.servers, "servers in the cloud", timeout=120)

    async def run(self, system: str, n: int, round_no: int) -> Run:
        await self.no_servers()
        users = self.users[:n]
        run = Run(system, n, round_no, [Spawn(u) if system == "daas" else FloorSpawn(u) for u in users])
        watch = ServerWatch()
        watching = asyncio.ensure_future(watch.run())
        self.hub_log.mark()
        machine, hub = machine_busy_s(), process_cpu_s(self.hub.pid)
        try:
            async with self.metered(Phase("spawn", time.time())) as spawning:
                run.phases.append(spawning)
                if system == "daas":
                    async with hub_client(self.hub) as client:
                        await start_servers(client, run.spawns, json.dumps(DAAS_OPTIONS), self.timeout)
                else:
                    await self.floor_spawns(run.spawns, sdk=system == "floor-sdk")
        finally:
            watching.cancel()
        run.cpu_s = {"machine": machine_busy_s() - machine, "hub": process_cpu_s(self.hub.pid) - hub}
        ids = sorted(watch.seen)
        run.stages = {
            "active": [watch.active[i] for i in ids if i in watch.active],
            "booted": [t for i in ids if not math.isnan(t := booted_at(i))],
            "listening": [t for i in ids if not math.isnan(t := listening_at(i))],
            "ready": [s.ready for s in run.spawns if not s.failed],
        }
        if system == "daas":
            events = hub_events(await asyncio.to_thread(self.hub_log.lines))
            run.reports_refused = len(events.pop("report_409"))
            run.stages.update(events)
        else:
            run.stages["created"] = [s.created for s in run.spawns if not math.isnan(s.created)]
        async with self.metered(Phase("stop", time.time())) as stopping:
            run.phases.append(stopping)
            if system == "daas":
                async with hub_client(self.hub) as client:
                    await stop_servers(client, users)
            else:
                await self.floor_delete()
            await self.no_servers()
        return run

    # -- the floor ---------------------------------------------------------------------------

    def warm_project(self) -> None:
        """floor-sdk's connection, its token fetched and the flavor's and image's ids looked up (as the hub's)."""
        if self.project is None:
            self.project = openstack.connect(cloud="daas-hub")
            self.project.compute.get("/servers/detail?limit=1").raise_for_status()
            self.floor_body = {
                "imageRef": self.admin.image_id(IMAGE),
                "flavorRef": self.admin.flavor_id(FLAVOR),
                "networks": "none",
                "tags": [FLOOR_TAG],
            }

    def sdk_create(self, spawn: FloorSpawn) -> None:
        """`POST /servers` through the warm connection (a worker thread: the SDK blocks)."""
        user_data = base64.b64encode(self.user_data[spawn.user].read_bytes()).decode()
        body = {**self.floor_body, "name": f"floor-{spawn.user}", "user_data": user_data}
        response = self.project.compute.post("/servers", json={"server": body}, microversion="2.52")
        if response.status_code != 202:
            spawn.failed = f"POST /servers: HTTP {response.status_code}: {response.text[:300]}"
        else:
            spawn.server_id = response.json()["server"]["id"]

    async def floor_spawns(self, spawns: Sequence[FloorSpawn], sdk: bool) -> None:
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(CLOUDS)}
        if sdk:
            await asyncio.to_thread(self.warm_project)

        async def create(spawn: FloorSpawn) -> None:
            if sdk:
                spawn.posted = time.time()
                await asyncio.to_thread(self.sdk_create, spawn)
                spawn.created = time.time()
                return
            argv = [
                str(OPENSTACK_CLI), "--os-cloud", "daas-hub", "server", "create", "--flavor", FLAVOR,
                "--image", IMAGE, "--nic", "none", "--user-data", str(self.user_data[spawn.user]),
                "--tag", FLOOR_TAG, "-f", "value", "-c", "id", f"floor-{spawn.user}",
            ]  # fmt: skip
            spawn.posted = time.time()
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
            out, err = await process.communicate()
            spawn.created = time.time()
            if process.returncode:
                spawn.failed = f"server create: {err.decode().strip()[-300:]}"
            else:
                spawn.server_id = out.decode().strip()

        async def answering(client: httpx.AsyncClient, spawn: FloorSpawn) -> None:
            port_file = DIR / "ports" / f"{spawn.server_id}.json"
            while True:
                with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
                    address = json.loads(port_file.read_text())["ip_address"]
                    if (await client.get(f"http://{address}:{FLOOR_PORT}/api/status")).status_code == 200:
                        spawn.ready = time.time()
                        return
                await asyncio.sleep(POLL)

        async def one(client: httpx.AsyncClient, spawn: FloorSpawn) -> None:
            await create(spawn)
            if not spawn.failed:
                await answering(client, spawn)

        async with httpx.AsyncClient(timeout=10) as client:
            tasks = [asyncio.ensure_future(one(client, s)) for s in spawns]
            _, late = await asyncio.wait(tasks, timeout=self.timeout)
            for task in late:
                task.cancel()
        for spawn in spawns:
            if math.isnan(spawn.ready) and not spawn.failed:
                spawn.failed = f"not answering after {self.timeout:g} s"

    async def floor_delete(self) -> None:
        """Every server tagged daas-floor, deleted as the admin; back when none is left."""
        for server in await self.servers(FLOOR_TAG):
            await asyncio.to_thread(self.admin.delete, server["id"])
        await until_empty(lambda: self.servers(FLOOR_TAG), f"servers tagged {FLOOR_TAG}")

    # -- steady ------------------------------------------------------------------------------

    async def steady(self, seconds: float) -> dict[str, Any]:
        """STEADY_SERVERS DaaS VMs running: the hub's nova-api requests in `seconds` (after one quiet interval)."""
        await self.no_servers()
        users = self.users[:STEADY_SERVERS]
        spawns = [Spawn(u) for u in users]
        async with hub_client(self.hub) as client:
            await start_servers(client, spawns, json.dumps(DAAS_OPTIONS), self.timeout)
            failed = [f"{s.user}: {s.failed}" for s in spawns if s.failed]
            settle = 12.0  # the backend's interval (10 s) and more: the starts' 2 s lists are over
            await asyncio.sleep(settle)
            async with self.metered(Phase("steady", time.time())) as running:
                await asyncio.sleep(seconds)
            running_after = len(await self.servers("daas"))
            await stop_servers(client, users)
        await self.no_servers()
        return {
            "servers": STEADY_SERVERS,
            "failed": failed,
            "running_after": running_after,
            "settle_s": settle,
            "seconds": running.seconds,
            "requests": running.requests,
            "requests_per_min": running.per_minute(),
            "by_call_per_min": {call: running.per_minute(call) for call in sorted(running.requests)},
        }


# -- summary ----------------------------------------------------------------------------------


def per_round_ratio(runs: list[Run], n: int, floor: str) -> dict[str, float] | None:
    """All ready, daas / this floor, for each round that has both, summarised."""
    ratios = []
    for round_no in sorted({r.round for r in runs}):
        pair = {r.system: r for r in runs if r.n == n and r.round == round_no}
        if "daas" in pair and floor in pair:
            ratio = pair["daas"].all_ready_s / pair[floor].all_ready_s
            if not math.isnan(ratio):  # NaN: a run had failures
                ratios.append(ratio)
    return spread(ratios) if ratios else None


def summarise(runs: list[Run], counts: list[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for n in counts:
        row: dict[str, Any] = {}
        for system in SYSTEMS:
            mine = [r for r in runs if r.system == system and r.n == n]
            if not mine:
                continue
            stats = [r.stats() for r in mine]
            measured = [key for key in stats[0] if key != "failures" and all(key in s for s in stats)]
            entry: dict[str, Any] = {key: spread([s[key] for s in stats]) for key in measured}
            entry["failures"] = sum(s["failures"] for s in stats)
            entry["spawns"] = sum(r.n for r in mine)
            for name in ("spawn", "stop"):
                phases = [p for r in mine if (p := r.phase(name)) is not None]
                seen = sorted({call for p in phases for call in p.requests})
                entry[name] = {
                    "seconds": spread([p.seconds for p in phases]),
                    "requests_per_run": spread([sum(p.requests.values()) for p in phases]),
                    "by_call_per_run": {call: spread([p.requests.get(call, 0) for p in phases]) for call in seen},
                }
            row[system] = entry
        row["ratio_all_ready_daas_to_floor"] = per_round_ratio(runs, n, "floor")
        if any(r.system == "floor-sdk" and r.n == n for r in runs):
            row["ratio_all_ready_daas_to_floor_sdk"] = per_round_ratio(runs, n, "floor-sdk")
        summary[str(n)] = row
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = [
        "Concurrent VM spawns: seconds, median over rounds [min-max]; nova-api requests per run (not all_tenants)",
        f"{'N':>3}  {'system':<7} {'all ready':<20} {'user p50':<20} {'user max':<20} {'fail':>4}  "
        f"{'409s':<14} {'requests spawn':<20} {'requests stop':<20}",
    ]
    for n, row in summary.items():
        for system in SYSTEMS:
            e = row.get(system)
            if e is None:
                continue
            requests = [fmt_spread(e[phase]["requests_per_run"], 0) for phase in ("spawn", "stop")]
            lines.append(
                f"{n:>3}  {system:<7} {fmt_spread(e['all_ready_s']):<20} {fmt_spread(e['p50_s']):<20} "
                f"{fmt_spread(e['max_s']):<20} {e['failures']:>4}  {fmt_spread(e['reports_refused'], 0):<14} "
                f"{requests[0]:<20} {requests[1]:<20}"
            )
        for floor in ("floor", "floor_sdk"):
            ratio = row.get(f"ratio_all_ready_daas_to_{floor}")
            if ratio:
                lines.append(f"{n:>3}  daas/{floor} all ready {fmt_spread(ratio, 2)}")
    return "\n".join(lines)


def stages_table(summary: dict[str, Any]) -> str:
    """Seconds from the first request until the median VM / the last VM reached each stage."""
    names = STAGES["daas"]
    lines = [
        "Where the time goes: seconds from the first request until the median VM | the last VM reached each stage;"
        " CPU seconds until all were ready, of the machine and of the hub",
        f"{'N':>3}  {'system':<9} " + " ".join(f"{name:<13}" for name in (*names, "cpu machine", "cpu hub")),
    ]
    for n, row in summary.items():
        for system in SYSTEMS:
            e = row.get(system)
            if e is None:
                continue
            cells = []
            for name in names:
                p50, last = e.get(f"stage_{name}_p50_s"), e.get(f"stage_{name}_last_s")
                cells.append(f"{p50['median']:.1f}|{last['median']:.1f}" if p50 and last else "-")
            cells += [fmt_spread(e[key]) if key in e else "-" for key in ("cpu_machine_s", "cpu_hub_s")]
            lines.append(f"{n:>3}  {system:<9} " + " ".join(f"{cell:<13}" for cell in cells))
    return "\n".join(lines)


def calls_table(summary: dict[str, Any], steady: dict[str, Any] | None) -> str:
    lines = ["nova-api requests by call (not all_tenants): per run, medians over rounds"]
    for n, row in summary.items():
        for system in SYSTEMS:
            for name in ("spawn", "stop"):
                p = (row.get(system) or {}).get(name)
                if p:
                    calls = ", ".join(f"{c} {v['median']:g}" for c, v in p["by_call_per_run"].items())
                    lines.append(f"{n:>3}  {system:<7} {name:<6} {calls or '-'}")
    if steady:
        calls = ", ".join(f"{c} {v:.1f}" for c, v in steady["by_call_per_min"].items())
        lines.append(
            f"{steady['servers']} DaaS VMs running, {steady['seconds']:.0f} s: {steady['requests_per_min']:.1f}"
            f" requests/min ({calls or '-'})"
        )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,5", help="concurrent spawn counts N (default 1,5)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--steady", type=float, default=60, help=f"seconds counting requests with {STEADY_SERVERS} VMs running (60)"
    )
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), help=f"subset of {','.join(SYSTEMS)}")
    parser.add_argument("--timeout", type=float, default=300, help="seconds until a server counts as failed")
    parser.add_argument("--json", type=Path, default=RESULTS / "openstack_spawns.json", help="results file")
    parser.add_argument("--workdir", type=Path, default=None, help="hub directory and logs (default: new /tmp dir)")
    parser.add_argument(
        "--append",
        action="store_true",
        help="add --repeats rounds to the runs in --json (the steady figure of --json stays unless --steady > 0)",
    )
    args = parser.parse_args(argv)
    args.count_list = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    args.system_list = [s for s in SYSTEMS if s in {x.strip() for x in args.systems.split(",")}]
    if not args.system_list or args.repeats < 0 or not args.count_list or min(args.count_list) < 1:
        parser.error("--systems, --repeats and --counts must name something")
    return args


async def measure(
    bench: Bench, args: argparse.Namespace, runs: list[Run], round_done: Callable[[list[Run]], None]
) -> list[Run]:
    """Rounds after those in `runs`; `round_done` gets every run so far after each round (the JSON is kept)."""
    first = max((r.round for r in runs), default=-1) + 1
    for round_no in range(first, first + args.repeats):
        for n in args.count_list:
            for system in rotated(args.system_list, round_no):
                run = await bench.run(system, n, round_no)
                s = run.stats()
                log(
                    f"round {round_no + 1}/{first + args.repeats} N={n:<2} {system:<5} "
                    f"all ready {s['all_ready_s']:.1f} s, p50 {s['p50_s']:.1f} max {s['max_s']:.1f} s, "
                    f"{s['failures']} failed; stages (last) "
                    + ", ".join(f"{k} {s[f'stage_{k}_last_s']:.1f}" for k in STAGES[system])
                    + (f"; {run.reports_refused} reports refused (409)" if system == "daas" else "")
                    + f"; CPU s machine {s['cpu_machine_s']:.1f}, hub {s['cpu_hub_s']:.1f}"
                )
                for spawn in run.spawns:
                    if spawn.failed:
                        log(f"  {spawn.user}: {spawn.failed}")
                runs.append(run)
        round_done(runs)
    return runs


def result(
    args: argparse.Namespace, runs: list[Run], steady: dict[str, Any] | None, workdir: Path, seconds: float
) -> dict[str, Any]:
    counts = sorted({r.n for r in runs})
    return {
        "environment": {**environment(), "openstack_cli": str(OPENSTACK_CLI)},
        "settings": {
            "counts": counts,
            "repeats": len({r.round for r in runs}),
            "steady_s": args.steady,
            "systems": sorted({r.system for r in runs}, key=SYSTEMS.index),
            "vm": f"flavor {FLAVOR}, image {IMAGE}, network none; the servers: {VENV}",
            "daas_options": DAAS_OPTIONS,
            "backend_intervals": "the product's defaults: interval 10 s, busy_interval 2 s",
            "active_watch_s": WATCH_INTERVAL,
            "workdir": str(workdir),
            "elapsed_s": round(seconds, 1),
        },
        "summary": summarise(runs, counts),
        "steady": steady,
        "runs": [r.to_json() for r in runs],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_fresh_install()
    earlier: dict[str, Any] = json.loads(args.json.read_text()) if args.append and args.json.exists() else {}
    runs = [Run.from_json(r) for r in earlier.get("runs", [])]
    steady: dict[str, Any] | None = earlier.get("steady")
    spent = earlier.get("settings", {}).get("elapsed_s", 0.0)
    workdir = bench_workdir(args.workdir, "daas-bench-os-")
    users = [f"bench{i:02d}" for i in range(1, max(*args.count_list, STEADY_SERVERS) + 1)]
    ensure_users(users)
    cloud("start")
    cloud("reset")
    began = time.monotonic()
    bench = Bench(workdir, users, args.timeout)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout's SIGTERM still stops the hub and VMs

    def keep(so_far: list[Run]) -> None:
        save(args.json, result(args, so_far, steady, workdir, spent + time.monotonic() - began))

    async def everything() -> None:
        nonlocal steady
        await measure(bench, args, runs, keep)
        if args.steady > 0:
            steady = await bench.steady(args.steady)
            keep(runs)

    try:
        log(f"starting hub at {bench.hub.url} ({bench.hub.workdir})")
        bench.hub.start()
        bench.hub.create_users(*users)
        asyncio.run(everything())
    finally:
        with contextlib.suppress(Exception):
            bench.hub.stop()
        cloud("reset")
    final = json.loads(args.json.read_text())
    print(table(final["summary"]))
    print()
    print(stages_table(final["summary"]))
    print()
    print(calls_table(final["summary"], final.get("steady")))
    print(f"\n{final['settings']['elapsed_s']} s in all; JSON: {args.json}; logs: {workdir}")
    return 0


if __name__ == "__main__":
    run_main(main)
