"""What the Slurm backend tells a scientist while waiting and when a job ends early."""

from __future__ import annotations

import pytest

from daas_spawner.backends.slurm.backend import SlurmBackend, SlurmState
from daas_spawner.backends.slurm.commands import JobInfo
from daas_spawner.backends.slurm.queue import JobStatus, Phase

STATE = SlurmState(username="alice", job_id="42", log="/home/alice/jupyterhub-daas-42.log")


@pytest.mark.parametrize(
    "slurm_state, reason, words",
    [
        ("OUT_OF_MEMORY", "OutOfMemory", "ran out of memory"),
        ("TIMEOUT", "TimeLimit", "reached its time limit"),
        ("CANCELLED", "None", "was cancelled"),
        ("FAILED", "NonZeroExitCode", "failed [NonZeroExitCode]"),
        ("NODE_FAIL", "", "lost its node"),
        ("SPECIAL_EXIT", "", "ended (special_exit)"),
    ],
)
def test_ended_message(slurm_state, reason, words):
    status = JobStatus(Phase.ENDED, JobInfo("42", slurm_state, reason, "cpu01", "N/A"))
    message = SlurmBackend._ended_message(STATE, status)
    assert message.startswith(f"Slurm job 42 {words}")
    assert message.endswith("see the job log at /home/alice/jupyterhub-daas-42.log")


def test_ended_message_for_a_job_that_left_the_queue():
    assert "left the queue" in SlurmBackend._ended_message(STATE, JobStatus(Phase.ENDED))


@pytest.mark.parametrize(
    "status, text",
    [
        (
            JobStatus(Phase.PENDING, JobInfo("42", "PENDING", "Resources", "", "2026-11-22T05:00:00")),
            "Job 42 pending (reason: Resources), expected start 2026-11-22T05:00:00",
        ),
        (
            JobStatus(Phase.PENDING, JobInfo("42", "PENDING", "Priority", "", "N/A")),
            "Job 42 pending (reason: Priority)",
        ),
        (
            JobStatus(Phase.ACTIVE, JobInfo("42", "RUNNING", "None", "gpu01", "N/A")),
            "Job 42 running on gpu01; starting the server",
        ),
        (JobStatus(Phase.UNKNOWN), "Job 42 submitted; waiting for Slurm"),
    ],
)
def test_progress_description(status, text):
    assert SlurmBackend._describe("42", status) == text


@pytest.mark.parametrize(
    "slurm_state, words",
    [
        ("NODE_FAIL", "lost its node; your work since the last save is lost, start a new server"),
        ("CANCELLED", "was cancelled"),
        ("TIMEOUT", "reached its time limit"),
    ],
)
def test_a_running_server_that_ended_on_its_own_is_explained(slurm_state, words):
    status = JobStatus(Phase.ENDED, JobInfo("42", slurm_state, "None", "cpu01", "N/A"))
    message = SlurmBackend._ended_running_message(STATE, status)
    assert message == f"Your server's Slurm job 42 {words}; see the job log at /home/alice/jupyterhub-daas-42.log"
