"""A VM's user_data: the #cloud-config that starts the server as the person, and nothing secret in the clear."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from daas_core.identity import PosixIdentity
from daas_spawner.backends.openstack.cloud_init import (
    ENV_PATH,
    LAUNCHER_PATH,
    SERVICE,
    UNIT_PATH,
    BootInputs,
    environment_file,
    service_unit,
    systemd_word,
    user_data,
)

ALICE = PosixIdentity(uid=50001, gid=50001, groups=(50001, 60001, 60002))
MOUNTS = {
    "bootcmd": [["mkdir", "-p", "/data/proposals/20231234/raw"]],
    "mounts": [
        ["nfs.example.org:/data/raw", "/data/proposals/20231234/raw", "nfs", "ro,nosuid,nodev,noexec", "0", "0"]
    ],
}


def inputs(**changes) -> BootInputs:
    values = {
        "description": "alice/experiment-1",
        "python": "/opt/conda/bin/python3",
        "launcher": "print('the launcher')\n",
        "command": ["jupyterhub-singleuser", "--ServerApp.default_url=/lab"],
        "env": {"DAAS_BOOTSTRAP": "one-time", "JUPYTERHUB_API_URL": "https://hub.example.org/hub/api"},
        "identity": ALICE,
        "home": "/home/alice",
        "mounts": MOUNTS,
    }
    return BootInputs(**(values | changes))


def parsed(text: str) -> dict:
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_user_data_writes_the_launcher_its_environment_and_a_service_and_starts_it():
    config = parsed(user_data(inputs()))
    files = {entry["path"]: entry for entry in config["write_files"]}
    assert files[LAUNCHER_PATH]["content"] == "print('the launcher')\n"
    assert files[ENV_PATH]["permissions"] == "0600"  # systemd reads it as root; the person's code cannot
    assert files[ENV_PATH]["content"] == (
        'DAAS_BOOTSTRAP="one-time"\nJUPYTERHUB_API_URL="https://hub.example.org/hub/api"\n'
    )
    assert files[UNIT_PATH]["content"] == service_unit(inputs())
    assert config["runcmd"] == [
        ["install", "-d", "-o", "50001", "-g", "50001", "-m", "0700", "/home/alice"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "start", "--no-block", SERVICE],
    ]
    assert config["mounts"] == MOUNTS["mounts"]
    assert config["bootcmd"] == MOUNTS["bootcmd"]


def test_without_data_there_are_no_mounts():
    assert {"mounts", "bootcmd"}.isdisjoint(parsed(user_data(inputs(mounts={}))))


def test_the_service_runs_the_launcher_as_the_persons_numeric_ids():
    unit = service_unit(inputs())
    assert "User=50001\nGroup=50001\nSupplementaryGroups=60001 60002\n" in unit
    assert f"EnvironmentFile={ENV_PATH}\nWorkingDirectory=/home/alice\n" in unit
    assert (
        'ExecStart="/opt/conda/bin/python3" "-I" "/etc/daas/launcher.py" "jupyterhub-singleuser" '
        '"--ServerApp.default_url=/lab"\n'
    ) in unit


def test_without_supplementary_groups_the_line_is_left_out():
    unit = service_unit(inputs(identity=PosixIdentity(50001, 50001)))
    assert "SupplementaryGroups" not in unit


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("plain", '"plain"'),
        ("with space", '"with space"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("$HOME and ${USER}", '"$$HOME and $${USER}"'),  # systemd would expand them
        ("100%", '"100%%"'),  # and specifiers such as %h
    ],
)
def test_command_words_are_quoted_for_systemd(word, quoted):
    assert systemd_word(word) == quoted


@pytest.mark.parametrize("bad", ["two\nlines", "carriage\rreturn", "nul\x00byte"])
def test_line_breaks_never_reach_a_unit_or_environment_file(bad):
    with pytest.raises(ValueError, match="line break or NUL"):
        systemd_word(bad)
    with pytest.raises(ValueError, match="line break or NUL"):
        environment_file({"NAME": bad})
    with pytest.raises(ValueError, match="line break or NUL"):
        service_unit(inputs(home=f"/home/{bad}"))


def test_environment_values_are_quoted_with_systemds_escapes():
    text = environment_file({"B": 'a "quote", a \\, a $VAR and a `cmd`', "A": "plain"})
    assert text == 'A="plain"\nB="a \\"quote\\", a \\\\, a \\$VAR and a \\`cmd\\`"\n'


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", ""])
def test_environment_names_are_names(name):
    with pytest.raises(ValueError, match="not an environment variable name"):
        environment_file({name: "x"})


def test_user_data_larger_than_nova_takes_is_refused():
    with pytest.raises(ValueError, match="above Nova's limit"):
        user_data(inputs(launcher="x" * 60000))


def test_systemd_accepts_the_service(tmp_path):
    """systemd's own parser (offline) finds nothing wrong with the unit, quoting included."""
    unit = tmp_path / SERVICE
    text = service_unit(inputs(python="/usr/bin/python3", command=["jupyterhub-singleuser", '--x="$A 100%"']))
    unit.write_text(text.replace("WorkingDirectory=/home/alice", f"WorkingDirectory={tmp_path}"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace('"-I"', '"-I'))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0  # the check would see a quoting mistake
