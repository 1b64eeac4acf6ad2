"""slurmrestd's job body and answers: the same job as sbatch's argv, the same shapes as squeue's and sinfo's."""

from __future__ import annotations

import pytest

from daas_spawner.backends.slurm import rest_api
from daas_spawner.backends.slurm.availability import parse_availability
from daas_spawner.backends.slurm.commands import JobInfo, NodeInfo, batch_script, sbatch_argv
from daas_spawner.backends.slurm.transport import Submission
from daas_spawner.options import UserAccess, resolve_options
from daas_spawner.profiles import parse_profiles

from .conftest import site_profiles_raw
from .test_slurm_commands import make_spec, resolved

COMMENT = "jupyterhub-daas-0123456789abcdef"

OPTION_SETS = [
    {"profile": "gpu"},
    {"profile": "gpu", "gpus": "2", "cores": "medium", "memory": "6G", "walltime": "8:00:00"},
    {"profile": "gpu", "gpus": "0"},
    {"profile": "power9"},
    {"profile": "cpu", "cores": "whole_node", "partition": "cpu-long", "walltime": "12:00:00"},
    {"profile": "cpu", "walltime": "0:30:00"},
]


def submission(options, account: str | None = "proj-42") -> Submission:
    spec = make_spec(account=account)
    return Submission(options, spec, batch_script(options, spec), COMMENT, "/home/alice")


def sbatch_resources(argv: list[str]) -> dict[str, str]:
    """sbatch's --flag=value arguments (and bare flags as 'true'), by flag."""
    found = {}
    for arg in argv:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            found[name] = value or "true"
    return found


def minutes(slurm_time: str) -> int:
    hours, mins, secs = (int(part) for part in slurm_time.split(":"))
    return hours * 60 + mins + (secs > 0)


@pytest.mark.parametrize("raw", OPTION_SETS, ids=lambda raw: ",".join(f"{k}={v}" for k, v in raw.items()))
def test_the_rest_job_asks_for_what_sbatch_asks_for(site, raw) -> None:
    options = resolved(site, **raw)
    flags = sbatch_resources(sbatch_argv([], "sbatch", options, make_spec()))
    body = rest_api.job_request(submission(options))
    job = body["job"]

    assert job["name"] == flags["job-name"]
    assert job["current_working_directory"] == flags["chdir"]
    assert job["standard_output"] == flags["output"]
    assert (job["nodes"], job["tasks"], job["requeue"]) == ([1, 1], 1, False)  # --nodes=1 --ntasks=1 --no-requeue
    assert job["partition"] == flags["partition"]
    assert job["memory_per_node"] == int(flags["mem"].removesuffix("M"))
    assert job.get("cpus_per_task") == (int(flags["cpus-per-task"]) if "cpus-per-task" in flags else None)
    assert job.get("exclusive") == flags.get("exclusive")
    assert job.get("gres") == flags.get("gres")
    assert job.get("constraints") == flags.get("constraint")
    assert job["time_limit"] == minutes(flags["time"])
    assert job["account"] == flags["account"] == "proj-42"
    assert job["comment"] == COMMENT
    assert body["script"] == batch_script(options, make_spec())


def test_the_rest_job_environment_is_a_login_basics_object_and_the_secrets_stay_in_the_script(site) -> None:
    job = rest_api.job_request(submission(resolved(site, profile="cpu")))["job"]
    assert job["environment"] == {
        "PATH": rest_api.BASE_PATH,
        "HOME": "/home/alice",
        "USER": "alice",
        "LOGNAME": "alice",
    }


def test_the_rest_job_carries_admin_settings_and_no_account_when_none() -> None:
    raw = site_profiles_raw()
    raw["profiles"][1]["slurm"] = {"qos": "interactive", "reservation": "beamtime"}
    raw["profiles"][1]["resources"]["gpus"]["types"] = []
    options = resolve_options({"profile": "gpu", "gpus": 2}, parse_profiles(raw, "t"), UserAccess())
    job = rest_api.job_request(submission(options, account=None))["job"]
    assert (job["qos"], job["reservation"], job["gres"]) == ("interactive", "beamtime", "gpu:2")
    assert "account" not in job


def test_extra_sbatch_arguments_are_refused_not_dropped() -> None:
    raw = site_profiles_raw()
    raw["profiles"][1]["slurm"] = {"extra_args": ["--comment=daas"]}
    options = resolve_options({"profile": "gpu"}, parse_profiles(raw, "t"), UserAccess())
    with pytest.raises(rest_api.RestRefused, match=r"'gpu' sets slurm\.extra_args"):
        rest_api.job_request(submission(options))


# -- answers ---------------------------------------------------------------------------------

ERROR = {
    "errors": [
        {
            "description": "unable to kill JobId=195 with signal 9: Access/permission denied",
            "error_number": 2002,
            "error": "Access/permission denied",
            "source": "slurm_kill_job",
        }
    ]
}


def test_errors_keep_slurms_words() -> None:
    assert rest_api.errors(ERROR) == "unable to kill JobId=195 with signal 9: Access/permission denied"
    assert rest_api.errors({"errors": [{"error_code": 2000, "error": "Invalid partition name specified"}]}) == (
        "Invalid partition name specified"
    )
    assert rest_api.errors({"errors": []}) == ""


def test_a_submit_answer_gives_the_job_id_or_slurms_refusal() -> None:
    assert rest_api.submitted_job_id({"errors": [], "job_id": 195, "step_id": "BATCH"}) == "195"
    with pytest.raises(rest_api.RestRefused, match="Invalid partition"):
        rest_api.submitted_job_id({"errors": [{"error": "Invalid partition name specified"}]})
    with pytest.raises(rest_api.RestRefused, match="no job id"):
        rest_api.submitted_job_id({"errors": []})


JOBS = {
    "jobs": [
        {"job_id": 7, "name": "jupyterhub-daas", "job_state": "RUNNING", "state_reason": "None", "nodes": "gpu01",
         "start_time": 1796334890, "comment": COMMENT},
        {"job_id": 8, "name": "jupyterhub-daas", "job_state": "PENDING", "state_reason": "Resources", "nodes": "",
         "start_time": 0, "comment": COMMENT},
        {"job_id": 9, "name": "jupyterhub-daas", "job_state": "CANCELLED", "state_reason": "None", "nodes": "cpu01",
         "start_time": 1796334142, "comment": COMMENT},
        {"job_id": 10, "name": "gpu-holder", "job_state": "RUNNING", "state_reason": "None", "nodes": "gpu01",
         "start_time": 1796334142, "comment": COMMENT},
        {"job_id": "11", "name": "jupyterhub-daas", "job_state": "RUNNING"},
    ]
}  # fmt: skip


def test_the_job_list_becomes_squeue_rows_of_this_hubs_jobs() -> None:
    jobs = rest_api.parse_jobs(JOBS, "jupyterhub-daas")
    assert set(jobs) == {"7", "8", "9"}
    assert jobs["7"].active and jobs["7"].nodes == "gpu01"
    assert jobs["7"].start_time.startswith("2026-")
    assert jobs["8"] == JobInfo("8", "PENDING", "Resources", "", "N/A")
    assert jobs["9"].ended


def test_jobs_with_a_comment_are_the_live_ones_of_this_hub() -> None:
    assert rest_api.jobs_with_comment(JOBS, "jupyterhub-daas", COMMENT) == ["7", "8"]
    assert rest_api.jobs_with_comment(JOBS, "jupyterhub-daas", "jupyterhub-daas-ffffffffffffffff") == []


NODES = {
    "nodes": [
        {"name": "cpu01", "hostname": "vm", "address": "127.0.0.1", "state": "mixed", "state_flags": [],
         "partitions": ["cpu"], "cpus": 8, "alloc_cpus": 2, "idle_cpus": 6, "real_memory": 16000,
         "alloc_memory": 3072, "gres": "", "gres_used": "gpu:0"},
        {"name": "cpu02", "hostname": "vm", "address": "127.0.0.2", "state": "idle", "state_flags": ["DRAIN"],
         "partitions": ["cpu"], "cpus": 8, "alloc_cpus": 0, "idle_cpus": 8, "real_memory": 16000,
         "alloc_memory": 0, "gres": "", "gres_used": "gpu:0"},
        {"name": "gpu01", "hostname": "vm", "address": "127.0.0.3", "state": "mixed", "state_flags": [],
         "partitions": ["gpu", "debug"], "cpus": 8, "alloc_cpus": 2, "idle_cpus": 6, "real_memory": 16000,
         "alloc_memory": 4096, "gres": "gpu:tesla:2", "gres_used": "gpu:tesla:1(IDX:0)"},
    ]
}  # fmt: skip
PARTITIONS = {
    "partitions": [{"name": "cpu", "state": "UP"}, {"name": "gpu", "state": "UP"}, {"name": "debug", "state": "DRAIN"}]
}
# The same cluster as sinfo prints it (availability.sinfo_availability_argv's fields).
SINFO = """\
cpu01|cpu|up|mixed|2/6/0/8|16000|3072|(null)|gpu:0|
cpu02|cpu|up|idle+drain|0/8/0/8|16000|0|(null)|gpu:0|
gpu01|gpu|up|mixed|2/6/0/8|16000|4096|gpu:tesla:2|gpu:tesla:1(IDX:0)|
gpu01|debug|drain|mixed|2/6/0/8|16000|4096|gpu:tesla:2|gpu:tesla:1(IDX:0)|
"""


def test_nodes_and_partitions_count_as_sinfo_counts() -> None:
    from_rest = rest_api.availability(NODES, PARTITIONS)
    assert from_rest == parse_availability(SINFO)
    assert from_rest["cpu"].cores_idle == 6  # the drained node's cores do not count
    assert (from_rest["gpu"].gpus_free, from_rest["debug"].state) == (1, "drain")


def test_node_addresses() -> None:
    assert rest_api.parse_nodes(NODES)["gpu01"] == NodeInfo("gpu01", "vm", "127.0.0.3")
