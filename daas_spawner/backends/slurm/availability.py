"""Pure sinfo parsing for the live availability view: one per-node query in, per-partition totals out.

One `sinfo --Node --Format=...` lists every (node, partition) pair, so a node in two partitions
counts in each. `--Format` with empty widths prints whole values ('|'-separated, no padding)
and has kept its field names across Slurm releases, unlike `sinfo --json`, whose layout follows
the OpenAPI plugin version (v0.0.38 in 22.05) and changes with it.

Counting rules, so a number means "a new job could use this now":
- A node is down when Slurm would not start a new job on it: base state down/future/unknown
  (or error), or flagged drain(ing), fail(ing), not responding, reboot issued, powering down,
  maintenance or invalid registration. A powered-down (power-saving) node counts as idle.
  Its idle cores, free GPUs and free memory count as 0; its totals still count.
- Free memory is RealMemory minus memory allocated to jobs (what the scheduler can still
  hand out), not the OS's FreeMem, which ignores allocations and can exceed RealMemory.
- GPUs are the `gpu` GRES; per type too when the GRES is typed (`gpu:tesla:2`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

SINFO_AVAILABILITY_FIELDS = (
    "NodeList",
    "PartitionName",  # no '*' on the default partition, unlike Partition
    "Available",  # the partition's state: up, down, drain, inact
    "StateComplete",  # base state plus every flag: 'idle', 'mixed+drain', 'down+not_responding'
    "CPUsState",  # allocated/idle/other/total
    "Memory",  # RealMemory, MB
    "AllocMem",  # MB allocated to jobs
    "Gres",  # 'gpu:tesla:2', '(null)'
    "GresUsed",  # 'gpu:tesla:1(IDX:0)', 'gpu:0'
)
# An empty width prints the whole value; '|' ends each field (no field can contain it).
SINFO_AVAILABILITY_FORMAT = ",".join(f"{name}:|" for name in SINFO_AVAILABILITY_FIELDS)

DOWN_STATES = frozenset({"down", "future", "unknown", "error", "inval"})
DOWN_FLAGS = frozenset(
    {"drain", "fail", "not_responding", "reboot_issued", "maint", "maintenance", "powering_down", "invalid_reg"}
)
GPU_GRES = "gpu"
_GRES_COUNT = re.compile(r"(\d+)([KMGTP]?)", re.IGNORECASE)
_TRAILER = re.compile(r"\([^()]*\)$")
_MULTIPLIER = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def sinfo_availability_argv(sinfo: str) -> list[str]:
    """The one query behind the availability view: every node of every partition, hidden ones too.

    `--all` because a profile may name a partition that is hidden or restricted to groups the
    hub's own account is not in; sinfo would silently leave it out otherwise.
    """
    return [sinfo, "--noheader", "--Node", "--all", f"--Format={SINFO_AVAILABILITY_FORMAT}"]


@dataclass(frozen=True)
class NodeRow:
    """One (node, partition) row of the availability sinfo."""

    node: str
    partition: str
    partition_state: str
    state: str  # base state, lower case: idle, mixed, allocated, down, ...
    flags: frozenset[str]
    cpus_alloc: int
    cpus_idle: int
    cpus_other: int
    cpus_total: int
    memory_mb: int
    memory_alloc_mb: int
    gpus: dict[str, int] = field(default_factory=dict)  # GPU type ('' = untyped) -> count
    gpus_used: dict[str, int] = field(default_factory=dict)

    @property
    def down(self) -> bool:
        return self.state in DOWN_STATES or bool(self.flags & DOWN_FLAGS)

    @property
    def category(self) -> str:
        """idle, mixed, allocated or down: the node counts the site cares about."""
        if self.down:
            return "down"
        if self.state in ("idle", "mixed", "allocated"):
            return self.state
        return "mixed"  # not a base state Slurm 22.05-24.x prints; never hide a node


@dataclass(frozen=True)
class GpuAvailability:
    free: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return {"free": self.free, "total": self.total}


@dataclass(frozen=True)
class PartitionAvailability:
    """What one partition could run now, summed over its nodes."""

    name: str
    state: str  # the partition's own state (up, down, drain, inact)
    nodes_total: int = 0
    nodes_idle: int = 0
    nodes_mixed: int = 0
    nodes_allocated: int = 0
    nodes_down: int = 0
    cores_idle: int = 0
    cores_total: int = 0
    gpus_free: int = 0
    gpus_total: int = 0
    gpu_types: dict[str, GpuAvailability] = field(default_factory=dict)  # typed GPUs only
    memory_free_mb: int = 0
    memory_total_mb: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Flat, with the field names (what the form's table and its JavaScript read)."""
        return asdict(self)


def _split_gres(text: str) -> list[str]:
    """Split a GRES list on commas outside parentheses ('gpu:a:1(IDX:0,2),gpu:b:0(IDX:N/A)')."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_gpus(text: str) -> dict[str, int]:
    """GPU counts by type ('' for untyped) from a Gres or GresUsed value; other GRES are ignored."""
    gpus: dict[str, int] = {}
    if text.strip() in ("", "(null)", "N/A"):
        return gpus
    for item in _split_gres(text):
        item = _TRAILER.sub("", item)  # drop (S:0-1) / (IDX:0,1), keep a '(null)' type
        parts = item.split(":")
        if parts[0] != GPU_GRES or len(parts) < 2:
            continue
        count = _GRES_COUNT.fullmatch(parts[-1])
        if count is None:
            continue
        gpu_type = parts[1] if len(parts) >= 3 and parts[1] != "(null)" else ""
        number = int(count.group(1)) * _MULTIPLIER[count.group(2).lower()]
        gpus[gpu_type] = gpus.get(gpu_type, 0) + number
    return gpus


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def parse_sinfo_availability(text: str) -> list[NodeRow]:
    """Rows of `sinfo_availability_argv`'s output; lines that do not fit are skipped."""
    rows: list[NodeRow] = []
    width = len(SINFO_AVAILABILITY_FIELDS)
    for line in text.splitlines():
        fields = [part.strip() for part in line.strip().split("|")]
        if len(fields) == width + 1 and fields[-1] == "":
            fields.pop()  # the '|' after the last field
        if len(fields) != width:
            continue
        node, partition, partition_state, state, cpus, memory, alloc_mem, gres, gres_used = fields
        cpu_counts = cpus.split("/")
        if not node or not partition or len(cpu_counts) != 4 or not all(c.isdigit() for c in cpu_counts):
            continue
        base, *flags = state.lower().rstrip("*~#!%$@^-").split("+")
        if state.endswith("*"):
            flags.append("not_responding")
        alloc, idle, other, total = map(int, cpu_counts)
        rows.append(
            NodeRow(
                node=node,
                partition=partition,
                partition_state=partition_state.lower(),
                state=base,
                flags=frozenset(flags),
                cpus_alloc=alloc,
                cpus_idle=idle,
                cpus_other=other,
                cpus_total=total,
                memory_mb=_int(memory),
                memory_alloc_mb=_int(alloc_mem),
                gpus=parse_gpus(gres),
                gpus_used=parse_gpus(gres_used),
            )
        )
    return rows


@dataclass
class _Totals:
    """Running sums for one partition while summarize() walks the rows."""

    state: str
    nodes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("idle", "mixed", "allocated", "down"), 0))
    cores_idle: int = 0
    cores_total: int = 0
    memory_free_mb: int = 0
    memory_total_mb: int = 0
    gpus: dict[str, list[int]] = field(default_factory=dict)  # type -> [free, total]

    def add(self, row: NodeRow) -> None:
        usable = not row.down
        self.nodes[row.category] += 1
        self.cores_total += row.cpus_total
        self.cores_idle += row.cpus_idle if usable else 0
        self.memory_total_mb += row.memory_mb
        self.memory_free_mb += max(row.memory_mb - row.memory_alloc_mb, 0) if usable else 0
        for gpu_type, (free, total) in _node_gpus(row).items():
            sums = self.gpus.setdefault(gpu_type, [0, 0])
            sums[0] += free if usable else 0
            sums[1] += total

    def result(self, name: str) -> PartitionAvailability:
        return PartitionAvailability(
            name=name,
            state=self.state,
            nodes_total=sum(self.nodes.values()),
            nodes_idle=self.nodes["idle"],
            nodes_mixed=self.nodes["mixed"],
            nodes_allocated=self.nodes["allocated"],
            nodes_down=self.nodes["down"],
            cores_idle=self.cores_idle,
            cores_total=self.cores_total,
            gpus_free=sum(free for free, _ in self.gpus.values()),
            gpus_total=sum(total for _, total in self.gpus.values()),
            gpu_types={t: GpuAvailability(free, total) for t, (free, total) in self.gpus.items() if t},
            memory_free_mb=self.memory_free_mb,
            memory_total_mb=self.memory_total_mb,
        )


def _node_gpus(row: NodeRow) -> dict[str, tuple[int, int]]:
    """GPU type -> (free, total) on one node.

    Typed GPUs whose use is reported untyped ('gpu:1' next to 'gpu:tesla:2') are charged to
    the types in order, so the node's free count stays right even if a type's may not.
    """
    typed_use_known = any(gpu_type for gpu_type in row.gpus_used)
    untyped_used = 0 if typed_use_known or "" in row.gpus else row.gpus_used.get("", 0)
    counts: dict[str, tuple[int, int]] = {}
    for gpu_type, total in row.gpus.items():
        used = row.gpus_used.get(gpu_type, 0)
        if gpu_type and untyped_used:
            charged = max(min(untyped_used, total - used), 0)
            used, untyped_used = used + charged, untyped_used - charged
        counts[gpu_type] = (max(total - used, 0), total)
    return counts


def summarize(rows: list[NodeRow]) -> dict[str, PartitionAvailability]:
    """Per-partition totals; a node listed under several partitions counts in each."""
    totals: dict[str, _Totals] = {}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if (row.node, row.partition) in seen:  # never count one node twice in one partition
            continue
        seen.add((row.node, row.partition))
        totals.setdefault(row.partition, _Totals(row.partition_state)).add(row)
    return {name: part.result(name) for name, part in sorted(totals.items())}


def parse_availability(text: str) -> dict[str, PartitionAvailability]:
    """sinfo output -> per-partition availability (what the backend's cache stores)."""
    return summarize(parse_sinfo_availability(text))
