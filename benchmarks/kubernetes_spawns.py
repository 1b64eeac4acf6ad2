"""Concurrent pod spawns on the real Kubernetes test cluster: DaaS's Kubernetes backend and plain KubeSpawner.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/kubernetes_spawns.py [--counts 1,10,20] [--repeats 3]
        [--steady 60] [--systems daas,kubespawner]

Systems, each a JupyterHub 6.1.1 with configurable-http-proxy starting N single-user servers at once for N users
(``POST /hub/api/users/<u>/server``), each a pod of image daas.local/notebook:1 running the product venv's
jupyterhub-singleuser (the venv mounted read-only from the host), 1 core limit with 5 % of it requested, 512 MB,
an empty home, as the user's uid and gid:
- ``daas``: DaaSSpawner with a kubernetes profile, namespace daas-bench, service account daas-hub with the Role the
  chart gives the hub (tests/integration/kubernetes.py HUB_RULES);
- ``kubespawner``: kubespawner.KubeSpawner with the same pod, namespace daas-bench-kube, service account
  kubespawner-hub with the Role zero-to-jupyterhub gives KubeSpawner's hub.

Per system, N and round: time until all N are ready (the hub's API polled every 0.25 s), per-user p50/max,
failures; the apiserver requests of the hub's service account (the test cluster's audit log) per minute while
spawning, while the largest N run (`--steady` seconds, every round) and while stopping, by verb and resource.
The systems alternate in each round, their order rotating; after each run every server is stopped and the
namespace has no pod left. Needs root (it creates the Unix users bench01..) and the running test cluster
(tests/cluster/kubernetes.sh); it never deletes anything outside its two namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import signal
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    POD_SPAWN_COSTS,
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
from tests.integration.kube_site import VENV, profile, venv_volume
from tests.integration.kubernetes import AUDIT_LOG, HOST_IP, IMAGE, Audit, Kube, admin, grant_hub, write_kubeconfig

SYSTEMS = ("daas", "kubespawner")
NAMESPACES = {"daas": "daas-bench", "kubespawner": "daas-bench-kube"}
ACCOUNTS = {"daas": "daas-hub", "kubespawner": "kubespawner-hub"}
# zero-to-jupyterhub's hub Role (its templates/hub/rbac.yaml): what KubeSpawner's calls need, and the PVCs,
# secrets and services it makes with storage or internal SSL (unused here).
KUBESPAWNER_RULES = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "watch", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
]
PROFILE = "k8s-cpu"
# The same pod for both: 1 core limit with 5 % requested (20 pods fit on the test node's 2 cores), 512 MB.
DAAS_OPTIONS = {"profile": PROFILE, "cores": "min", "memory": "512M", "walltime": "1:00:00"}
CPU_REQUEST_RATIO = 0.05
CPU_LIMIT = 1
MEMORY = "512M"

SITE_COMMON = f"""
    c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.hub_connect_ip = "{HOST_IP}"  # the node's bridge: the pods reach the hub here
"""


def daas_config(profiles: Path, kubeconfig: Path) -> str:
    venv, mount = venv_volume()
    return f"""
        from daas_spawner import load_profiles
        c.DaaSSpawner.profiles = load_profiles("{profiles}")
        c.KubernetesBackend.kubeconfig = "{kubeconfig}"
        c.KubernetesBackend.namespace = "{NAMESPACES["daas"]}"
        c.KubernetesBackend.extra_volumes = [{venv!r}]
        c.KubernetesBackend.extra_volume_mounts = [{mount!r}]
    """


def kubespawner_config() -> str:
    """KubeSpawner with the DaaS pod's image, server, ids, resources and empty home; its defaults otherwise."""
    venv, mount = venv_volume()
    home = {"name": "home", "emptyDir": {}}
    home_mount = {"name": "home", "mountPath": "/home/{username}"}
    return f"""
        import pwd
        c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
        c.KubeSpawner.namespace = "{NAMESPACES["kubespawner"]}"
        c.KubeSpawner.image = "{IMAGE}"
        c.KubeSpawner.image_pull_policy = "Never"
        c.KubeSpawner.cmd = ["{VENV}/bin/jupyterhub-singleuser"]
        # KubeSpawner passes cmd as the container's args; the test image's entrypoint is the system python3,
        # so the entrypoint becomes the venv's python (the interpreter the script's #! names).
        c.KubeSpawner.extra_container_config = {{"command": ["{VENV}/bin/python"]}}
        c.KubeSpawner.uid = lambda spawner: pwd.getpwnam(spawner.user.name).pw_uid
        c.KubeSpawner.gid = lambda spawner: pwd.getpwnam(spawner.user.name).pw_gid
        c.KubeSpawner.fs_gid = lambda spawner: pwd.getpwnam(spawner.user.name).pw_gid
        c.KubeSpawner.cpu_guarantee = {CPU_LIMIT * CPU_REQUEST_RATIO}
        c.KubeSpawner.cpu_limit = {CPU_LIMIT}
        c.KubeSpawner.mem_guarantee = "{MEMORY}"
        c.KubeSpawner.mem_limit = "{MEMORY}"
        c.KubeSpawner.volumes = [{venv!r}, {home!r}]
        c.KubeSpawner.volume_mounts = [{mount!r}, {home_mount!r}]
        c.KubeSpawner.working_dir = "/home/{{username}}"
        c.KubeSpawner.environment = {{"HOME": "/home/{{username}}"}}
    """


class SpawnerHub(Hub):
    """tests/integration's Hub without the DaaS spawner lines: its config names its own spawner."""

    spawner_config = ()


# -- one measured run -------------------------------------------------------------------------


@dataclass
class Phase(MeteredPhase):
    requests: dict[str, int] = field(default_factory=dict)  # "verb resource[/subresource]" -> count

    def counts(self) -> dict[str, int]:
        return self.requests


@dataclass
class Run(ConcurrentRun):
    # Where the spawn phase's time went: CPU seconds of the hub, its proxy and all pods (until all were ready),
    # and the pods' stages (median seconds, whole seconds as the API gives them).
    cpu_s: dict[str, float] = field(default_factory=dict)
    stages_s: dict[str, float] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        seconds = [s.seconds for s in self.spawns if not s.failed]
        return {
            "all_ready_s": self.all_ready_s,
            "p50_s": percentile(seconds, 50),
            "max_s": max(seconds, default=math.nan),
            "failures": sum(1 for s in self.spawns if s.failed),
            **{f"cpu_{name}_s": value for name, value in self.cpu_s.items()},
            **{f"stage_{name}_s": value for name, value in self.stages_s.items()},
        }

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if k != "spawns"}
        return {**fields, **self.stats(), "spawns": [asdict(s) for s in self.spawns]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """A run of an earlier invocation (--append), from its JSON."""
        return cls(
            data["system"],
            data["n"],
            data["round"],
            [Spawn(**s) for s in data["spawns"]],
            [Phase(**p) for p in data["phases"]],
            data.get("cpu_s", {}),
            data.get("stages_s", {}),
        )


CPUACCT = Path("/sys/fs/cgroup/cpuacct/kubepods")  # the kubelet's cgroupfs driver, cgroup v1
QOS_DIRS = {"Guaranteed": "", "Burstable": "burstable", "BestEffort": "besteffort"}


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def pod_cpu_s(pod: dict[str, Any]) -> float:
    """CPU seconds a pod's containers have used, from its cgroup; NaN once the pod's cgroup is gone."""
    qos = QOS_DIRS[pod["status"].get("qosClass", "BestEffort")]
    usage = CPUACCT / qos / f"pod{pod['metadata']['uid']}" / "cpuacct.usage"
    try:
        return int(usage.read_text()) / 1e9
    except OSError:
        return math.nan


def pod_stages(pods: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds from a pod's creation to scheduled, from scheduled to its container started, and on to Ready."""

    def at(stamp: str | None) -> float:
        return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) if stamp else math.nan

    def condition(pod: dict[str, Any], kind: str) -> float:
        found = [c for c in pod["status"].get("conditions", []) if c["type"] == kind and c["status"] == "True"]
        return at(found[0]["lastTransitionTime"]) if found else math.nan

    def started(pod: dict[str, Any]) -> float:
        statuses = pod["status"].get("containerStatuses", [])
        return at(statuses[0]["state"].get("running", {}).get("startedAt")) if statuses else math.nan

    stages: dict[str, list[float]] = {"scheduled": [], "started": [], "pod_ready": []}
    for pod in pods:
        created = at(pod["metadata"]["creationTimestamp"])
        scheduled, began, ready = condition(pod, "PodScheduled"), started(pod), condition(pod, "Ready")
        stages["scheduled"].append(scheduled - created)
        stages["started"].append(began - scheduled)
        stages["pod_ready"].append(ready - began)  # KubeSpawner's pods: Ready at Running (no probe)
    return {name: percentile(values, 50) for name, values in stages.items()}


def call_name(request: tuple[str, str, str, str]) -> str:
    """An audit entry as "verb resource", with its subresource: "list pods", "create pods", "get pods/log"."""
    verb, resource, _, subresource = request
    return f"{verb} {resource}/{subresource}" if subresource else f"{verb} {resource}"


class ApiCalls:
    """The apiserver requests of one hub's service account, counted from a mark on (the audit log)."""

    def __init__(self, system: str) -> None:
        self.audit = Audit(f"system:serviceaccount:{NAMESPACES[system]}:{ACCOUNTS[system]}")

    @contextlib.asynccontextmanager
    async def phase(self, phase: Phase) -> Any:
        self.audit.mark()
        try:
            yield phase
        finally:
            phase.ended = time.time()
            if AUDIT_LOG.stat().st_size < self.audit.offset:
                log(f"the audit log was rotated during {phase.name}: its requests are not counted")
                phase.ended = math.nan
            else:
                requests = await asyncio.to_thread(self.audit.requests)
                phase.requests = dict(Counter(call_name(r) for r in requests))


class Bench:
    """The two hubs, their service accounts and namespaces; one run = N spawns, optionally N running, N stops."""

    def __init__(self, workdir: Path, users: list[str], systems: Sequence[str], timeout: float) -> None:
        self.kube: Kube = admin()
        self.users = users
        self.timeout = timeout
        self.calls = {system: ApiCalls(system) for system in systems}
        self.hubs: dict[str, Hub] = {}
        base = textwrap.dedent(HUB_COMMON) + textwrap.dedent(SITE_COMMON)
        if "daas" in systems:
            token = grant_hub(self.kube, NAMESPACES["daas"], ACCOUNTS["daas"])
            kubeconfig = write_kubeconfig(workdir / "daas.kubeconfig", token)
            profiles = workdir / "profiles.yaml"
            profiles.write_text(yaml.safe_dump({"default_profile": PROFILE, "profiles": [profile(PROFILE)]}))
            config = base + textwrap.dedent(daas_config(profiles, kubeconfig))
            self.hubs["daas"] = Hub(workdir / "daas" / "hub", config)
        if "kubespawner" in systems:
            token = grant_hub(
                self.kube, NAMESPACES["kubespawner"], ACCOUNTS["kubespawner"], KUBESPAWNER_RULES, cluster_rules=[]
            )
            kubeconfig = write_kubeconfig(workdir / "kubespawner.kubeconfig", token)
            config = base + textwrap.dedent(kubespawner_config())
            self.hubs["kubespawner"] = SpawnerHub(
                workdir / "kubespawner" / "hub", config, env={"KUBECONFIG": str(kubeconfig)}
            )

    def pods(self, system: str) -> list[dict[str, Any]]:
        return self.kube.pods(NAMESPACES[system])

    def delete_pods(self, system: str) -> None:
        """Every pod of this system's namespace, at once (what an interrupted run left)."""
        self.kube.delete(f"/api/v1/namespaces/{NAMESPACES[system]}/pods", gracePeriodSeconds=0)

    async def run(self, system: str, n: int, round_no: int, steady: float) -> Run:
        hub, calls = self.hubs[system], self.calls[system]
        run = Run(system, n, round_no, [Spawn(u) for u in self.users[:n]])
        body = json.dumps(DAAS_OPTIONS if system == "daas" else {})
        async with hub_client(hub) as client:
            hub_cpu, proxy_cpu = process_cpu_s(hub.pid), process_cpu_s(hub.proxy_pid)
            async with calls.phase(Phase("spawn", time.time())) as spawning:
                run.phases.append(spawning)
                await start_servers(client, run.spawns, body, self.timeout)
            pods = await asyncio.to_thread(self.pods, system)
            run.cpu_s = {
                "hub": process_cpu_s(hub.pid) - hub_cpu,
                "proxy": process_cpu_s(hub.proxy_pid) - proxy_cpu,
                "pods": sum(pod_cpu_s(pod) for pod in pods),
            }
            run.stages_s = pod_stages(pods)
            if steady > 0:
                async with calls.phase(Phase("steady", time.time())) as running:
                    run.phases.append(running)
                    await asyncio.sleep(steady)
            async with calls.phase(Phase("stop", time.time())) as stopping:
                run.phases.append(stopping)
                await stop_servers(client, [s.user for s in run.spawns])
                await until_empty(lambda: asyncio.to_thread(self.pods, system), f"pods in {NAMESPACES[system]}")
        return run


def apiserver_version() -> str:
    with contextlib.suppress(Exception):
        return admin().get("/version")["gitVersion"]  # type: ignore[index]
    return "unknown"


# -- summary ----------------------------------------------------------------------------------


def per_round_ratio(runs: list[Run], n: int, value: Any) -> dict[str, float] | None:
    """value(daas run) / value(kubespawner run) for each round that has both, summarised."""
    ratios = []
    for round_no in sorted({r.round for r in runs}):
        pair = {r.system: r for r in runs if r.n == n and r.round == round_no}
        if "daas" in pair and "kubespawner" in pair:
            a, b = value(pair["daas"]), value(pair["kubespawner"])
            if a is not None and b is not None and b > 0 and not math.isnan(a / b):  # NaN: a run had failures
                ratios.append(a / b)
    return spread(ratios) if ratios else None


def steady_rate(run: Run) -> float | None:
    phase = run.phase("steady")
    return phase.per_minute() if phase else None


def summarise(runs: list[Run], counts: list[int], systems: Sequence[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for n in counts:
        row: dict[str, Any] = {}
        for system in systems:
            mine = [r for r in runs if r.system == system and r.n == n]
            if not mine:
                continue
            stats = [r.stats() for r in mine]
            measured = [key for key in stats[0] if key != "failures" and all(key in s for s in stats)]
            entry: dict[str, Any] = {key: spread([s[key] for s in stats]) for key in measured}
            entry["failures"] = sum(s["failures"] for s in stats)
            entry["spawns"] = sum(r.n for r in mine)
            for name in ("spawn", "steady", "stop"):
                phases = [p for r in mine if (p := r.phase(name)) is not None]
                if not phases:
                    continue
                seen = sorted({call for p in phases for call in p.requests})
                entry[name] = {
                    "seconds": spread([p.seconds for p in phases]),
                    "requests_per_min": spread([p.per_minute() for p in phases]),
                    "by_call_per_min": {call: spread([p.per_minute(call) for p in phases]) for call in seen},
                }
            row[system] = entry
        ratios = {"all_ready": per_round_ratio(runs, n, lambda r: r.all_ready_s)}
        ratios["steady_requests_per_min"] = per_round_ratio(runs, n, steady_rate)
        row["ratios_daas_to_kubespawner"] = {k: v for k, v in ratios.items() if v}
        summary[str(n)] = row
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = [
        "Concurrent pod spawns: seconds, median over rounds [min-max]; requests: the hub's apiserver requests/min",
        f"{'N':>3}  {'system':<12} {'all ready':<20} {'user p50':<20} {'user max':<20} {'fail':>4}  "
        f"{'req/min spawn':<22} {'req/min running':<22} {'req/min stop':<22}",
    ]
    for n, row in summary.items():
        for system in SYSTEMS:
            e = row.get(system)
            if e is None:
                continue
            rates = [fmt_spread(e[p]["requests_per_min"]) if p in e else "-" for p in ("spawn", "steady", "stop")]
            lines.append(
                f"{n:>3}  {system:<12} {fmt_spread(e['all_ready_s']):<20} {fmt_spread(e['p50_s']):<20} "
                f"{fmt_spread(e['max_s']):<20} {e['failures']:>4}  {rates[0]:<22} {rates[1]:<22} {rates[2]:<22}"
            )
        for what, r in row["ratios_daas_to_kubespawner"].items():
            lines.append(f"{n:>3}  daas/kubespawner {what:<24} {fmt_spread(r, 2)}")
    return "\n".join(lines)


def costs_table(summary: dict[str, Any]) -> str:
    """Where the spawns' time went: CPU seconds until all were ready, and the pods' median stages."""
    lines = [
        "Where the time goes, medians over rounds: CPU seconds of the hub, its proxy and all pods until all were "
        "ready; a pod's median seconds from created to scheduled, to its container started, to Ready",
        f"{'N':>3}  {'system':<12} " + " ".join(f"{name.removesuffix('_s'):<18}" for name in POD_SPAWN_COSTS),
    ]
    for n, row in summary.items():
        for system in SYSTEMS:
            e = row.get(system)
            if e is None or "cpu_hub_s" not in e:
                continue
            lines.append(f"{n:>3}  {system:<12} " + " ".join(f"{fmt_spread(e[name]):<18}" for name in POD_SPAWN_COSTS))
    return "\n".join(lines)


def calls_table(summary: dict[str, Any]) -> str:
    """Each hub's apiserver requests per minute by verb and resource, per phase (medians over rounds)."""
    lines = ["apiserver requests per minute by call: medians over rounds"]
    for n, row in summary.items():
        for system in SYSTEMS:
            for name in ("spawn", "steady", "stop"):
                p = (row.get(system) or {}).get(name)
                if p is None:
                    continue
                by_call = ", ".join(f"{call} {v['median']:.1f}" for call, v in p["by_call_per_min"].items())
                lines.append(f"{n:>3}  {system:<12} {name:<7} {by_call or '-'}")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,10,20", help="concurrent spawn counts N (default 1,10,20)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--steady", type=float, default=60, help="seconds the largest N run, each round, counting requests (60)"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"subset of {','.join(SYSTEMS)}")
    parser.add_argument("--timeout", type=float, default=600, help="seconds until a server counts as failed")
    parser.add_argument("--json", type=Path, default=RESULTS / "kubernetes_spawns.json", help="results file")
    parser.add_argument("--workdir", type=Path, default=None, help="hub directories and logs (default: new /tmp dir)")
    parser.add_argument(
        "--append",
        action="store_true",
        help="add --repeats rounds to the runs already in --json (a long benchmark in several shorter sittings)",
    )
    args = parser.parse_args(argv)
    args.count_list = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    args.system_list = [s for s in SYSTEMS if s in {x.strip() for x in args.systems.split(",")}]
    if not args.system_list or args.repeats < 1 or not args.count_list or min(args.count_list) < 1:
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
                steady = args.steady if n == max(args.count_list) else 0
                run = await bench.run(system, n, round_no, steady)
                s = run.stats()
                rates = ", ".join(f"{p.name} {p.per_minute():.1f}" for p in run.phases)
                log(
                    f"round {round_no + 1}/{first + args.repeats} N={n:<3} {system:<12} "
                    f"all ready {s['all_ready_s']:.1f} s, p50 {s['p50_s']:.1f} max {s['max_s']:.1f} s, "
                    f"{s['failures']} failed; requests/min {rates}"
                )
                for spawn in run.spawns:
                    if spawn.failed:
                        log(f"  {spawn.user}: {spawn.failed}")
                runs.append(run)
        round_done(runs)
    return runs


def result(args: argparse.Namespace, runs: list[Run], workdir: Path, seconds: float) -> dict[str, Any]:
    counts = sorted({r.n for r in runs})
    return {
        "environment": {
            **environment(),
            "kubernetes": apiserver_version(),
            "kubespawner": importlib.metadata.version("jupyterhub-kubespawner"),
        },
        "settings": {
            "counts": counts,
            "repeats": len({r.round for r in runs}),
            "steady_s": args.steady,
            "systems": args.system_list,
            "namespaces": {s: NAMESPACES[s] for s in args.system_list},
            "pod": f"{IMAGE}, {CPU_LIMIT} core limit, {CPU_REQUEST_RATIO:g} of it requested, {MEMORY}, emptyDir home",
            "workdir": str(workdir),
            "elapsed_s": round(seconds, 1),
        },
        "summary": summarise(runs, counts, args.system_list),
        "runs": [r.to_json() for r in runs],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_fresh_install()
    earlier: dict[str, Any] = json.loads(args.json.read_text()) if args.append and args.json.exists() else {}
    runs = [Run.from_json(r) for r in earlier.get("runs", [])]
    spent = earlier.get("settings", {}).get("elapsed_s", 0.0)
    workdir = bench_workdir(args.workdir, "daas-bench-k8s-")
    users = [f"bench{i:02d}" for i in range(1, max(args.count_list) + 1)]
    ensure_users(users)
    began = time.monotonic()
    bench = Bench(workdir, users, args.system_list, args.timeout)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout's SIGTERM still stops hubs and pods

    def keep(so_far: list[Run]) -> None:
        save(args.json, result(args, so_far, workdir, spent + time.monotonic() - began))

    try:
        for name, hub in bench.hubs.items():
            bench.delete_pods(name)
            log(f"{name}: starting hub at {hub.url} ({hub.workdir})")
            hub.start()
            hub.create_users(*users)
        runs = asyncio.run(measure(bench, args, runs, keep))
    finally:
        for name, hub in bench.hubs.items():
            with contextlib.suppress(Exception):
                hub.stop()
            bench.delete_pods(name)
    final = json.loads(args.json.read_text())
    print(table(final["summary"]))
    print()
    print(costs_table(final["summary"]))
    print()
    print(calls_table(final["summary"]))
    print(f"\n{final['settings']['elapsed_s']} s in all; JSON: {args.json}; logs: {workdir}")
    return 0


if __name__ == "__main__":
    run_main(main)
