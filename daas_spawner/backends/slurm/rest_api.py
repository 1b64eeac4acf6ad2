"""Pure builders and parsers for slurmrestd (OpenAPI v0.0.38, Slurm 22.05): JSON in, the backend's shapes out.

The job request carries the same resources as sbatch's argv (commands.sbatch_argv) from the
same resolved request, and the same batch script; the answers become the same JobInfo,
NodeInfo and NodeRow the command-line parsers produce, so the backend cannot tell them apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from .availability import NodeRow, PartitionAvailability, parse_gpus, summarize
from .commands import JobInfo, NodeInfo
from .transport import Submission

# Login-shell basics a job gets besides what its script exports (sbatch would pass the caller's
# environment; slurmrestd passes exactly this object and refuses a job without one).
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


class RestRefused(ValueError):
    """slurmrestd answered with errors: Slurm's own words, joined."""


def errors(payload: Mapping[str, Any]) -> str:
    """Slurm's error text in an answer ('' when there is none); slurmrestd reports failures here, not in the status."""
    found = []
    for item in payload.get("errors") or []:
        if isinstance(item, Mapping):
            text = item.get("description") or item.get("error") or f"error {item.get('error_number', '?')}"
            detail = item.get("error")
            found.append(f"{text} ({detail})" if detail and detail not in text else str(text))
    return "; ".join(found)


def job_request(submission: Submission) -> dict[str, Any]:
    """The body of POST /job/submit: sbatch_argv's resources and the batch script, nothing from the user unchecked."""
    options, spec = submission.options, submission.spec
    request = options.request
    slurm = request.slurm
    if slurm.extra_args:
        raise RestRefused(
            f"profile {options.profile.id!r} sets slurm.extra_args, which slurmrestd cannot take: "
            "use the profile's own settings or the command-line transport"
        )
    job: dict[str, Any] = {
        "name": spec.job_name,
        "current_working_directory": spec.working_dir,
        "standard_output": spec.output,
        "nodes": [1, 1],
        "tasks": 1,
        "requeue": False,  # as sbatch --no-requeue: a requeued server would start unknown to the hub
        "partition": request.partition,
        "time_limit": math.ceil(request.walltime_seconds / 60),
        "comment": submission.comment,
        "environment": {
            "PATH": BASE_PATH,
            "HOME": submission.home,
            "USER": spec.username,
            "LOGNAME": spec.username,
        },
    }
    if request.whole_node:
        job |= {"exclusive": "true", "memory_per_node": 0}
    else:
        job |= {"cpus_per_task": request.cores, "memory_per_node": request.memory_mb}
    if request.gpus:
        job["gres"] = f"gpu:{request.gpu_type}:{request.gpus}" if request.gpu_type else f"gpu:{request.gpus}"
    if request.feature:
        job["constraints"] = request.feature
    if spec.account:
        job["account"] = spec.account
    if slurm.qos:
        job["qos"] = slurm.qos
    if slurm.reservation:
        job["reservation"] = slurm.reservation
    return {"job": job, "script": submission.script}


def submitted_job_id(payload: Mapping[str, Any]) -> str:
    """The job id of a submit answer; RestRefused with Slurm's words when there is none."""
    problem = errors(payload)
    job_id = payload.get("job_id")
    if problem or not isinstance(job_id, int):
        raise RestRefused(problem or "slurmrestd gave no job id")
    return str(job_id)


def _start_time(epoch: Any) -> str:
    """squeue's %S for an epoch (local time, ISO-like), 'N/A' when Slurm has no estimate."""
    if not isinstance(epoch, int) or epoch <= 0:
        return "N/A"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


def _jobs(payload: Mapping[str, Any], job_name: str) -> list[Mapping[str, Any]]:
    return [
        job
        for job in payload.get("jobs") or []
        if isinstance(job, Mapping) and job.get("name") == job_name and isinstance(job.get("job_id"), int)
    ]


def parse_jobs(payload: Mapping[str, Any], job_name: str) -> dict[str, JobInfo]:
    """GET /jobs -> the hub's jobs, as parse_squeue gives them."""
    jobs: dict[str, JobInfo] = {}
    for job in _jobs(payload, job_name):
        state = str(job.get("job_state") or "").split()
        if not state:
            continue
        job_id = str(job["job_id"])
        jobs[job_id] = JobInfo(
            job_id=job_id,
            state=state[0],
            reason=str(job.get("state_reason") or "None"),
            nodes=str(job.get("nodes") or ""),
            start_time=_start_time(job.get("start_time")),
        )
    return jobs


def jobs_with_comment(payload: Mapping[str, Any], job_name: str, comment: str) -> list[str]:
    """Live jobs of the hub with this comment (as squeue without --states=all lists them)."""
    listed = parse_jobs(payload, job_name)
    return [
        str(job["job_id"])
        for job in _jobs(payload, job_name)
        if job.get("comment") == comment and str(job["job_id"]) in listed and not listed[str(job["job_id"])].ended
    ]


def parse_nodes(payload: Mapping[str, Any]) -> dict[str, NodeInfo]:
    """GET /nodes -> name, host name and address of every node."""
    nodes: dict[str, NodeInfo] = {}
    for node in payload.get("nodes") or []:
        if isinstance(node, Mapping) and node.get("name"):
            name = str(node["name"])
            nodes[name] = NodeInfo(name, str(node.get("hostname") or ""), str(node.get("address") or ""))
    return nodes


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def availability(nodes: Mapping[str, Any], partitions: Mapping[str, Any]) -> dict[str, PartitionAvailability]:
    """GET /nodes and GET /partitions -> per-partition availability, counted as from sinfo."""
    states = {
        str(part.get("name")): str(part.get("state") or "unknown").lower()
        for part in partitions.get("partitions") or []
        if isinstance(part, Mapping)
    }
    rows: list[NodeRow] = []
    for node in nodes.get("nodes") or []:
        if not isinstance(node, Mapping) or not node.get("name"):
            continue
        total, alloc, idle = _count(node.get("cpus")), _count(node.get("alloc_cpus")), _count(node.get("idle_cpus"))
        flags = frozenset(str(flag).lower() for flag in node.get("state_flags") or [])
        for partition in node.get("partitions") or []:
            rows.append(
                NodeRow(
                    node=str(node["name"]),
                    partition=str(partition),
                    partition_state=states.get(str(partition), "unknown"),
                    state=str(node.get("state") or "unknown").lower(),
                    flags=flags,
                    cpus_alloc=alloc,
                    cpus_idle=idle,
                    cpus_other=max(total - alloc - idle, 0),
                    cpus_total=total,
                    memory_mb=_count(node.get("real_memory")),
                    memory_alloc_mb=_count(node.get("alloc_memory")),
                    gpus=parse_gpus(str(node.get("gres") or "")),
                    gpus_used=parse_gpus(str(node.get("gres_used") or "")),
                )
            )
    return summarize(rows)
