"""daas-data and daas-dask as traitlets applications: a config file, flags, --help-all, and bad values.

Each run is a fresh interpreter, as the hub starts a service: logging and the traitlets singletons stay
out of the test process. The account rules (`c.UserAccounts`) are shared with the hub's backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from daas_hub import dask_service, data_service
from daas_spawner.backends.local.backend import LocalBackend
from daas_spawner.backends.slurm.backend import SlurmBackend

REPO = Path(__file__).resolve().parents[2]
APPS = {"daas-data": "daas_services.data", "daas-dask": "daas_services.dask"}
PROBE = """
import json, sys
from {module}.app import {cls} as App
app = App()
app.initialize(sys.argv[1:])
values = {{name: getattr(app, name) for name in app.traits(config=True)}}
values |= {{"UserAccounts." + name: value for name, value in app.user_accounts.trait_values(config=True).items()}}
print(json.dumps(values, default=str))
"""


def settings(module: str, cls: str, argv: list[str]) -> dict[str, Any]:
    """The app's settings after it read `argv` (and the config file it names)."""
    probe = [sys.executable, "-c", PROBE.format(module=module, cls=cls), *argv]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run(module: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, timeout=60)


@pytest.fixture
def locations(tmp_path: Path) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text("locations:\n  - name: raw\n    path: /data/{proposal}/raw\n")
    return path


def test_the_data_service_reads_its_config_file_and_the_command_line_wins(tmp_path: Path, locations: Path) -> None:
    config = tmp_path / "daas_config.py"
    config.write_text(
        f"c.DataService.data_locations = {str(locations)!r}\n"
        'c.DataService.reader_memory = "300M"\n'
        "c.DataService.readers_per_person = 2\n"
        'c.DataService.preview_max_read_bytes = "64M"\n'
        "c.UserAccounts.min_uid = 2000\n"
        'c.UserAccounts.account_group = "facility-users"\n'
        'c.UserAccounts.user_prefix = ["sudo", "-u", "{username}", "--"]\n'
    )
    values = settings(
        "daas_services.data",
        "DataService",
        ["-f", str(config), "--DataService.readers_per_person=5", "--log-level=DEBUG", "--UserAccounts.max_uid=3000"],
    )
    assert values["data_locations"] == str(locations)
    assert values["reader_memory"] == 300 << 20
    assert values["preview_max_read_bytes"] == 64 << 20
    assert values["readers_per_person"] == 5  # the flag, over the file's 2
    assert (values["reader_timeout"], values["reader_cpu_time"], values["preview_max_bytes"]) == (60.0, 30, 1 << 20)
    assert values["log_level"] == 10
    assert values["UserAccounts.min_uid"] == 2000 and values["UserAccounts.max_uid"] == 3000
    assert values["UserAccounts.account_group"] == "facility-users"
    assert values["UserAccounts.user_prefix"] == ["sudo", "-u", "{username}", "--"]


def test_the_dask_service_reads_the_slurm_example(tmp_path: Path) -> None:
    limits = tmp_path / "dask.yaml"
    limits.write_text("")  # empty: the defaults
    example = REPO / "examples" / "slurm" / "daas_config.py"
    argv = ["--config", str(example), f"--limits={limits}", "--DaskService.scheduler_memory=2G"]
    values = settings("daas_services.dask", "DaskService", argv)
    assert values["limits_file"] == str(limits)  # the flag, over the example's /etc/jupyterhub/dask.yaml
    assert (values["interface"], values["scheduler_qos"]) == ("ib0", "dask-scheduler")
    assert values["db_url"] == "sqlite:////var/lib/daas-dask/clusters.sqlite" and values["records"] == ""
    assert values["scheduler_memory"] == 2 << 30 and values["scheduler_cores"] == 1
    assert values["python"] == sys.executable and values["stop_with_server"] is True
    assert values["log_level"] == 20  # INFO unless set
    assert values["UserAccounts.account_group"] == "facility-users"


def test_the_dask_service_takes_the_hosts_clients_reach_nodes_by(tmp_path: Path) -> None:
    limits = tmp_path / "dask.yaml"
    limits.write_text("")
    config = tmp_path / "daas_config.py"
    config.write_text(
        f"c.DaskService.limits_file = {str(limits)!r}\nc.DaskService.client_hosts = {{'node17': '10.1.0.17'}}\n"
    )
    values = settings("daas_services.dask", "DaskService", ["-f", str(config)])
    assert values["client_hosts"] == {"node17": "10.1.0.17"}
    assert settings("daas_services.dask", "DaskService", [f"--limits={limits}"])["client_hosts"] == {}
    config.write_text(
        f"c.DaskService.limits_file = {str(limits)!r}\nc.DaskService.client_hosts = {{'node17': 'x/y'}}\n"
    )
    done = run("daas_services.dask", ["-f", str(config)])
    assert done.returncode == 1
    assert "client_hosts: 'node17' -> 'x/y': both must be host names or addresses" in done.stderr, done.stderr


def test_the_dask_service_takes_a_database_url_and_for_one_release_the_old_records_path(tmp_path: Path) -> None:
    limits = tmp_path / "dask.yaml"
    limits.write_text("")
    url = "postgresql://daas:s3cret@db.example.org:5432/daas_dask"
    assert settings("daas_services.dask", "DaskService", [f"--limits={limits}", f"--db-url={url}"])["db_url"] == url
    config = tmp_path / "daas_config.py"
    old = f"c.DaskService.limits_file = {str(limits)!r}\nc.DaskService.records = {str(tmp_path / 'clusters.db')!r}\n"
    for extra, db_url, warning in (
        ("", f"sqlite:///{tmp_path}/clusters.db", "c.DaskService.records is deprecated: set c.DaskService.db_url"),
        (f"c.DaskService.db_url = {url!r}\n", url, "c.DaskService.records is deprecated and ignored"),
    ):
        config.write_text(old + extra)
        probe = [sys.executable, "-c", PROBE.format(module="daas_services.dask", cls="DaskService"), "-f", str(config)]
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["db_url"] == db_url
        assert warning in done.stderr and "s3cret" not in done.stderr, done.stderr
    for bad, message in (("postgres://db/x", "Can't load plugin: sqlalchemy.dialects:postgres"), ("a.db", "db_url")):
        done = run("daas_services.dask", [f"--limits={limits}", f"--db-url={bad}"])
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(("command", "module"), APPS.items())
def test_help_all_lists_every_setting_with_the_shared_account_rules(command: str, module: str) -> None:
    done = run(module, ["--help-all"])
    assert done.returncode == 0, done.stderr
    for option in ("min_uid", "max_uid", "account_group", "user_prefix"):
        assert f"--UserAccounts.{option}=" in done.stdout
    assert "--log-level=<Enum>" in done.stdout and "--config=<Unicode>" in done.stdout
    own = {
        "daas-data": ["--DataService.reader_memory=", "--locations="],
        "daas-dask": ["--DaskService.db_url=", "--db-url="],
    }
    assert all(option in done.stdout for option in own[command]), done.stdout
    assert "Default: 20" in done.stdout.split("--log-level=<Enum>")[1].split("Equivalent")[0]


@pytest.mark.parametrize(
    ("argv", "config", "message"),
    [
        (["--DataService.reader_memory=lots"], "", "reader_memory: memory 'lots' is not a size such as"),
        (["--DataService.readers_per_person=0"], "", "'readers_per_person' trait of a DataService instance"),
        (["--DataService.reader_timeout=0"], "", "reader_timeout must be more than 0 seconds"),
        ([], 'c.UserAccounts.min_uid = "2000s"', "'min_uid' trait of an UserAccounts instance expected an int"),
        ([], "c.DataService.data_locations = ''", "c.DataService.data_locations is not set: The data-locations YAML"),
        (["--locations=/no/such/data.yaml"], "", "/no/such/data.yaml: cannot read data locations file"),
    ],
)
def test_a_bad_setting_stops_the_service_saying_which(
    tmp_path: Path, locations: Path, argv: list[str], config: str, message: str
) -> None:
    file = tmp_path / "daas_config.py"
    file.write_text(f"c.DataService.data_locations = {str(locations)!r}\n{config}\n")
    done = run("daas_services.data", ["-f", str(file), *argv])
    assert done.returncode == 1
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_config_file_must_exist_and_be_python(tmp_path: Path, locations: Path) -> None:
    missing = run("daas_services.dask", ["-f", str(tmp_path / "nowhere.py")])
    assert missing.returncode == 1 and f"config file {tmp_path / 'nowhere.py'} does not exist" in missing.stderr
    yaml = run("daas_services.data", ["--config", str(locations)])
    assert yaml.returncode == 1 and "is not a Python config file" in yaml.stderr, yaml.stderr


def test_the_backends_take_the_account_rules_from_the_shared_section() -> None:
    config = Config()
    config.UserAccounts.min_uid = 2000
    config.UserAccounts.account_group = "facility-users"
    config.UserAccounts.user_prefix = ["sudo", "-n", "-u", "{username}", "-g", "facility", "--"]
    slurm, local = SlurmBackend(config=config), LocalBackend(config=config)
    assert (slurm.min_uid, slurm.account_group, local.min_uid) == (2000, "facility-users", 2000)
    assert slurm.user_prefix == ["sudo", "-n", "-u", "{username}", "-g", "facility", "--"]
    assert local.user_prefix == []  # its own: a local server needs sudo -E, and runs as the hub by default
    # c.Backend.* (as before the shared section) still overrides for the backends alone.
    config.Backend.min_uid = 1500
    config.SlurmBackend.user_prefix = ["sudo", "-u", "{username}", "--"]
    slurm = SlurmBackend(config=config)
    assert (slurm.min_uid, slurm.max_uid) == (1500, slurm.user_accounts.max_uid)
    assert slurm.user_prefix == ["sudo", "-u", "{username}", "--"]


def test_the_hub_runs_each_service_with_its_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    entry = data_service("daas_config.py", environment={"DAAS_DEMO_MODE": "local"})
    assert entry["command"] == [
        sys.executable,
        "-m",
        "daas_services.data",
        "--config",
        str(tmp_path / "daas_config.py"),
    ]
    assert entry["environment"] == {"DAAS_DEMO_MODE": "local"} and entry["url"] == "http://127.0.0.1:10101"
    assert dask_service("/etc/jupyterhub/daas_config.py")["command"][2:] == [
        "daas_services.dask",
        "--config",
        "/etc/jupyterhub/daas_config.py",
    ]
    with pytest.raises(ValueError, match=r"daas-dask: '/etc/jupyterhub/dask\.yaml' is not a Python config file"):
        dask_service("/etc/jupyterhub/dask.yaml")
