"""The spawner's Prometheus metrics, served by JupyterHub itself at /hub/metrics (scope `read:metrics`).

JupyterHub serves prometheus_client's default registry, so these sit beside its own
`jupyterhub_*` metrics. Labels are backends, transports, profiles, causes and rules: a site's
short lists, never a user, server or job id.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

from daas_core.metrics import define

T = TypeVar("T")

QUERY_SECONDS = define(
    Histogram,
    "daas_scheduler_query_duration_seconds",
    "Seconds one shared scheduler query took (the job list, availability, nodes, a ping), answered or failed.",
    ["backend", "transport", "query"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60, math.inf),
)
QUERY_FAILURES = define(
    Counter,
    "daas_scheduler_query_failures",
    "Shared scheduler queries that failed (no answer in time, an error); the last good view stays in use.",
    ["backend", "transport", "query"],
)
PENDING_JOBS = define(
    Gauge,
    "daas_pending_jobs",
    "The hub's server jobs waiting in the scheduler's queue, by the scheduler's reason (Priority, Resources...), "
    "as the last shared job list showed them.",
    ["backend", "reason"],
)
VIEW_AGE = define(
    Gauge,
    "daas_scheduler_view_age_seconds",
    "Seconds since the shared view began (its last good query): the job list every poll reads, the "
    "availability the form shows. NaN before the first answer.",
    ["backend", "view"],
)
SPAWN_SECONDS = define(
    Histogram,
    "daas_spawn_duration_seconds",
    "Seconds from a start's request to its server listening, for starts that succeeded.",
    ["backend", "profile"],
    buckets=(1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600, 1200, 3600, math.inf),
)
SPAWN_FAILURES = define(
    Counter,
    "daas_spawn_failures",
    "Starts that failed, by cause: options_refused (the options model said no), scheduler_error (the "
    "backend could not submit or start it), server_failed (it ended or failed before it listened), "
    "timeout (the hub's start_timeout), cancelled (stopped while starting), error (anything else).",
    ["backend", "cause"],
)
REFUSALS = define(
    Counter,
    "daas_refusals",
    "Server options refused, by rule: options (a value the profile does not offer or allow), profile (a "
    "profile the person may not use), proposal (a proposal that is not theirs or not for this profile).",
    ["rule"],
)

ACCESS_FIELDS = ("profile", "proposal")  # an OptionsError on these is an access refusal, not a bad value
for _rule in ("options", *ACCESS_FIELDS):
    REFUSALS.labels(_rule)  # every rule shows, at 0 until it refuses

_pending_reasons: dict[str, set[str]] = {}  # backend -> reasons it ever reported, set to 0 when gone


def timed_query(
    query: Callable[[], Awaitable[T]], backend: str, transport: str, name: str
) -> Callable[[], Awaitable[T]]:
    """`query`, its duration and failures recorded; a cancelled query (the hub stops) records nothing."""
    duration = QUERY_SECONDS.labels(backend, transport, name)
    failures = QUERY_FAILURES.labels(backend, transport, name)

    async def timed() -> T:
        started = time.monotonic()
        try:
            answer = await query()
        except asyncio.CancelledError:
            raise
        except Exception:
            duration.observe(time.monotonic() - started)
            failures.inc()
            raise
        duration.observe(time.monotonic() - started)
        return answer

    return timed


def record_pending(backend: str, reasons: Iterable[str]) -> None:
    """The pending jobs of the last good job list, one reason each (`None` or empty: "None")."""
    counts = Tally(reason or "None" for reason in reasons)
    known = _pending_reasons.setdefault(backend, set())
    known.update(counts)
    for reason in known:
        PENDING_JOBS.labels(backend, reason).set(counts.get(reason, 0))


def watch_age(backend: str, view: str, age: Callable[[], float | None]) -> None:
    """Read the view's age at each scrape (the last view made for this backend and name wins)."""
    VIEW_AGE.labels(backend, view).set_function(lambda: _or_nan(age()))


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def refused(field: str) -> None:
    """One refusal of the options model, by rule (the field the OptionsError names)."""
    REFUSALS.labels(field if field in ACCESS_FIELDS else "options").inc()


def spawned(backend: str, profile: str, seconds: float) -> None:
    SPAWN_SECONDS.labels(backend, profile).observe(seconds)


def spawn_failed(backend: str | None, cause: str) -> None:
    """A failed start; `backend` is None when the options were refused before one was chosen."""
    SPAWN_FAILURES.labels(backend or "none", cause).inc()
