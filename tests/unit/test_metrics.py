"""The spawner's metrics: defined once, recorded by the Slurm backend's shared queries, never by user.

Metrics are process-wide (prometheus_client's default registry, the one /hub/metrics serves), so
each test reads the change it made, not absolute values.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, Counter, Gauge, generate_latest
from tornado import web

from daas_core.commands import CommandFailed
from daas_core.metrics import define
from daas_spawner import metrics
from daas_spawner.backends.slurm.backend import SlurmBackend
from daas_spawner.spawner import DaaSSpawner


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_metric_is_defined_once_however_often_its_module_is_imported():
    before = metrics.SPAWN_SECONDS
    reloaded = importlib.reload(metrics)  # prometheus_client alone would refuse the second definition
    assert reloaded.SPAWN_SECONDS is before
    assert define(Counter, "daas_refusals", "again", ["rule"]) is metrics.REFUSALS


def test_a_taken_name_of_another_kind_or_labels_is_refused():
    with pytest.raises(ValueError, match="already defined, as a Counter"):
        define(Gauge, "daas_refusals", "a gauge now", ["rule"])
    with pytest.raises(ValueError, match="already defined"):
        define(Counter, "daas_refusals", "other labels", ["user"])
    with pytest.raises(ValueError, match="does not start with 'daas_'"):
        define(Counter, "spawns", "no prefix")


LABELS = {"backend", "transport", "query", "reason", "view", "profile", "cause", "rule", "le"}


def test_every_spawner_metric_has_help_and_only_labels_of_short_site_lists():
    metrics.spawned("slurm", "cpu", 12.0)  # every metric has a series to look at
    metrics.spawn_failed(None, "options_refused")
    text = generate_latest(REGISTRY).decode()
    names = [
        "daas_scheduler_query_duration_seconds",
        "daas_scheduler_query_failures_total",
        "daas_pending_jobs",
        "daas_scheduler_view_age_seconds",
        "daas_spawn_duration_seconds",
        "daas_spawn_failures_total",
        "daas_refusals_total",
    ]
    for name in names:
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text
    series = [line for line in text.splitlines() if line.startswith("daas_")]
    assert series
    for line in series:
        labels = re.findall(r'([a-z_]+)="', line.partition("{")[2])
        assert set(labels) <= LABELS, line


async def test_a_timed_query_records_answers_and_failures_but_not_a_cancel():
    labels = {"backend": "test", "transport": "unit", "query": "jobs"}
    count, failed = "daas_scheduler_query_duration_seconds_count", "daas_scheduler_query_failures_total"
    before = sample(count, **labels), sample(failed, **labels)

    async def answer() -> str:
        return "listed"

    async def fail() -> str:
        raise CommandFailed("squeue", "timed out", timed_out=True)

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    assert await metrics.timed_query(answer, "test", "unit", "jobs")() == "listed"
    with pytest.raises(CommandFailed):
        await metrics.timed_query(fail, "test", "unit", "jobs")()
    task = asyncio.ensure_future(metrics.timed_query(hang, "test", "unit", "jobs")())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (sample(count, **labels) - before[0], sample(failed, **labels) - before[1]) == (2, 1)


def test_pending_jobs_count_by_reason_and_a_reason_gone_drops_to_zero():
    metrics.record_pending("unit", ["Priority", "Resources", "Priority", ""])
    assert sample("daas_pending_jobs", backend="unit", reason="Priority") == 2
    assert sample("daas_pending_jobs", backend="unit", reason="Resources") == 1
    assert sample("daas_pending_jobs", backend="unit", reason="None") == 1
    metrics.record_pending("unit", ["Resources"])
    assert sample("daas_pending_jobs", backend="unit", reason="Priority") == 0
    assert sample("daas_pending_jobs", backend="unit", reason="Resources") == 1


def test_options_refusals_count_by_rule_never_by_the_field_a_user_sent():
    before = {rule: sample("daas_refusals_total", rule=rule) for rule in ("options", "profile", "proposal")}
    for field in ("cores", "profile", "proposal", "x" * 64, "gpus"):
        metrics.refused(field)
    after = {rule: sample("daas_refusals_total", rule=rule) - before[rule] for rule in before}
    assert after == {"options": 3, "profile": 1, "proposal": 1}
    assert REGISTRY.get_sample_value("daas_refusals_total", {"rule": "x" * 64}) is None


def squeue_standin(bin_dir: Path, rows: str) -> None:
    """An squeue that prints these rows (the CLI transport's format) or fails when there are none."""
    bin_dir.mkdir(exist_ok=True)
    squeue = bin_dir / "squeue"
    body = f'cat <<"EOF"\n{rows}EOF\n' if rows else 'echo "slurm_load_jobs error: Unable to contact" >&2\nexit 1\n'
    squeue.write_text(f"#!/bin/sh\n{body}")
    squeue.chmod(0o755)


async def test_the_slurm_backend_records_its_job_list_pending_reasons_and_view_age(tmp_path: Path):
    squeue_standin(
        tmp_path, "101|PENDING|Priority||N/A\n102|PENDING|QOSMaxJobsPerUserLimit||N/A\n103|RUNNING|None|c1|x\n"
    )
    backend = SlurmBackend(slurm_bin_dir=str(tmp_path))
    labels = {"backend": "slurm", "transport": "cli", "query": "jobs"}
    queries, failures = (
        sample("daas_scheduler_query_duration_seconds_count", **labels),
        sample("daas_scheduler_query_failures_total", **labels),
    )
    assert math.isnan(sample("daas_scheduler_view_age_seconds", backend="slurm", view="jobs") or math.nan)
    await backend.queue.refresh()
    assert sample("daas_pending_jobs", backend="slurm", reason="QOSMaxJobsPerUserLimit") == 1
    assert sample("daas_pending_jobs", backend="slurm", reason="Priority") == 1
    assert sample("daas_pending_jobs", backend="slurm", reason="None") == 0  # the running job is not pending
    assert sample("daas_scheduler_view_age_seconds", backend="slurm", view="jobs") >= 0

    squeue_standin(tmp_path, "")  # the controller stops answering: a failure, the last view stays
    with pytest.raises(CommandFailed):
        await backend.queue.refresh()
    assert sample("daas_scheduler_query_duration_seconds_count", **labels) - queries == 2
    assert sample("daas_scheduler_query_failures_total", **labels) - failures == 1
    assert sample("daas_pending_jobs", backend="slurm", reason="Priority") == 1
    await backend.close()


@pytest.mark.parametrize(
    "error, seconds, cause",
    [
        (asyncio.CancelledError(), 10.0, "timeout"),  # JupyterHub cancels the start at its start_timeout
        (asyncio.CancelledError(), 3.0, "cancelled"),  # stopped while starting
        (web.HTTPError(503, "Slurm is not answering"), 1.0, "scheduler_error"),
        (web.HTTPError(500, "the job ended before the server listened"), 1.0, "server_failed"),
        (KeyError("state"), 1.0, "error"),
    ],
)
def test_a_failed_start_is_counted_by_its_cause(error: BaseException, seconds: float, cause: str):
    assert DaaSSpawner(start_timeout=10)._failure_cause(error, seconds) == cause
