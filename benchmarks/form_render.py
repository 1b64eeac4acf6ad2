"""Spawn-form render benchmark (issue #3): GET /hub/spawn on three real hubs, side by side.

    /opt/jupyterhub-daas/venv/bin/python benchmarks/form_render.py [--repeats N] [--viewers 1,10,50] [--json out.json]

Three JupyterHubs, each behind its own configurable-http-proxy, all on 127.0.0.1 and all running at once:

- ``daas``:  DaaSSpawner with profiles/facility.yaml; the form shows live availability from one cached
  sinfo per ``SlurmBackend.availability_ttl`` (default 30 s).
- ``moss``:  jupyterhub_moss's MOSlurmSpawner (the ESRF form, its own venv), partitions cpu/gpu/power9;
  it runs one sinfo per page view.
- ``floor``: LocalProcessSpawner with a static options form: the hub's own spawn page, the lower bound.

Every scheduler command of the daas and moss hubs goes through logging wrappers (tests/integration/slurm.py
CommandLog), so sinfo/squeue calls are counted from the logs. Each viewer is one logged-in user with its
own httpx client. A round measures every viewer count on every hub, in an order that rotates from round to
round; ratios are taken per round (same minute, same machine load) and summarised as median [min-max].
Needs the Slurm test cluster (``bash tests/cluster/slurm.sh start``); page views submit no jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    BENCH_VENV,
    INFO_LOGGING,
    REPO,
    VenvHub,
    controller_up_safe,
    environment,
    fmt_spread,
    log,
    peer_venv_missing,
    require_fresh_install,
    rotated,
    scheduler_answering,
    spread,
)
from tests.integration.hub import Hub
from tests.integration.slurm import CommandLog

PASSWORD = "daas-bench-password"
HUB_NAMES = ("daas", "moss", "floor")
PAIRS = (("daas", "floor"), ("daas", "moss"), ("moss", "floor"))
SCHEDULER_QUERIES = ("sinfo", "squeue")
# What a real form page contains (anything else, e.g. an error page, counts as a failed view).
MARKERS = {"daas": 'id="daas-form"', "moss": "option_form.js", "floor": "<p>static</p>"}
MOSS_SINFO = "sinfo -a --noheader -o '%R %F %c %C %G %m %l'"  # moss's default slurm_info_cmd


# -- hub configurations -----------------------------------------------------------------------

COMMON = (
    INFO_LOGGING
    + """
    c.DummyAuthenticator.password = "{password}"
"""
)


def daas_config(commands: CommandLog, ttl: float | None) -> str:
    ttl_line = "" if ttl is None else f"c.SlurmBackend.availability_ttl = {ttl!r}"
    return f"""
        from daas_hub import register_handlers
        from daas_spawner import load_profiles
        register_handlers()
        c.JupyterHub.spawner_class = "daas"
        c.DaaSSpawner.profiles = load_profiles("{REPO / "profiles" / "facility.yaml"}")
        c.SlurmBackend.slurm_bin_dir = "{commands.bin_dir}"
        {ttl_line}
    """


def moss_partitions(env_bin: Path) -> dict[str, dict[str, Any]]:
    """The test cluster's partitions in moss's `partitions` format (limits come from its sinfo)."""
    env = {"default": {"description": "Python 3 (bench venv)", "path": str(env_bin)}}
    described = {"cpu": ("CPU interactive", "x86_64"), "gpu": ("GPU", "x86_64"), "power9": ("IBM Power9", "ppc64le")}
    return {
        name: {"description": text, "architecture": arch, "simple": True, "jupyter_environments": env}
        for name, (text, arch) in described.items()
    }


def moss_config(commands: CommandLog, env_bin: Path) -> str:
    # exec_prefix "" runs sinfo as the hub user, like DaaS (moss's default prefixes `sudo -E -u {username}`,
    # which would need one Unix account per viewer and costs a sudo per page view). For the same reason a
    # subclass points batchspawner's passwd lookups (home, shell: not configurable) at the account `nobody`.
    return f"""
        import pwd

        import jupyterhub_moss
        from batchspawner import SlurmSpawner
        from traitlets import default

        class BenchMOSlurmSpawner(jupyterhub_moss.MOSlurmSpawner):
            # Viewers have no Unix accounts: batchspawner's passwd lookups (same calls) use one that exists.
            @default("req_homedir")
            def _bench_homedir(self):
                return pwd.getpwnam("nobody").pw_dir

            def user_env(self, env):
                account = pwd.getpwnam("nobody")
                env.update(USER=self.user.name, HOME=account.pw_dir, SHELL=account.pw_shell)
                return env

        jupyterhub_moss.set_config(c)
        c.JupyterHub.spawner_class = BenchMOSlurmSpawner
        c.MOSlurmSpawner.partitions = {moss_partitions(env_bin)!r}
        c.MOSlurmSpawner.exec_prefix = ""
        c.MOSlurmSpawner.slurm_info_cmd = "{commands.bin_dir}/" + {MOSS_SINFO!r}
        for _name in ("batch_submit_cmd", "batch_query_cmd", "batch_cancel_cmd"):
            _default = SlurmSpawner.class_traits()[_name].default_value
            setattr(c.MOSlurmSpawner, _name, "{commands.bin_dir}/" + _default)
    """


FLOOR_CONFIG = """
    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.options_form = "<p>static</p>"
"""


@dataclass
class Scenario:
    """One hub under test, its command log (None for the floor) and one logged-in client per viewer."""

    name: str
    hub: Hub
    commands: CommandLog | None
    clients: list[httpx.AsyncClient] = field(default_factory=list)


def build_scenarios(workdir: Path, names: Sequence[str], ttl: float | None) -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {}
    common = textwrap.dedent(COMMON.format(password=PASSWORD))
    for name in names:
        directory = workdir / name
        commands = None if name == "floor" else CommandLog(directory / "slurm-bin")
        hub: Hub
        if commands is None:
            hub = Hub(directory / "hub", common + textwrap.dedent(FLOOR_CONFIG))
        elif name == "daas":
            hub = Hub(directory / "hub", common + textwrap.dedent(daas_config(commands, ttl)))
        else:
            config = common + textwrap.dedent(moss_config(commands, BENCH_VENV / "bin"))
            hub = VenvHub(directory / "hub", config, BENCH_VENV / "bin")
        scenarios[name] = Scenario(name, hub, commands)
    return scenarios


# -- viewers ----------------------------------------------------------------------------------


async def login(hub: Hub, user: str) -> httpx.AsyncClient:
    """A client holding `user`'s login cookie (DummyAuthenticator, with the login form's xsrf token)."""
    client = httpx.AsyncClient(base_url=hub.url, timeout=120, limits=httpx.Limits(max_connections=1))
    await client.get("/hub/login")
    data = {"username": user, "password": PASSWORD, "_xsrf": client.cookies.get("_xsrf") or ""}
    response = await client.post("/hub/login", data=data)
    if response.status_code != 302:
        await client.aclose()
        raise RuntimeError(f"login of {user} on {hub.url} answered {response.status_code}")
    return client


async def login_viewers(scenario: Scenario, count: int) -> None:
    """Log in `count` users (viewer01...) and load each one's form once (warm-up, not measured)."""
    gate = asyncio.Semaphore(10)

    async def one(index: int) -> httpx.AsyncClient:
        async with gate:
            client = await login(scenario.hub, f"viewer{index:02d}")
            response = await client.get("/hub/spawn")
            if response.status_code != 200 or MARKERS[scenario.name] not in response.text:
                await client.aclose()
                raise RuntimeError(
                    f"{scenario.name}: the form page answered {response.status_code}:\n{response.text[:2000]}\n"
                    f"hub log:\n{scenario.hub.log_tail(40)}"
                )
            return client

    scenario.clients = list(await asyncio.gather(*(one(i) for i in range(1, count + 1))))


@dataclass
class Window:
    """One measured burst: `viewers` clients, each loading the form `per_viewer` times."""

    hub: str
    viewers: int
    round: int
    per_viewer: int
    started: float  # wall clock, to match the command logs
    duration: float
    latencies_ms: list[float]
    errors: int
    error_samples: list[str]
    load_before: float
    load_after: float
    sinfo: int = 0
    squeue: int = 0

    def stats(self) -> dict[str, float]:
        data = sorted(self.latencies_ms)
        if not data:
            return {"p50": math.nan, "p95": math.nan, "max": math.nan, "mean": math.nan}
        p95 = statistics.quantiles(data, n=100, method="inclusive")[94] if len(data) > 1 else data[0]
        return {"p50": statistics.median(data), "p95": p95, "max": data[-1], "mean": statistics.fmean(data)}


async def measure(scenario: Scenario, viewers: int, per_viewer: int, round_no: int) -> Window:
    marker = MARKERS[scenario.name]
    latencies: list[float] = []
    errors: list[str] = []

    async def viewer(client: httpx.AsyncClient) -> None:
        for _ in range(per_viewer):
            began = time.perf_counter()
            try:
                response = await client.get("/hub/spawn")
            except httpx.HTTPError as err:
                errors.append(f"{type(err).__name__}: {err}")
                continue
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code == 200 and marker in response.text:
                latencies.append(elapsed)
            else:
                errors.append(f"HTTP {response.status_code}: {response.text[:200]}")

    load_before = os.getloadavg()[0]
    started, began = time.time(), time.perf_counter()
    await asyncio.gather(*(viewer(client) for client in scenario.clients[:viewers]))
    duration = time.perf_counter() - began
    return Window(
        scenario.name,
        viewers,
        round_no,
        per_viewer,
        started,
        duration,
        latencies,
        len(errors),
        errors[:3],
        load_before,
        os.getloadavg()[0],
    )


def count_queries(scenarios: dict[str, Scenario], windows: list[Window]) -> None:
    """Fill each window's sinfo/squeue counts from its hub's wrapper log (stamped at invocation)."""
    for window in windows:
        commands = scenarios[window.hub].commands
        if commands is None:
            continue
        end = window.started + window.duration
        for name in SCHEDULER_QUERIES:
            stamps = [stamp for stamp, *_ in commands.entries(name) if window.started <= stamp <= end]
            setattr(window, name, len(stamps))


def max_in_any_window(stamps: list[float], length: float) -> int:
    """The most stamps that fall in any interval [t, t + length)."""
    stamps = sorted(stamps)
    best, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= length:
            first += 1
        best = max(best, last - first + 1)
    return best


# -- summary ----------------------------------------------------------------------------------


def summarise(
    scenarios: dict[str, Scenario], windows: list[Window], viewer_counts: list[int], ttl: float
) -> dict[str, Any]:
    per_level: dict[str, Any] = {}
    for viewers in viewer_counts:
        level: dict[str, Any] = {"hubs": {}, "ratios": {}}
        stats = {(w.hub, w.round): w.stats() for w in windows if w.viewers == viewers}
        for name in scenarios:
            mine = [w for w in windows if w.viewers == viewers and w.hub == name]
            measured = sum(w.duration for w in mine)
            views = sum(len(w.latencies_ms) for w in mine)
            requests = views + sum(w.errors for w in mine)
            level["hubs"][name] = {
                **{key: spread([stats[(name, w.round)][key] for w in mine]) for key in ("p50", "p95", "max")},
                "views": views,
                "errors": sum(w.errors for w in mine),
                "views_per_s": spread([len(w.latencies_ms) / w.duration for w in mine]),
                "measured_s": measured,
                **{f"{q}_count": sum(getattr(w, q) for w in mine) for q in SCHEDULER_QUERIES},
                **{f"{q}_per_min": sum(getattr(w, q) for w in mine) / measured * 60 for q in SCHEDULER_QUERIES},
                "sinfo_per_request": sum(w.sinfo for w in mine) / requests if requests else math.nan,
            }
        rounds = sorted({w.round for w in windows})
        for a, b in PAIRS:
            if a in scenarios and b in scenarios:
                level["ratios"][f"{a}/{b}"] = {
                    key: spread([stats[(a, r)][key] / stats[(b, r)][key] for r in rounds]) for key in ("p50", "p95")
                }
        per_level[str(viewers)] = level

    run: dict[str, Any] = {}
    first = min(w.started for w in windows)
    last = max(w.started + w.duration for w in windows)
    for name, scenario in scenarios.items():
        if scenario.commands is None:
            continue
        entry: dict[str, Any] = {"span_s": last - first}
        for q in SCHEDULER_QUERIES:
            # Wrappers stamp before they append, so concurrent ones can land out of order.
            stamps = sorted(stamp for stamp, *_ in scenario.commands.entries(q) if first <= stamp <= last)
            entry[f"{q}_count"] = len(stamps)
            entry[f"{q}_per_min"] = len(stamps) / (last - first) * 60
            entry[f"max_{q}_in_any_ttl"] = max_in_any_window(stamps, ttl)
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            entry[f"min_{q}_gap_s"] = min(gaps) if gaps else None
        run[name] = entry
    return {"levels": per_level, "run": run}


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def gap(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s apart"


def table(summary: dict[str, Any], ttl: float) -> str:
    """The printed report: latency per hub and viewer count, ratios, scheduler queries."""
    lines = [
        "GET /hub/spawn latency, ms: median over rounds [min-max over rounds]",
        f"{'viewers':>7}  {'hub':<5}  {'views':>5}  {'err':>3}  {'p50':<20} {'p95':<20} {'max':<20} "
        f"{'views/s':<18} {'sinfo/min':>9} {'squeue/min':>10} {'sinfo/req':>10}",
    ]
    for viewers, level in summary["levels"].items():
        for name, h in level["hubs"].items():
            lines.append(
                f"{viewers:>7}  {name:<5}  {h['views']:>5}  {h['errors']:>3}  {fmt_spread(h['p50']):<20} "
                f"{fmt_spread(h['p95']):<20} {fmt_spread(h['max']):<20} {fmt_spread(h['views_per_s']):<18} "
                f"{fmt(h['sinfo_per_min']):>9} {fmt(h['squeue_per_min']):>10} {fmt(h['sinfo_per_request'], 3):>10}"
            )
    failed = [
        f"{name} at {viewers} viewers"
        for viewers, level in summary["levels"].items()
        for name, h in level["hubs"].items()
        if h["errors"]
    ]
    if failed:
        lines.append(f"Failed views ({', '.join(failed)}): see windows[].error_samples in the JSON and the hub logs")
    lines += ["", "Ratios, per round (same minute): median [min-max]"]
    for viewers, level in summary["levels"].items():
        for pair, r in level["ratios"].items():
            lines.append(f"{viewers:>7}  {pair:<11}  p50 {fmt_spread(r['p50'], 2):<20}  p95 {fmt_spread(r['p95'], 2)}")
    lines += ["", f"Scheduler queries over the whole measured span (TTL {ttl:g} s)"]
    for name, r in summary["run"].items():
        lines.append(
            f"  {name:<5} span {r['span_s']:.0f} s: sinfo {r['sinfo_count']} ({r['sinfo_per_min']:.1f}/min, "
            f"at most {r['max_sinfo_in_any_ttl']} in any {ttl:g} s, closest two {gap(r['min_sinfo_gap_s'])}), "
            f"squeue {r['squeue_count']} "
            f"({r['squeue_per_min']:.1f}/min, at most {r['max_squeue_in_any_ttl']} in any {ttl:g} s)"
        )
    return "\n".join(lines)


def default_ttl() -> float:
    from daas_spawner.backends.slurm.backend import SlurmBackend

    return float(SlurmBackend.class_traits()["availability_ttl"].default_value)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="measurement rounds (default 3)")
    parser.add_argument("--viewers", default="1,10,50", help="concurrent viewer counts (default 1,10,50)")
    parser.add_argument(
        "--views",
        type=int,
        default=200,
        help="page views per hub, viewer count and round; each viewer makes ceil(views/viewers) (default 200)",
    )
    parser.add_argument("--hubs", default=",".join(HUB_NAMES), help="hubs to run (default daas,moss,floor)")
    parser.add_argument("--ttl", type=float, default=None, help="DaaS availability_ttl (default: the product's)")
    parser.add_argument(
        "--json",
        type=Path,
        default=REPO / "benchmarks" / "results" / "form_render.json",
        help="where to write the results (default benchmarks/results/form_render.json)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="hub directories and logs (default: a new /tmp dir)")
    args = parser.parse_args(argv)
    args.viewer_counts = sorted({int(v) for v in args.viewers.split(",") if v.strip()})
    args.hub_names = [name for name in HUB_NAMES if name in {h.strip() for h in args.hubs.split(",")}]
    unknown = {h.strip() for h in args.hubs.split(",")} - set(HUB_NAMES)
    if unknown or not args.hub_names:
        parser.error(f"--hubs: choose among {', '.join(HUB_NAMES)}")
    if args.repeats < 1 or not args.viewer_counts or min(args.viewer_counts) < 1 or args.views < 1:
        parser.error("--repeats, --viewers and --views must be positive")
    return args


async def run_rounds(scenarios: dict[str, Scenario], args: argparse.Namespace) -> list[Window]:
    """Log the viewers in, then measure every round; the clients are closed however it ends."""
    try:
        for scenario in scenarios.values():
            log(f"{scenario.name}: logging in {max(args.viewer_counts)} viewers")
            await login_viewers(scenario, max(args.viewer_counts))
        return await measure_rounds(scenarios, args)
    finally:
        for scenario in scenarios.values():
            for client in scenario.clients:
                with contextlib.suppress(Exception):
                    await client.aclose()


async def measure_rounds(scenarios: dict[str, Scenario], args: argparse.Namespace) -> list[Window]:
    windows = []
    for round_no in range(args.repeats):
        order = rotated(list(scenarios), round_no)
        for viewers in args.viewer_counts:
            per_viewer = math.ceil(args.views / viewers)
            for name in order:
                if scenarios[name].commands is not None:
                    await scheduler_answering()
                window = await measure(scenarios[name], viewers, per_viewer, round_no)
                s = window.stats()
                log(
                    f"round {round_no + 1}/{args.repeats} viewers {viewers:>2} {name:<5} "
                    f"p50 {fmt(s['p50'])} p95 {fmt(s['p95'])} max {fmt(s['max'])} ms, {window.errors} errors, "
                    f"{window.duration:.1f} s, load {window.load_before:.1f}->{window.load_after:.1f}"
                )
                windows.append(window)
    return windows


@contextlib.contextmanager
def running(scenarios: dict[str, Scenario]) -> Iterator[None]:
    """Start every hub; stop them all on the way out, also on Ctrl-C, SIGTERM or an error."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for scenario in scenarios.values():
            log(f"{scenario.name}: starting hub at {scenario.hub.url} ({scenario.hub.workdir})")
            scenario.hub.start()
        yield
    finally:
        for scenario in scenarios.values():
            with contextlib.suppress(Exception):
                scenario.hub.stop()
            scenario.hub.http.close()
        signal.signal(signal.SIGTERM, previous)
        log("hubs stopped")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_fresh_install()
    if ("daas" in args.hub_names or "moss" in args.hub_names) and not controller_up_safe():
        print("Slurm is not up: run `bash tests/cluster/slurm.sh start` first", file=sys.stderr)
        return 2
    if "moss" in args.hub_names and peer_venv_missing():
        return 2
    ttl = args.ttl if args.ttl is not None else default_ttl()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="daas-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    began = time.monotonic()
    scenarios = build_scenarios(workdir, args.hub_names, args.ttl)
    with running(scenarios):
        windows = asyncio.run(run_rounds(scenarios, args))
        count_queries(scenarios, windows)
    summary = summarise(scenarios, windows, args.viewer_counts, ttl)
    result = {
        "environment": environment(),
        "settings": {
            "repeats": args.repeats,
            "viewers": args.viewer_counts,
            "views": args.views,
            "hubs": args.hub_names,
            "daas_availability_ttl": ttl,
            "workdir": str(workdir),
            "hub_urls": {name: s.hub.url for name, s in scenarios.items()},
            "elapsed_s": round(time.monotonic() - began, 1),
        },
        "summary": summary,
        "windows": [{**asdict(w), **w.stats()} for w in windows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(table(summary, ttl))
    print(f"\n{result['settings']['elapsed_s']} s in all; JSON: {args.json}; hub logs: {workdir}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; hubs stopped", file=sys.stderr)
        sys.exit(130)
