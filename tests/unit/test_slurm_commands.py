"""Slurm argv and batch-script builders: exact argv, and a script bash reads exactly as meant."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from traitlets import TraitError

from daas_core.fields import account_for
from daas_core.mounts import Mount
from daas_spawner.backends.slurm.backend import SlurmBackend
from daas_spawner.backends.slurm.commands import (
    ACTIVE_STATES,
    PENDING_STATES,
    JobInfo,
    JobSpec,
    NodeInfo,
    batch_script,
    heredoc_launcher_source,
    jobs_with_comment,
    parse_job_id,
    parse_sinfo_nodes,
    parse_squeue,
    sbatch_argv,
    scancel_argv,
    server_exec_words,
    sinfo_nodes_argv,
    squeue_argv,
    squeue_comment_argv,
)
from daas_spawner.options import UserAccess, resolve_options
from daas_spawner.profiles import parse_profiles

from .conftest import site_profiles_raw

PREFIX = ["sudo", "-n", "-u", "alice", "--"]
SBATCH = "/usr/bin/sbatch"
HEAD = [
    *PREFIX,
    SBATCH,
    "--parsable",
    "--job-name=jupyterhub-daas",
    "--chdir=/home/alice",
    "--output=/home/alice/jupyterhub-daas-%j.log",
    "--nodes=1",
    "--ntasks=1",
    "--no-requeue",
]


def make_spec(
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    account: str | None = "proj-42",
    mounts: tuple[Mount, ...] = (),
):
    return JobSpec(
        username="alice",
        job_name="jupyterhub-daas",
        working_dir="/home/alice",
        output="/home/alice/jupyterhub-daas-%j.log",
        account=account,
        env={"JUPYTERHUB_API_TOKEN": "secret-token", **(env or {})},
        command=command or ["jupyterhub-singleuser"],
        mounts=mounts,
    )


def resolved(site, **raw):
    return resolve_options(raw, site, UserAccess())


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


# -- sbatch argv --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, tail",
    [
        (
            {"profile": "gpu"},
            ["--partition=gpu", "--cpus-per-task=2", "--mem=4096M", "--gres=gpu:tesla:1", "--time=2:00:00"],
        ),
        (
            {"profile": "gpu", "gpus": "2", "cores": "medium", "memory": "6G", "walltime": "8:00:00"},
            ["--partition=gpu", "--cpus-per-task=4", "--mem=6144M", "--gres=gpu:tesla:2", "--time=8:00:00"],
        ),
        (
            {"profile": "gpu", "gpus": "0"},
            ["--partition=gpu", "--cpus-per-task=2", "--mem=4096M", "--time=2:00:00"],
        ),
        (
            {"profile": "power9"},
            ["--partition=power9", "--cpus-per-task=1", "--mem=2048M", "--constraint=power9", "--time=1:00:00"],
        ),
        (
            {"profile": "cpu", "cores": "whole_node", "partition": "cpu-long", "walltime": "12:00:00"},
            ["--partition=cpu-long", "--exclusive", "--mem=0", "--time=12:00:00"],
        ),
    ],
)
def test_sbatch_argv(site, raw, tail):
    argv = sbatch_argv(PREFIX, SBATCH, resolved(site, **raw), make_spec())
    assert argv == [*HEAD, *tail, "--account=proj-42"]


def test_sbatch_argv_whole_node_has_no_per_task_request(site):
    argv = sbatch_argv(PREFIX, SBATCH, resolved(site, profile="cpu", cores="whole_node"), make_spec())
    assert not any(arg.startswith("--cpus-per-task") for arg in argv)
    assert [arg for arg in argv if arg.startswith("--mem")] == ["--mem=0"]


def test_sbatch_argv_admin_settings_and_untyped_gpus():
    raw = site_profiles_raw()
    gpu = raw["profiles"][1]
    gpu["slurm"] = {"qos": "interactive", "reservation": "beamtime", "extra_args": ["--comment=daas", "-Q"]}
    gpu["resources"]["gpus"]["types"] = []
    options = resolve_options({"profile": "gpu", "gpus": 2}, parse_profiles(raw, "t"), UserAccess())
    argv = sbatch_argv([], "sbatch", options, make_spec(account=None))
    assert argv[argv.index("--partition=gpu") :] == [
        "--partition=gpu",
        "--cpus-per-task=2",
        "--mem=4096M",
        "--gres=gpu:2",
        "--time=2:00:00",
        "--qos=interactive",
        "--reservation=beamtime",
        "--comment=daas",
        "-Q",
    ]
    assert argv[0] == "sbatch"


def test_other_argv():
    assert squeue_argv("/usr/bin/squeue", "jupyterhub-daas") == [
        "/usr/bin/squeue",
        "--noheader",
        "--states=all",
        "--name=jupyterhub-daas",
        "--format=%i|%T|%r|%N|%S",
    ]
    assert sinfo_nodes_argv("sinfo") == ["sinfo", "--noheader", "--Node", "--format=%N|%n|%o"]
    assert scancel_argv(PREFIX, "/usr/bin/scancel", "123") == [*PREFIX, "/usr/bin/scancel", "123"]


# -- batch script -------------------------------------------------------------------------


def _export_section(script: str) -> str:
    """The script up to (not including) the launcher here-document."""
    lines = script.splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if line.startswith("IFS= read"))
    return "".join(lines[:end])


def _sbatch_directive_region(script: str) -> list[str]:
    """The lines sbatch scans for #SBATCH: up to the first line that is not blank or a comment."""
    region = []
    for line in script.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        region.append(line)
    return region


@pytest.mark.parametrize("environment", ["daas", "mods", "box"])
def test_batch_script_shape(site, environment):
    script = batch_script(resolved(site, profile="cpu", environment=environment), make_spec())
    first = "#!/bin/bash -l" if environment == "mods" else "#!/bin/bash"
    assert script.splitlines()[0] == first
    assert script.endswith("\n")
    assert not any(line.lstrip().startswith("#SBATCH") for line in script.splitlines())
    assert script.splitlines()[2] == "set -eu"
    assert _sbatch_directive_region(script) == script.splitlines()[:2]  # shebang and a comment only
    assert script.splitlines()[-1].startswith("exec ")


def test_batch_script_is_valid_bash(site, tmp_path):
    script = batch_script(resolved(site, profile="cpu", environment="box"), make_spec(env=_hostile(tmp_path)))
    path = tmp_path / "job.sh"
    path.write_text(script)
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def _hostile(tmp_path: Path) -> dict[str, str]:
    pwned = tmp_path / "pwned"
    return {
        "DAAS_QUOTE": f"x'; touch {pwned}; echo '",
        "DAAS_DIRECTIVE": f"1 #SBATCH --uid=0 && touch {pwned}",
        "DAAS_SUBST": f'$(touch {pwned})`touch {pwned}`${{HOME}}\\"\'" *',
        "DAAS_EOF": "DAAS_LAUNCHER_EOF; exec id",
        "DAAS_EMPTY": "",
    }


@pytest.mark.parametrize("value", ["1\n#SBATCH --uid=0", "a\rb", "DAAS_LAUNCHER_EOF\nexec id", "x\x00", "\x1b[2J"])
def test_control_characters_in_env_values_are_refused(site, value):
    with pytest.raises(ValueError, match="control characters"):
        batch_script(resolved(site, profile="cpu"), make_spec(env={"DAAS_X": value}))


def test_hostile_env_values_round_trip_and_run_nothing(site, tmp_path):
    env = _hostile(tmp_path)
    script = batch_script(resolved(site, profile="cpu", environment="daas"), make_spec(env=env))
    exports = _export_section(script)
    (tmp_path / "out").mkdir()
    printing = "".join(f'printf %s "${name}" > out/{name}\n' for name in env)
    result = run_bash(exports + printing, tmp_path)
    assert result.returncode == 0, result.stderr
    for name, value in env.items():
        assert (tmp_path / "out" / name).read_text() == value, name
    assert not (tmp_path / "pwned").exists()
    # sbatch reads #SBATCH only before the first command; a value's line never lands there.
    assert not any("#SBATCH" in line for line in _sbatch_directive_region(script))


@pytest.mark.parametrize("name", ["BAD-NAME", "1X", "A B", "X\n", "X=Y", "", "X;id", "$(id)"])
def test_batch_script_refuses_bad_env_names(site, name):
    with pytest.raises(ValueError, match="environment variable name"):
        batch_script(resolved(site, profile="cpu"), make_spec(env={name: "x"}))


def test_batch_script_modules_line(site):
    script = batch_script(resolved(site, profile="cpu", environment="mods"), make_spec())
    assert "module load python/3.11 cuda/12.2" in script.splitlines()
    assert "export PATH" not in script


def test_batch_script_path_prefix(site, tmp_path):
    script = batch_script(resolved(site, profile="cpu", environment="daas"), make_spec())
    assert "module load" not in script
    result = run_bash(_export_section(script) + 'printf %s "$PATH"\n', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("/opt/daas/venv/bin:")
    assert result.stdout != "/opt/daas/venv/bin:"  # the old PATH follows


@pytest.mark.parametrize("hostile_env", [False, True])
def test_launcher_here_document_is_intact(site, tmp_path, hostile_env):
    env = _hostile(tmp_path) if hostile_env else {}
    script = batch_script(resolved(site, profile="gpu"), make_spec(env=env))
    lines = script.splitlines()
    assert lines[-1].startswith("exec ")
    target = tmp_path / "launcher.out"
    runnable = "\n".join([*lines[:-1], f'printf %s "$DAAS_LAUNCHER" > {shlex.quote(str(target))}']) + "\n"
    result = run_bash(runnable, tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.read_text().rstrip("\n") == heredoc_launcher_source().rstrip("\n")
    assert not (tmp_path / "pwned").exists()


def test_launcher_source_is_the_package_launcher():
    source = heredoc_launcher_source()
    assert "def main(" in source
    assert "DAAS_LAUNCHER_EOF" not in source


def _exec_argv(script: str, tmp_path: Path) -> list[str]:
    """The words bash gives the final exec line, with DAAS_LAUNCHER set to a marker."""
    last = script.splitlines()[-1]
    assert last.startswith("exec ")
    result = run_bash("DAAS_LAUNCHER=LAUNCHER\nprintf '%s\\0' " + last.removeprefix("exec ") + "\n", tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\0")[:-1]


def test_exec_line_plain(site, tmp_path):
    command = ["jupyterhub-singleuser", "--debug", "--x=$(touch pwned)", "a b", "'"]
    script = batch_script(resolved(site, profile="cpu", environment="daas"), make_spec(command=command))
    assert _exec_argv(script, tmp_path) == ["python3", "-c", "LAUNCHER", *command]
    assert not (tmp_path / "pwned").exists()


def test_exec_line_apptainer(site, tmp_path):
    options = resolved(site, profile="cpu", environment="box")
    assert server_exec_words(options, ["jupyterhub-singleuser"]) == [
        "apptainer",
        "exec",
        "--nv",
        "--bind=/data",
        "'/images/lab image.sif'",
        "python3",
        "-c",
        '"$DAAS_LAUNCHER"',
        "jupyterhub-singleuser",
    ]
    script = batch_script(options, make_spec(command=["jupyterhub-singleuser", "--debug"]))
    assert _exec_argv(script, tmp_path) == [
        "apptainer",
        "exec",
        "--nv",
        "--bind=/data",
        "/images/lab image.sif",
        "python3",
        "-c",
        "LAUNCHER",
        "jupyterhub-singleuser",
        "--debug",
    ]


# -- parsing scheduler output -------------------------------------------------------------


@pytest.mark.parametrize(
    "stdout, job_id",
    [("123", "123"), ("123\n", "123"), ("123;cluster", "123"), ("4567;site-a.b\n", "4567"), ("warn\n89\n", "89")],
)
def test_parse_job_id(stdout, job_id):
    assert parse_job_id(stdout) == job_id


@pytest.mark.parametrize(
    "stdout",
    ["", "\n", "abc", "123abc", "-1", "12 3", "123;", "123;a b", "123;x;y", "Submitted batch job 123", "123\nerror"],
)
def test_parse_job_id_rejects(stdout):
    with pytest.raises(ValueError, match="unexpected sbatch output"):
        parse_job_id(stdout)


SQUEUE = """\
101|RUNNING|None|node01|2024-05-01T10:00:00
102|PENDING|Resources||2024-05-01T12:30:00
103|COMPLETING|None|node02|2024-05-01T09:00:00
104|CANCELLED by 0|None|node03|2024-05-01T08:00:00
  105|PENDING|Priority||N/A\t

JOBID|STATE|REASON|NODELIST|START_TIME
squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation
106|RUNNING|None|node01
107_1|RUNNING|None|node01|2024-05-01T10:00:00
108||None|node01|N/A
109|RUNNING|None|node|01|2024
|RUNNING|None|node01|N/A
"""


def test_parse_squeue():
    assert parse_squeue(SQUEUE) == {
        "101": JobInfo("101", "RUNNING", "None", "node01", "2024-05-01T10:00:00"),
        "102": JobInfo("102", "PENDING", "Resources", "", "2024-05-01T12:30:00"),
        "103": JobInfo("103", "COMPLETING", "None", "node02", "2024-05-01T09:00:00"),
        "104": JobInfo("104", "CANCELLED", "None", "node03", "2024-05-01T08:00:00"),
        "105": JobInfo("105", "PENDING", "Priority", "", "N/A"),
    }


@pytest.mark.parametrize("text", ["", "\n\n", "garbage", "squeue: error: Invalid user"])
def test_parse_squeue_nothing(text):
    assert parse_squeue(text) == {}


@pytest.mark.parametrize(
    "state, pending, active, ended",
    [
        ("PENDING", True, False, False),
        ("CONFIGURING", True, False, False),
        ("REQUEUED", True, False, False),
        ("RUNNING", False, True, False),
        ("SUSPENDED", False, True, False),
        ("COMPLETING", False, False, True),
        ("COMPLETED", False, False, True),
        ("CANCELLED", False, False, True),
        ("FAILED", False, False, True),
        ("TIMEOUT", False, False, True),
        ("OUT_OF_MEMORY", False, False, True),
        ("NODE_FAIL", False, False, True),
        ("PREEMPTED", False, False, True),
        ("SOMETHING_NEW", False, False, True),
    ],
)
def test_job_info_phase(state, pending, active, ended):
    info = JobInfo("1", state, "None", "", "N/A")
    assert (info.pending, info.active, info.ended) == (pending, active, ended)


def test_state_sets_are_disjoint():
    assert not PENDING_STATES & ACTIVE_STATES


def test_parse_sinfo_nodes():
    text = """\
node01|node01|10.0.0.1
node01|node01|10.0.0.1
node02|node02.cluster|10.0.0.2
|nohost|10.0.0.9
node03|node03
sinfo: error: something
"""
    assert parse_sinfo_nodes(text) == {
        "node01": NodeInfo("node01", "node01", "10.0.0.1"),
        "node02": NodeInfo("node02", "node02.cluster", "10.0.0.2"),
    }


def test_exec_line_apptainer_binds_the_data_at_the_same_paths(site, tmp_path):
    mounts = (
        Mount("20231234", "raw", "/data/visitor/20231234/id11/raw", writable=False),
        Mount("20231234", "processed", "/data/visitor/20231234/processed", writable=True),
    )
    options = resolved(site, profile="cpu", environment="box")
    script = batch_script(options, make_spec(command=["jupyterhub-singleuser"], mounts=mounts))
    assert _exec_argv(script, tmp_path)[:6] == [
        "apptainer",
        "exec",
        "--nv",
        "--bind=/data",
        "--bind=/data/visitor/20231234/id11/raw:/data/visitor/20231234/id11/raw:ro",
        "--bind=/data/visitor/20231234/processed:/data/visitor/20231234/processed:rw",
    ]
    plain = batch_script(resolved(site, profile="cpu", environment="daas"), make_spec(mounts=mounts))
    assert "--bind" not in plain.splitlines()[-1]


def test_a_cut_off_submission_is_found_by_its_comment():
    assert squeue_comment_argv("/usr/bin/squeue", "jupyterhub-daas") == [
        "/usr/bin/squeue",
        "--noheader",
        "--name=jupyterhub-daas",
        "--format=%i|%k",
    ]
    listed = "41|jupyterhub-daas-aa\n42|jupyterhub-daas-bb\n43|(null)\n44|a|jupyterhub-daas-bb\nnoise\n"
    assert jobs_with_comment(listed, "jupyterhub-daas-bb") == ["42"]
    assert jobs_with_comment("", "jupyterhub-daas-bb") == []


@pytest.mark.parametrize("template", ["p {proposal}", "{proposal};id", "acct\n#SBATCH --uid=0", "x" * 101])
def test_the_backends_account_template_takes_only_an_account(template: str) -> None:
    with pytest.raises(TraitError, match="account_template"):
        SlurmBackend(account_template=template)


@pytest.mark.parametrize("template, proposal", [("p{proposal}", "20231234"), ("", "20231234"), ("facility", "")])
def test_an_account_template_that_is_an_account_is_kept(template: str, proposal: str) -> None:
    assert SlurmBackend(account_template=template).account_template == template
    if template:
        assert account_for(template, proposal) == template.replace("{proposal}", proposal)
