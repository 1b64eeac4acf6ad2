"""Availability: the sinfo parser on captured Slurm 22.05 output, and the shared cache (scripted query)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

import pytest
from jupyterhub import apihandlers

from daas_core.commands import CommandFailed
from daas_hub import register_handlers
from daas_spawner import availability, hub_handlers
from daas_spawner.availability import AvailabilityCache, ClusterAvailability
from daas_spawner.backends.slurm.availability import (
    GpuAvailability,
    PartitionAvailability,
    parse_availability,
    parse_gpus,
    parse_sinfo_availability,
    sinfo_availability_argv,
)
from daas_spawner.backends.slurm.backend import SlurmBackend
from daas_spawner.profiles import ProfileSet

GUARD = 10.0  # seconds before a wait counts as hung; never a timing claim

# Captured from the test cluster (tests/cluster/slurm.sh, Slurm 22.05.8) with the argv below.
IDLE = """\
cpu01|cpu|up|idle|0/8/0/8|16000|0|(null)|gpu:0|
cpu02|cpu|up|idle|0/8/0/8|16000|0|(null)|gpu:0|
gpu01|gpu|up|idle|0/8/0/8|16000|0|gpu:tesla:2|gpu:tesla:0(IDX:N/A)|
p9-01|power9|up|idle|0/8/0/8|16000|0|(null)|gpu:0|
"""
# A 1-GPU job (2 CPUs, 3000 MB) on gpu01, an 8-CPU job on cpu01, a 3-CPU job on cpu02.
BUSY = """\
cpu01|cpu|up|allocated|8/0/0/8|16000|1000|(null)|gpu:0|
cpu02|cpu|up|mixed|3/5/0/8|16000|500|(null)|gpu:0|
gpu01|gpu|up|mixed|2/6/0/8|16000|3000|gpu:tesla:2|gpu:tesla:1(IDX:0)|
p9-01|power9|up|idle|0/8/0/8|16000|0|(null)|gpu:0|
"""
# The same, after `scontrol update nodename=cpu02,p9-01 state=drain`.
DRAINED = """\
cpu01|cpu|up|allocated|8/0/0/8|16000|1000|(null)|gpu:0|
cpu02|cpu|up|allocated+drain|3/0/5/8|16000|500|(null)|gpu:0|
gpu01|gpu|up|mixed|2/6/0/8|16000|3000|gpu:tesla:2|gpu:tesla:1(IDX:0)|
p9-01|power9|up|idle+drain|0/0/8/8|16000|0|(null)|gpu:0|
"""
# p9-01's slurmd killed: first not responding (its CPUs still look idle), then down.
NOT_RESPONDING = "p9-01|power9|up|idle+not_responding|0/8/0/8|16000|0|(null)|gpu:0|\n"
DOWN = "p9-01|power9|up|down+not_responding|0/0/8/8|16000|0|(null)|gpu:0|\n"
BOTH_GPUS = "gpu01|gpu|up|mixed|1/7/0/8|16000|2000|gpu:tesla:2|gpu:tesla:2(IDX:0-1)|\n"


# -- sinfo argv and rows ----------------------------------------------------------------------


def test_argv_is_one_sinfo_with_absolute_path_and_every_field():
    argv = sinfo_availability_argv("/opt/slurm/bin/sinfo")
    assert argv == [
        "/opt/slurm/bin/sinfo",
        "--noheader",
        "--Node",
        "--all",
        "--Format=NodeList:|,PartitionName:|,Available:|,StateComplete:|,CPUsState:|,"
        "Memory:|,AllocMem:|,Gres:|,GresUsed:|",
    ]


def test_rows_carry_state_flags_cpus_memory_and_gpus():
    rows = {row.node: row for row in parse_sinfo_availability(DRAINED)}
    assert set(rows) == {"cpu01", "cpu02", "gpu01", "p9-01"}
    cpu02 = rows["cpu02"]
    assert (cpu02.partition, cpu02.state, cpu02.flags) == ("cpu", "allocated", frozenset({"drain"}))
    assert (cpu02.cpus_alloc, cpu02.cpus_idle, cpu02.cpus_other, cpu02.cpus_total) == (3, 0, 5, 8)
    assert (cpu02.memory_mb, cpu02.memory_alloc_mb) == (16000, 500)
    assert cpu02.down and cpu02.category == "down"
    gpu01 = rows["gpu01"]
    assert (gpu01.gpus, gpu01.gpus_used) == ({"tesla": 2}, {"tesla": 1})
    assert gpu01.category == "mixed" and not gpu01.down
    assert rows["cpu01"].gpus == {} and rows["cpu01"].gpus_used == {"": 0}


def test_garbage_lines_are_skipped():
    text = "sinfo: error: something\n\ncpu01|cpu|up|idle|x/8/0/8|16000|0|(null)|gpu:0|\n" + IDLE
    assert [row.node for row in parse_sinfo_availability(text)] == ["cpu01", "cpu02", "gpu01", "p9-01"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(null)", {}),
        ("gpu:0", {"": 0}),
        ("gpu:4", {"": 4}),
        ("gpu:tesla:2", {"tesla": 2}),
        ("gpu:tesla:2(S:0-1)", {"tesla": 2}),
        ("gpu:tesla:1(IDX:0)", {"tesla": 1}),
        ("gpu:a100:4(S:0,1),gpu:v100:2(S:0)", {"a100": 4, "v100": 2}),
        ("gpu:a100:2(IDX:0,2),gpu:v100:0(IDX:N/A),mps:200", {"a100": 2, "v100": 0}),
        ("gpu:(null):1(IDX:0)", {"": 1}),
        ("mps:100,shard:8", {}),
        ("gpu:h100:1K", {"h100": 1024}),
    ],
)
def test_gres_values(text, expected):
    assert parse_gpus(text) == expected


# -- per-partition totals ---------------------------------------------------------------------


def test_idle_cluster():
    parts = parse_availability(IDLE)
    assert set(parts) == {"cpu", "gpu", "power9"}
    assert parts["cpu"] == PartitionAvailability(
        name="cpu",
        state="up",
        nodes_total=2,
        nodes_idle=2,
        cores_idle=16,
        cores_total=16,
        memory_free_mb=32000,
        memory_total_mb=32000,
    )
    gpu = parts["gpu"]
    assert (gpu.gpus_free, gpu.gpus_total, gpu.gpu_types) == (2, 2, {"tesla": GpuAvailability(2, 2)})


def test_one_gpu_job_leaves_one_of_two_gpus():
    parts = parse_availability(BUSY)
    gpu = parts["gpu"]
    assert (gpu.nodes_total, gpu.nodes_mixed, gpu.nodes_idle) == (1, 1, 0)
    assert (gpu.gpus_free, gpu.gpus_total) == (1, 2)
    assert gpu.gpu_types == {"tesla": GpuAvailability(1, 2)}
    assert (gpu.cores_idle, gpu.cores_total, gpu.memory_free_mb) == (6, 8, 13000)
    cpu = parts["cpu"]
    assert (cpu.nodes_allocated, cpu.nodes_mixed, cpu.nodes_idle, cpu.nodes_down) == (1, 1, 0, 0)
    assert (cpu.cores_idle, cpu.cores_total) == (5, 16)
    assert (cpu.memory_free_mb, cpu.memory_total_mb) == (32000 - 1500, 32000)
    assert parse_availability(BOTH_GPUS)["gpu"].gpus_free == 0


def test_drained_draining_not_responding_and_down_count_as_down_with_nothing_free():
    parts = parse_availability(DRAINED)
    cpu = parts["cpu"]
    assert (cpu.nodes_total, cpu.nodes_allocated, cpu.nodes_down) == (2, 1, 1)
    assert (cpu.cores_idle, cpu.cores_total) == (0, 16)
    assert (cpu.memory_free_mb, cpu.memory_total_mb) == (15000, 32000)  # the draining node's free memory is not
    for text in (NOT_RESPONDING, DOWN, DRAINED):
        power9 = parse_availability(text)["power9"]
        assert (power9.nodes_total, power9.nodes_down, power9.nodes_idle) == (1, 1, 0), text
        assert (power9.cores_idle, power9.cores_total, power9.memory_free_mb) == (0, 8, 0), text


def test_down_gpu_node_offers_no_gpus_but_counts_them():
    gpu = parse_availability("gpu01|gpu|up|mixed+drain|2/0/6/8|16000|3000|gpu:tesla:2|gpu:tesla:1(IDX:0)|\n")["gpu"]
    assert (gpu.gpus_free, gpu.gpus_total, gpu.gpu_types["tesla"]) == (0, 2, GpuAvailability(0, 2))


def test_a_node_in_two_partitions_counts_in_each_once():
    text = (
        "gpu01|gpu|up|mixed|2/6/0/8|16000|3000|gpu:tesla:2|gpu:tesla:1(IDX:0)|\n"
        "gpu01|all|up|mixed|2/6/0/8|16000|3000|gpu:tesla:2|gpu:tesla:1(IDX:0)|\n"
        "cpu01|all|up|idle|0/8/0/8|16000|0|(null)|gpu:0|\n"
        "cpu01|all|up|idle|0/8/0/8|16000|0|(null)|gpu:0|\n"  # repeated row: still one node
    )
    parts = parse_availability(text)
    assert (parts["gpu"].nodes_total, parts["gpu"].gpus_free, parts["gpu"].cores_idle) == (1, 1, 6)
    assert (parts["all"].nodes_total, parts["all"].gpus_free, parts["all"].cores_idle) == (2, 1, 14)


def test_mixed_gpu_types_and_untyped_use():
    text = (
        "g1|gpu|up|mixed|4/60/0/64|512000|64000|gpu:a100:4(S:0-1),gpu:v100:2(S:0)|"
        "gpu:a100:3(IDX:0-2),gpu:v100:0(IDX:N/A)|\n"
        "g2|gpu|up|mixed|4/60/0/64|512000|64000|gpu:a100:4|gpu:1|\n"  # use reported untyped
        "g3|gpu|up|idle|0/64/0/64|512000|0|gpu:8|gpu:0|\n"  # untyped GPUs: totals only
    )
    gpu = parse_availability(text)["gpu"]
    assert gpu.gpu_types == {"a100": GpuAvailability(1 + 3, 8), "v100": GpuAvailability(2, 2)}
    assert (gpu.gpus_free, gpu.gpus_total) == (4 + 2 + 8, 8 + 2 + 8)


def test_partition_state_is_kept():
    text = "p9-01|power9|down|idle|0/8/0/8|16000|0|(null)|gpu:0|\n"
    assert parse_availability(text)["power9"].state == "down"


def test_as_dict_is_flat_with_the_field_names():
    assert parse_availability(BUSY)["gpu"].as_dict() == {
        "name": "gpu",
        "state": "up",
        "nodes_total": 1,
        "nodes_idle": 0,
        "nodes_mixed": 1,
        "nodes_allocated": 0,
        "nodes_down": 0,
        "cores_idle": 6,
        "cores_total": 8,
        "gpus_free": 1,
        "gpus_total": 2,
        "gpu_types": {"tesla": {"free": 1, "total": 2}},
        "memory_free_mb": 13000,
        "memory_total_mb": 16000,
    }


# -- the profiles -> partitions a user may see ------------------------------------------------


async def test_the_backend_shows_only_the_partitions_of_the_profiles_asked_about(tmp_path, site: ProfileSet):
    sinfo = tmp_path / "sinfo"
    sinfo.write_text(f'#!/bin/sh\ncat <<"EOF"\n{IDLE}EOF\n')
    sinfo.chmod(0o755)
    backend = SlurmBackend(slurm_bin_dir=str(tmp_path), availability_first_wait=GUARD)
    try:
        everyone = await backend.availability(site.allowed_for(set()))  # the local profile among them
        gpu_only = await backend.availability([site.get("gpu")])
    finally:
        await backend.availability_cache.close()
    assert list(everyone["partitions"]) == ["cpu", "gpu", "power9"]  # cpu-long: in no sinfo row
    assert list(gpu_only["partitions"]) == ["gpu"]


# -- the cache --------------------------------------------------------------------------------


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeQuery:
    """Answers with scripted views (or exceptions), then `default`; can be held at a gate."""

    def __init__(self) -> None:
        self.script: list[dict[str, PartitionAvailability] | Exception] = []
        self.default: dict[str, PartitionAvailability] | Exception = parse_availability(IDLE)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> dict[str, PartitionAvailability]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.script.pop(0) if self.script else self.default
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def make_cache():
    caches: list[AvailabilityCache] = []

    def make(query: FakeQuery, clock: Callable[[], float] = time.monotonic, **kwargs) -> AvailabilityCache:
        cache = AvailabilityCache(query, clock=clock, **{"ttl": 30.0, **kwargs})
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.close()


async def settle(cache: AvailabilityCache) -> None:
    """Wait until the background refresh (if any) is over."""
    deadline = time.monotonic() + GUARD
    while cache._refreshes.in_flight is not None:
        assert time.monotonic() < deadline, "refresh hung"
        await asyncio.sleep(0.001)


async def test_fifty_concurrent_snapshots_cost_one_query(make_cache):
    query = FakeQuery()
    query.gate = asyncio.Event()
    cache = make_cache(query)
    snapshots = asyncio.gather(*(cache.snapshot(wait=GUARD) for _ in range(50)))
    await asyncio.sleep(0.01)
    query.gate.set()
    views = await snapshots
    assert query.calls == cache.queries == 1
    assert all(view.partitions["gpu"].gpus_free == 2 and not view.stale for view in views)


async def test_no_second_query_within_ttl_then_one_in_the_background(make_cache):
    clock = Clock()
    query = FakeQuery()
    cache = make_cache(query, clock)
    first = await cache.snapshot()
    assert query.calls == 1 and not first.stale and first.age == 0
    query.default = parse_availability(BUSY)
    clock.now += 29.9
    for _ in range(20):
        view = await cache.snapshot()
    assert query.calls == 1
    assert not view.stale and view.partitions["gpu"].gpus_free == 2
    clock.now += 0.2  # past the ttl: the old data at once, marked stale, and one refresh
    query.gate = asyncio.Event()
    views = [await cache.snapshot() for _ in range(20)]
    assert all(v.stale and v.partitions["gpu"].gpus_free == 2 for v in views)
    assert cache.queries == 2
    await asyncio.sleep(0)
    assert query.calls == 2
    query.gate.set()
    await settle(cache)
    view = await cache.snapshot()
    assert query.calls == 2
    assert not view.stale and view.partitions["gpu"].gpus_free == 1 and view.error is None


async def test_a_failed_refresh_keeps_the_data_marks_it_stale_and_backs_off(make_cache):
    clock = Clock()
    query = FakeQuery()
    cache = make_cache(query, clock)
    good = await cache.snapshot()
    clock.now += 31
    query.default = CommandFailed("sinfo", "exited with status 1", "Unable to contact slurm controller")
    await cache.snapshot()
    await settle(cache)
    view = await cache.snapshot()
    assert query.calls == 2
    assert view.stale and view.partitions == good.partitions and view.taken_at == good.taken_at
    assert "Unable to contact slurm controller" in view.error
    clock.now += 29  # within ttl of the failure: no new try, however many viewers
    for _ in range(20):
        assert (await cache.snapshot()).stale
    assert query.calls == 2
    clock.now += 2
    query.default = parse_availability(BUSY)
    await cache.snapshot()
    await settle(cache)
    view = await cache.snapshot()
    assert query.calls == 3 and not view.stale and view.error is None
    assert view.partitions["gpu"].gpus_free == 1


async def test_any_exception_from_the_query_is_contained(make_cache):
    query = FakeQuery()
    query.default = RuntimeError("parser blew up")
    cache = make_cache(query)
    view = await cache.snapshot()
    assert view == ClusterAvailability(error="parser blew up")
    assert view.stale and view.partitions == {} and view.age is None


async def test_first_call_waits_at_most_the_bound(make_cache):
    query = FakeQuery()
    query.gate = asyncio.Event()
    cache = make_cache(query)
    started = time.monotonic()
    view = await cache.snapshot(wait=0.05)
    assert time.monotonic() - started < GUARD
    assert view.partitions == {} and view.stale and view.taken_at is None and view.error is None
    assert query.calls == 1
    query.gate.set()
    await settle(cache)
    view = await cache.snapshot(wait=0)
    assert query.calls == 1 and not view.stale and set(view.partitions) == {"cpu", "gpu", "power9"}


async def test_first_call_returns_as_soon_as_the_first_query_answers(make_cache):
    query = FakeQuery()
    cache = make_cache(query, first_wait=GUARD)
    started = time.monotonic()
    view = await cache.snapshot()
    assert time.monotonic() - started < GUARD / 2
    assert not view.stale and view.partitions["cpu"].cores_idle == 16


async def test_later_calls_never_wait(make_cache):
    clock = Clock()
    query = FakeQuery()
    cache = make_cache(query, clock, first_wait=GUARD)
    await cache.snapshot()
    clock.now += 31
    query.gate = asyncio.Event()
    view = await asyncio.wait_for(cache.snapshot(), GUARD / 2)  # would hang at the gate if it waited
    assert view.stale and query.calls == 2
    query.gate.set()


async def test_snapshot_reports_wall_clock_time_and_age(make_cache):
    clock = Clock()
    cache = AvailabilityCache(FakeQuery(), ttl=30, clock=clock, wall_clock=lambda: 1_700_000_000.0)
    await cache.snapshot()
    clock.now += 12.5
    view = await cache.snapshot()
    assert view.taken_at == "2023-11-14T22:13:20+00:00"
    assert datetime.fromisoformat(view.taken_at).timestamp() == 1_700_000_000.0
    assert view.age == 12.5 and not view.stale
    data = view.only(["gpu", "nonexistent"]).as_dict()
    assert set(data) == {"partitions", "taken_at", "age", "stale", "error"}
    assert list(data["partitions"]) == ["gpu"] and data["age"] == 12.5


# -- the Slurm backend's wiring: one sinfo through run_command, argv as built above -----------


async def test_backend_runs_one_sinfo_per_ttl(tmp_path, site):
    calls = tmp_path / "calls"
    sinfo = tmp_path / "sinfo"
    sinfo.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\ncat <<"EOF"\n{BUSY}EOF\n')
    sinfo.chmod(0o755)
    backend = SlurmBackend(slurm_bin_dir=str(tmp_path), availability_ttl=300, availability_first_wait=GUARD)
    try:
        views = await asyncio.gather(*(backend.availability([site.get("gpu")]) for _ in range(10)))
    finally:
        await backend.availability_cache.close()
    assert calls.read_text().splitlines() == [" ".join(sinfo_availability_argv(str(sinfo))[1:])]
    assert all(list(view["partitions"]) == ["gpu"] for view in views)  # only the partitions of the profiles asked about
    assert all(view["partitions"]["gpu"]["gpus_free"] == 1 and not view["stale"] for view in views)
    assert backend.availability_cache.ttl == 300


async def test_concurrent_node_lookups_share_one_sinfo(tmp_path):
    """50 servers reporting at once once made 50 node sinfo calls (benchmarks/spawns.py, N=50)."""
    calls = tmp_path / "calls"
    sinfo = tmp_path / "sinfo"
    sinfo.write_text(f'#!/bin/sh\necho x >> {calls}\nsleep 0.3\necho "cpu01|vm|127.0.0.1"\n')
    sinfo.chmod(0o755)
    backend = SlurmBackend(slurm_bin_dir=str(tmp_path))
    nodes = await asyncio.gather(*(backend._node("cpu01") for _ in range(50)))
    assert {node.address for node in nodes} == {"127.0.0.1"}
    assert await backend._node("cpu01") == nodes[0]
    assert len(calls.read_text().splitlines()) == 1


def test_registering_the_hub_handlers_is_idempotent_and_complete():
    register_handlers()
    register_handlers()
    routes = [route for route in apihandlers.default_handlers if route[0] == availability.PATH]
    assert routes == [(availability.PATH, availability.AvailabilityAPIHandler)]
    assert hub_handlers.missing() == []
