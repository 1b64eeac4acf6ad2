"""Pure builders for Slurm: resolved options in, argv lists and batch-script text out.

Nothing here runs anything, so every line a job receives can be unit-tested. Resource
requests go into sbatch's argv (never into `#SBATCH` lines), and the batch script holds
only values the hub produced, each shell-quoted: no user value can add a line, a
directive or a shell construct.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from daas_core.fields import account_for
from daas_core.mount_builders import apptainer_bind_args
from daas_core.mounts import Mount
from daas_core.quantities import format_walltime

from ...options import ResolvedOptions
from ..launcher_source import launcher_source
from .profile import SlurmRequest

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JOB_ID = re.compile(r"(\d+)(?:;[\w.-]+)?")
LAUNCHER_EOF = "DAAS_LAUNCHER_EOF"

# squeue fields, '|'-separated: none of them can contain '|'.
SQUEUE_FORMAT = "%i|%T|%r|%N|%S"
SINFO_NODE_FORMAT = "%N|%n|%o"

PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING"})
ACTIVE_STATES = frozenset({"RUNNING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING"})
# Anything else (COMPLETED, COMPLETING, CANCELLED, FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL,
# PREEMPTED, BOOT_FAIL, DEADLINE, ...) means the server process is gone or going.


@dataclass(frozen=True)
class JobInfo:
    """One row of the shared squeue view."""

    job_id: str
    state: str
    reason: str
    nodes: str
    start_time: str

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def ended(self) -> bool:
        return not (self.pending or self.active)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    hostname: str
    address: str


@dataclass(frozen=True)
class JobSpec:
    """What the Slurm backend decided about one job, besides the user's resolved options."""

    username: str
    job_name: str
    working_dir: str
    output: str
    account: str | None
    env: dict[str, str]
    command: list[str]
    mounts: tuple[Mount, ...] = ()


def job_account(options: ResolvedOptions[SlurmRequest], default_template: str) -> str | None:
    """The account a job is billed to: the profile's (or the default) template, filled with the proposal."""
    template = options.request.slurm.account or (default_template if options.proposal else "")
    if not template:
        return None
    return account_for(template, options.proposal or "")


def sbatch_argv(prefix: list[str], sbatch: str, options: ResolvedOptions[SlurmRequest], spec: JobSpec) -> list[str]:
    """sbatch's argv; the script itself comes on stdin. Resources come from the request alone."""
    request = options.request
    slurm = request.slurm
    argv = [
        *prefix,
        sbatch,
        "--parsable",
        f"--job-name={spec.job_name}",
        f"--chdir={spec.working_dir}",
        f"--output={spec.output}",
        "--nodes=1",
        "--ntasks=1",
        # A server requeued after a node failure would start again unknown to the hub, which
        # still routes to the dead node: end the job instead, so the hub sees it and says so.
        "--no-requeue",
        f"--partition={request.partition}",
    ]
    if request.whole_node:
        argv += ["--exclusive", "--mem=0"]
    else:
        argv += [f"--cpus-per-task={request.cores}", f"--mem={request.memory_mb}M"]
    if request.gpus:
        gres = f"gpu:{request.gpu_type}:{request.gpus}" if request.gpu_type else f"gpu:{request.gpus}"
        argv.append(f"--gres={gres}")
    if request.feature:
        argv.append(f"--constraint={request.feature}")
    argv.append(f"--time={format_walltime(request.walltime_seconds)}")
    if spec.account:
        argv.append(f"--account={spec.account}")
    if slurm.qos:
        argv.append(f"--qos={slurm.qos}")
    if slurm.reservation:
        argv.append(f"--reservation={slurm.reservation}")
    argv += slurm.extra_args
    return argv


def heredoc_launcher_source() -> str:
    """The stdlib-only launcher that picks a port and reports it (see launcher.py), for a here-document."""
    source = launcher_source()
    if LAUNCHER_EOF in source:
        raise RuntimeError("launcher.py must not contain the here-document delimiter")
    return source


def server_exec_words(options: ResolvedOptions, command: list[str], mounts: tuple[Mount, ...] = ()) -> list[str]:
    """Shell words (already quoted) that start the server: the launcher, in Apptainer (binding the data) if asked."""
    run = ["python3", "-c", '"$DAAS_LAUNCHER"', *map(shlex.quote, command)]
    env = options.environment
    if env.image:
        args = [*env.apptainer_args, *apptainer_bind_args(mounts)]
        return ["apptainer", "exec", *map(shlex.quote, args), shlex.quote(env.image), *run]
    return run


def batch_script(options: ResolvedOptions, spec: JobSpec) -> str:
    """The job script: environment set-up, then exec the launcher.

    Hub-produced values, each quoted, and the site's profile: its `env` (quoted, over the hub's),
    `module_use` paths (quoted) and `prologue` lines, which are the site admin's shell text, as written.
    """
    env, profile = options.environment, options.profile
    login = env.modules or profile.module_use or profile.prologue  # `module` and site set-up come with a login shell
    lines = ["#!/bin/bash -l" if login else "#!/bin/bash"]
    lines += [
        f"# jupyterhub-daas single-user server, profile {profile.id}; generated by the hub",
        "set -eu",
    ]
    for name, value in sorted((spec.env | profile.env).items()):
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"refusing environment variable name {name!r}")
        if _CONTROL.search(value):
            raise ValueError(f"refusing control characters in environment variable {name}")
        lines.append(f"export {name}={shlex.quote(value)}")
    lines += [f"module use {shlex.quote(path)}" for path in profile.module_use]
    lines += profile.prologue
    if env.modules:
        lines.append("module load " + " ".join(map(shlex.quote, env.modules)))
    if env.prefix:
        lines.append(f'export PATH={shlex.quote(env.prefix + "/bin")}:"$PATH"')
    lines += [
        f"IFS= read -r -d '' DAAS_LAUNCHER <<'{LAUNCHER_EOF}' || true",
        heredoc_launcher_source().rstrip("\n"),
        LAUNCHER_EOF,
        "exec " + " ".join(server_exec_words(options, spec.command, spec.mounts)),
    ]
    return "\n".join(lines) + "\n"


def parse_job_id(sbatch_stdout: str) -> str:
    """sbatch --parsable prints 'id' or 'id;cluster'."""
    text = sbatch_stdout.strip().splitlines()[-1] if sbatch_stdout.strip() else ""
    match = _JOB_ID.fullmatch(text)
    if not match:
        raise ValueError(f"unexpected sbatch output {sbatch_stdout.strip()[:200]!r}")
    return match.group(1)


def squeue_argv(squeue: str, job_name: str) -> list[str]:
    """One query for every DaaS job of this hub, finished ones included (until MinJobAge)."""
    return [squeue, "--noheader", "--states=all", f"--name={job_name}", f"--format={SQUEUE_FORMAT}"]


def squeue_comment_argv(squeue: str, job_name: str) -> list[str]:
    """The hub's live jobs with their comments: finds a job whose sbatch was cut off before it answered."""
    return [squeue, "--noheader", f"--name={job_name}", "--format=%i|%k"]


def jobs_with_comment(text: str, comment: str) -> list[str]:
    return [
        job_id
        for job_id, _, found in (line.strip().partition("|") for line in text.splitlines())
        if found == comment and job_id.isdigit()
    ]


def parse_squeue(text: str) -> dict[str, JobInfo]:
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5 or not fields[0].isdigit() or not fields[1].strip():
            continue
        job_id, state, reason, nodes, start = fields
        jobs[job_id] = JobInfo(job_id, state.split()[0], reason, nodes, start)
    return jobs


def sinfo_nodes_argv(sinfo: str) -> list[str]:
    return [sinfo, "--noheader", "--Node", f"--format={SINFO_NODE_FORMAT}"]


def parse_sinfo_nodes(text: str) -> dict[str, NodeInfo]:
    nodes: dict[str, NodeInfo] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 3 and fields[0]:
            nodes[fields[0]] = NodeInfo(*fields)
    return nodes


def scancel_argv(prefix: list[str], scancel: str, job_id: str) -> list[str]:
    return [*prefix, scancel, job_id]
