"""What every benchmark shares: the peer's venv, hubs started from it, concurrent spawns through a hub's REST API,
summaries, the machine's description."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import pwd
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import tests.integration.hub as hub_module  # noqa: E402
from tests.integration.hub import Hub, chp_command  # noqa: E402
from tests.integration.slurm import controller_up  # noqa: E402

PREFIX = Path(os.environ.get("DAAS_PREFIX", "/opt/jupyterhub-daas"))
# The peers (batchspawner, jupyterhub_moss) in a venv of their own, with the same JupyterHub (benchmarks/setup.sh).
BENCH_VENV = Path(os.environ.get("DAAS_BENCH_VENV", PREFIX / "venv-bench"))
RESULTS = REPO / "benchmarks" / "results"
PROFILES_DIR = REPO / "benchmarks" / "profiles"  # flame graphs (--profile)
INFO_LOGGING = """
    c.JupyterHub.log_level = "INFO"  # tests/integration's Hub logs DEBUG; a site runs INFO
"""
POLL = 0.25  # seconds between the benchmarks' readiness checks, the same for every system


class VenvHub(Hub):
    """tests/integration's Hub, started with the jupyterhub of another venv (the peers have their own)."""

    spawner_config = ()  # the peer's config names its spawner; its venv has no jupyterhub-daas

    def __init__(self, workdir: Path, extra_config: str, venv_bin: Path) -> None:
        self.venv_bin = venv_bin
        super().__init__(workdir, extra_config)

    def start(self, timeout: float = 60) -> Hub:
        # Hub.start runs VENV_BIN/jupyterhub with VENV_BIN first on PATH; hubs start one at a time.
        saved = hub_module.VENV_BIN
        hub_module.VENV_BIN = self.venv_bin
        try:
            return super().start(timeout)
        finally:
            hub_module.VENV_BIN = saved


@dataclass
class Spawn:
    """One user's server start through a hub: when it was asked for, when the hub called it ready, or why not."""

    user: str
    posted: float = math.nan  # epoch seconds
    ready: float = math.nan
    failed: str = ""

    @property
    def seconds(self) -> float:
        return self.ready - self.posted


def hub_client(hub: Hub) -> httpx.AsyncClient:
    """The hub's REST API as its admin service."""
    headers = {"Authorization": f"token {hub.admin_token}"}
    return httpx.AsyncClient(base_url=hub.api_url, headers=headers, timeout=600)


async def active_servers(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """User -> default server model, for users with a server starting, running or stopping.

    Page by page: JupyterHub answers at most `api_page_max_limit` (200) users per request."""
    servers: dict[str, dict[str, Any]] = {}
    page_size = 200
    offset = 0
    while True:
        response = await client.get("/users", params={"state": "active", "offset": offset, "limit": page_size})
        response.raise_for_status()
        page = response.json()
        servers.update({u["name"]: u["servers"][""] for u in page if "" in u.get("servers", {})})
        if len(page) < page_size:
            return servers
        offset += page_size


async def until_empty(query: Callable[[], Awaitable[Sized]], what: str = "servers", timeout: float = 300) -> None:
    """Ask `query` every POLL seconds until it answers nothing (servers stopped, jobs or pods gone)."""
    deadline = time.monotonic() + timeout
    while await query():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} still there after {timeout:g} s")
        await asyncio.sleep(POLL)


Routed = Callable[[], Awaitable[set[str]]]
API_CHECK = 10.0  # seconds between the hub API's lists (servers gone) while readiness is read off the proxy


def proxy_routes(hub: Hub) -> Routed:
    """The users whose server the hub's proxy routes to: ready, read without asking the hub.

    JupyterHub routes a server once it answers, just before it calls it ready. Asking the proxy costs
    the hub nothing; the hub's user list (4 per second, every user's model with its spawner's state)
    took most of a DaaS hub's busy time while 50 servers started (benchmarks/RESULTS.md, #21)."""
    url = f"http://127.0.0.1:{hub.proxy_api_port}/api/routes"
    headers = {"Authorization": f"token {hub.proxy_token}"}

    async def routed() -> set[str]:
        async with httpx.AsyncClient(timeout=30) as proxy:
            response = await proxy.get(url, headers=headers)
        response.raise_for_status()
        return {key.strip("/").split("/")[1] for key in response.json() if key.startswith("/user/")}

    return routed


async def start_servers(
    client: httpx.AsyncClient, spawns: Sequence[Spawn], body: str, timeout: float, routed: Routed | None = None
) -> None:
    """POST every spawn at once; return when each is ready or failed (its Spawn says which).

    Ready: the hub's API says so, or with `routed` the hub's proxy routes to it (the API is then asked
    every API_CHECK seconds only, for servers that went away)."""

    async def post(spawn: Spawn) -> None:
        spawn.posted = time.time()
        response = await client.post(f"/users/{spawn.user}/server", content=body)
        if response.status_code not in (201, 202):
            spawn.failed = f"HTTP {response.status_code}: {response.text[:200]}"

    posts = asyncio.gather(*(post(s) for s in spawns))
    await wait_ready(client, {s.user: s for s in spawns}, posts, timeout, routed)
    await posts


async def wait_ready(
    client: httpx.AsyncClient,
    by_user: dict[str, Spawn],
    posts: asyncio.Future[Any],
    timeout: float,
    routed: Routed | None = None,
) -> None:
    """Look every POLL seconds; ready when the hub (or its proxy) says so: the same clock for every system."""
    waiting = set(by_user)
    deadline = time.monotonic() + timeout
    asked_api = -math.inf
    while waiting:
        if time.monotonic() > deadline:
            for user in waiting:
                by_user[user].failed = f"not ready after {timeout:g} s"
            return
        posts_done = posts.done()
        routes = await routed() if routed is not None else None
        servers = None
        if routes is None or time.monotonic() - asked_api >= API_CHECK:
            servers, asked_api = await active_servers(client), time.monotonic()
        now = time.time()
        for user in list(waiting):
            spawn = by_user[user]
            server = servers.get(user) if servers is not None else None
            if spawn.failed:
                waiting.discard(user)
            elif (user in routes) if routes is not None else (server is not None and server.get("ready")):
                spawn.ready = now
                waiting.discard(user)
            elif servers is not None and server is None and posts_done:
                spawn.failed = "the server went away before it was ready"
                waiting.discard(user)
        await asyncio.sleep(POLL)


async def stop_servers(client: httpx.AsyncClient, users: Sequence[str]) -> None:
    """DELETE every server at once; return when the hub has none left."""
    await asyncio.gather(*(client.delete(f"/users/{u}/server") for u in users))
    await until_empty(lambda: active_servers(client))


def peer_venv_missing() -> bool:
    """Say so and answer True when the peers' venv (benchmarks/setup.sh) is not there."""
    if (BENCH_VENV / "bin" / "jupyterhub").exists():
        return False
    print(f"no peer venv at {BENCH_VENV}: run benchmarks/setup.sh", file=sys.stderr)
    return True


def ensure_users(users: Sequence[str]) -> None:
    """Unix accounts for the benchmark's users (the servers run as them)."""
    for user in users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", user], check=True, timeout=60)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range over repeats (the machine is noisy: never one timing alone)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return {"median": math.nan, "min": math.nan, "max": math.nan}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt_spread(s: dict[str, float], digits: int = 1) -> str:
    if math.isnan(s["median"]):
        return "-"
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100), NaNs left out; NaN for an empty sample."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def rotated(names: Sequence[str], by: int) -> list[str]:
    """The run order of one round: each round starts with the next system, so drift favours none."""
    by %= len(names)
    return [*names[by:], *names[:by]]


def save(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def run_main(main: Callable[[], int]) -> None:
    """A benchmark's entry point: its exit status; Ctrl-C ends it quietly (its cleanup has run)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def output_of(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except OSError as err:
        return f"unavailable: {err}"


def controller_up_safe() -> bool:
    try:
        return controller_up()
    except (OSError, subprocess.SubprocessError):
        return False


async def scheduler_answering(timeout: float = 60) -> None:
    """Wait while slurmctld is down (other work on the shared test cluster restarts it)."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(controller_up_safe):
        if time.monotonic() > deadline:
            raise RuntimeError(f"slurmctld has not answered for {timeout:g} s")
        log("slurmctld is not answering; waiting")
        await asyncio.sleep(1)


def environment() -> dict[str, Any]:
    """Machine, date and versions, for the JSON and RESULTS.md."""
    peer_versions = output_of(
        [
            str(BENCH_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, json; "
            "print(json.dumps({p: m.version(p) for p in ('jupyterhub', 'jupyterhub-moss', 'batchspawner')}))",
        ]
    )
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    commit = output_of(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = bool(output_of(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]))
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": cpu,
            "memory_gib": round(memory_kb / 2**20, 1),
            "kernel": platform.release(),
            "os": output_of(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        },
        "python": platform.python_version(),
        "jupyterhub": importlib.metadata.version("jupyterhub"),
        "jupyterhub_daas": importlib.metadata.version("jupyterhub-daas"),
        "git": commit + ("+dirty" if dirty else ""),
        "peer_venv": json.loads(peer_versions) if peer_versions.startswith("{") else peer_versions,
        "configurable_http_proxy": output_of([chp_command(), "--version"]),
        "slurm": output_of(["sinfo", "--version"]),
        "httpx": importlib.metadata.version("httpx"),
    }


def stale_install() -> list[str]:
    """Files of this checkout that differ from the copy the hubs import (they do not run from the checkout)."""
    out = output_of(
        [
            sys.executable,
            "-I",
            "-c",
            "import daas_spawner, pathlib; print(pathlib.Path(daas_spawner.__file__).parent.parent)",
        ]
    )
    installed = Path(out)
    if installed == REPO:
        return []
    stale = []
    for package in ("daas_core", "daas_spawner", "daas_auth", "daas_services", "daas_hub"):
        for source in sorted((REPO / package).rglob("*")):
            if source.is_file() and source.suffix in (".py", ".html", ".js", ".css", ".yaml"):
                copy = installed / source.relative_to(REPO)
                if not copy.exists() or copy.read_bytes() != source.read_bytes():
                    stale.append(str(source.relative_to(REPO)))
    return stale


def require_fresh_install() -> None:
    """Refuse to measure an older install than the checkout (run tests/setup.sh first)."""
    stale = stale_install()
    if stale:
        sys.exit(
            f"the venv's jupyterhub-daas differs from this checkout ({', '.join(stale[:5])}...): run tests/setup.sh"
        )


@dataclass
class MeteredPhase:
    """A stretch of one run (spawning, steady, stopping) and the calls counted in it."""

    name: str
    began: float
    ended: float = math.nan

    @property
    def seconds(self) -> float:
        return self.ended - self.began

    def counts(self) -> dict[str, int]:
        """The calls counted, by name (a subclass's own field: scheduler commands, API requests)."""
        raise NotImplementedError

    def per_minute(self, call: str | None = None) -> float:
        """One call's count per minute; every call's without a name."""
        counts = self.counts()
        count = counts.get(call, 0) if call else sum(counts.values())
        return count * 60 / self.seconds if self.seconds > 0 else math.nan


# kubernetes_spawns.py's cost columns (its runs' stats keys), in the order both it and report.py show them.
POD_SPAWN_COSTS = (
    "cpu_hub_s",
    "cpu_proxy_s",
    "cpu_pods_s",
    "stage_scheduled_s",
    "stage_started_s",
    "stage_pod_ready_s",
)


@dataclass
class ConcurrentRun:
    """N servers started at once by one system in one round, and the phases measured around them."""

    system: str
    n: int
    round: int
    spawns: list[Any]  # Spawn or a subclass
    phases: list[Any] = field(default_factory=list)  # MeteredPhase subclasses

    @property
    def all_ready_s(self) -> float:
        if any(s.failed for s in self.spawns):
            return math.nan
        return max(s.ready for s in self.spawns) - min(s.posted for s in self.spawns)


class Profiler:
    """py-spy sampling the hub during one phase, a flame graph per phase (no-op without --profile)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label

    @contextlib.asynccontextmanager
    async def phase(self, pid: int, name: str) -> Any:
        if not self.enabled:
            yield
            return
        PROFILES_DIR.mkdir(exist_ok=True)
        output = PROFILES_DIR / f"{self.label}-{name}.svg"
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "50",
            "--nonblocking", "--format", "flamegraph", "--output", str(output),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            yield
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)  # py-spy writes what it sampled and ends
            _, err = await process.communicate()
            if not output.exists():
                log(f"py-spy wrote no {output.name}: {err.decode(errors='replace')[-300:]}")
