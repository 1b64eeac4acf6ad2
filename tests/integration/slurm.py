"""The real Slurm test cluster, seen from tests: start/stop, command log, job details."""

from __future__ import annotations

import os
import re
import shlex
import socket
import stat
import subprocess
import time
from pathlib import Path

CLUSTER_SCRIPT = Path(__file__).resolve().parents[1] / "cluster" / "slurm.sh"
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")


def cluster(action: str) -> None:
    subprocess.run(["bash", str(CLUSTER_SCRIPT), action], check=True, timeout=180)


def controller_up() -> bool:
    result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in result.stdout


class CommandLog:
    """A directory of wrappers that log every scheduler command, then run the real one."""

    def __init__(self, directory: Path) -> None:
        self.bin_dir = directory
        self.path = directory / "commands.log"
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
        self.path.touch()
        os.chmod(self.path, 0o666)  # jobs are submitted as the test users
        for name in SLURM_COMMANDS:
            wrapper = directory / name
            wrapper.write_text(
                "#!/bin/sh\n"
                f'printf "%s %s %s\\n" "$(date +%s.%N)" "{name}" "$*" >> {self.path}\n'
                f'exec /usr/bin/{name} "$@"\n'
            )
            wrapper.chmod(0o755 | stat.S_IXUSR)

    def entries(self, command: str | None = None) -> list[tuple[float, str, str]]:
        rows = []
        for line in self.path.read_text().splitlines():
            stamp, name, args = ([*line.split(" ", 2), ""])[:3]
            if command is None or name == command:
                rows.append((float(stamp), name, args))
        return rows

    def count(self, command: str) -> int:
        return len(self.entries(command))


SLURM_DIR = Path(os.environ.get("DAAS_SLURM_DIR", "/var/tmp/daas-slurm"))
REST_LOG = SLURM_DIR / "log" / "slurmrestd.log"
CONTROLLER_LOG = SLURM_DIR / "log" / "slurmctld.log"
REST_URL = "http://127.0.0.1:6830"  # slurm.sh's slurmrestd (DAAS_SLURMRESTD_PORT unset)
CLUSTER_JWT_KEY = Path("/etc/slurm/jwt_hs256.key")
# slurmrestd logs one line per request: `slurmrestd: operations_router: [[localhost]:52790] GET /slurm/v0.0.38/jobs`
_REST_LINE = re.compile(r"operations_router: \[\S+\] (GET|POST|DELETE) (/\S*)$")
# The request that replaces each scheduler command the hub runs, so tests count both transports alike.
_REST_REQUESTS = {
    "sbatch": re.compile(r"POST /slurm/v[0-9.]+/job/submit(\?.*)?"),
    "squeue": re.compile(r"GET /slurm/v[0-9.]+/jobs(\?.*)?"),
    "scancel": re.compile(r"DELETE /slurm/v[0-9.]+/job/[0-9]+(\?.*)?"),
    "scontrol": re.compile(r"GET /slurm/v[0-9.]+/ping(\?.*)?"),
}


class RestLog:
    """slurmrestd's requests (from its log), counted under the names of the commands they replace.

    The log is the one slurmrestd of the cluster: it holds every client's requests, so counts are
    only meaningful as differences while one hub (or one in-process backend) talks to it.
    """

    def __init__(self, path: Path = REST_LOG) -> None:
        self.path = path

    def requests(self) -> list[str]:
        """`METHOD /path` of every request logged so far."""
        found = (_REST_LINE.search(line) for line in self.path.read_text(errors="replace").splitlines())
        return [f"{match.group(1)} {match.group(2)}" for match in found if match]

    def count(self, command: str) -> int:
        wanted = _REST_REQUESTS[command]
        return sum(1 for request in self.requests() if wanted.fullmatch(request))


def rest_answers() -> bool:
    """Whether slurmrestd accepts connections (it logs nothing when it dies: this says when it did)."""
    try:
        with socket.create_connection(("127.0.0.1", int(REST_URL.rsplit(":", 1)[1])), timeout=5):
            return True
    except OSError:
        return False


def refused_tokens() -> int:
    """How many JWTs slurmctld has refused so far (expired, bad signature, unreadable): its log's verify errors."""
    return sum("auth_p_verify:" in line for line in CONTROLLER_LOG.read_text(errors="replace").splitlines())


def job_details(job_id: str) -> dict[str, str]:
    """`scontrol show job -o` as a dict (Partition, NumCPUs, TRES, TimeLimit, Account, NodeList...)."""
    output = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    details = {}
    for token in output.split():
        key, _, value = token.partition("=")
        details[key] = value
    return details


def user_jobs(user: str) -> list[str]:
    """Live (not finished) job ids of a user."""
    output = subprocess.run(
        ["squeue", "-h", "-u", user, "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED", "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return output.split()


def batch_script(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "write", "batch_script", job_id, "-"], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def exported(script: str, name: str) -> str:
    """The value a batch script exports (the hub shell-quotes it)."""
    line = next(line for line in script.splitlines() if line.startswith(f"export {name}="))
    return shlex.split(line.removeprefix("export "))[0].split("=", 1)[1]


def stored_job_files(job_id: str) -> dict[str, bytes]:
    """What slurmctld keeps of a job in its StateSaveLocation (the script and the environment)."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True, timeout=30)
    state = next(line.split("=", 1)[1].strip() for line in config.stdout.splitlines() if "StateSaveLocation" in line)
    return {str(path): path.read_bytes() for path in Path(state).glob(f"hash.*/job.{job_id}/*") if path.is_file()}


def server_environment(job_id: str) -> dict[str, str]:
    """The environment of the server process a job runs (read as root from /proc), e.g. for its token."""
    for proc in Path("/proc").iterdir():
        try:
            env = dict(
                item.split("=", 1) for item in (proc / "environ").read_text(errors="replace").split("\0") if "=" in item
            )
            argv = (proc / "cmdline").read_text(errors="replace").split("\0")
        except (OSError, ValueError):
            continue
        launcher = "-c" in argv[:2]  # python3 -c "$DAAS_LAUNCHER": the launcher, or its address watcher
        server = any(arg.endswith("jupyterhub-singleuser") for arg in argv)
        if env.get("SLURM_JOB_ID") == job_id and server and not launcher:
            return env
    raise AssertionError(f"no server process of job {job_id}")


def plain_job(user: str, name: str, resources: list[str]) -> str:
    """A plain `sleep` batch job of `user` (not a server), submitted with sbatch; returns once it runs."""
    sbatch = ["sudo", "-u", user, "sbatch", "--parsable", *resources, "-J", name, "--chdir=/tmp", "-o", "/dev/null"]
    job = subprocess.run(
        [*sbatch, "--wrap", "sleep 600"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    deadline = time.monotonic() + 60
    while job_details(job)["JobState"] != "RUNNING":
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} job {job} did not start")
        time.sleep(0.25)
    return job


def hold_gpus(user: str, count: int) -> str:
    """A plain batch job of `user` holding `count` of gpu01's GPUs (1 CPU, 1000 MB); returns once it runs."""
    return plain_job(user, "gpu-holder", ["-p", "gpu", f"--gres=gpu:tesla:{count}", "--cpus-per-task=1", "--mem=1000"])


# The GPU acceptance spawn (core issue) and what Slurm must show for it, whichever transport submitted it.
GPU_SPAWN = {"profile": "gpu", "gpus": 1, "cores": 2, "memory": "3G", "walltime": "2:00:00"}


def assert_gpu_job(job: dict[str, str], user: str) -> None:
    """`scontrol show job` of a GPU_SPAWN server: the person, partition, node, GPU, cores, memory, time, account."""
    assert job["UserId"].startswith(f"{user}("), job["UserId"]
    assert job["Partition"] == "gpu"
    assert job["NodeList"] == "gpu01"
    assert job["TresPerNode"] == "gres:gpu:tesla:1"
    assert job["NumCPUs"] == "2"
    assert "mem=3G" in job["TRES"], job["TRES"]
    assert job["TimeLimit"] == "02:00:00"
    assert job["Account"] == "daas-demo"
    assert job["JobName"] == "jupyterhub-daas"


def wait_no_jobs(user: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while user_jobs(user):
        if time.monotonic() > deadline:
            raise AssertionError(f"{user} still has jobs {user_jobs(user)}")
        time.sleep(0.5)
