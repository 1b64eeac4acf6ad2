"""The built package as a site installs it: artifacts, entry points, commands and a hub from the example config.

Run by tests/package/check_install.sh, which builds the sdist and the wheel and installs the wheel into a fresh
venv ($DAAS_PKG_VENV). Everything here runs that venv's programs from a directory outside the checkout, so the
packages come from the wheel alone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tomllib

from tests.integration.hub import chp_command
from tests.integration.process import LoggedProcess, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ["DAAS_PKG_VENV"])
WHEEL = Path(os.environ["DAAS_PKG_WHEEL"])
SDIST = Path(os.environ["DAAS_PKG_SDIST"])
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
ARTIFACTS = Path("/tmp/daas-test-artifacts/package")
# What a site needs beside the packages, in the sdist; build outputs never.
SDIST_FOLDERS = ("tests", "profiles", "examples", "lab")
BUILD_OUTPUTS = ("__pycache__", "node_modules", ".pyc", "/lib/", "/labextension/", "/_build/", "/results/")


def venv_env(*path: Path, **variables: str) -> dict[str, str]:
    """The environment the fresh venv's programs run in: its bin (then `path`) first on PATH, no PYTHONPATH
    (nothing of the checkout) and no hub token of a surrounding hub."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "JUPYTERHUB_API_TOKEN")}
    env["PATH"] = ":".join([str(VENV / "bin"), *map(str, path), env.get("PATH", "/usr/bin:/bin")])
    return {**env, **variables}


def run(*argv: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A program of the fresh venv."""
    command = [str(arg) for arg in argv]
    return subprocess.run(
        command, cwd=cwd, env=venv_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def venv_python(code: str, cwd: Path) -> str:
    result = run(VENV / "bin/python", "-c", code, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def sdist_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist unpacked: the examples and profiles a site copies come from it, not from the checkout."""
    target = tmp_path_factory.mktemp("sdist")
    with tarfile.open(SDIST) as archive:
        # Debian 12's Python 3.11.2 predates extraction filters; the archive is the one just built.
        archive.extractall(target, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (root,) = target.iterdir()
    return root


def test_the_artifacts_carry_the_license_and_what_a_site_needs() -> None:
    version = PYPROJECT["version"]
    assert WHEEL.name == f"jupyterhub_daas-{version}-py3-none-any.whl"
    with zipfile.ZipFile(WHEEL) as wheel:
        names = wheel.namelist()
        license_text = wheel.read(f"jupyterhub_daas-{version}.dist-info/licenses/LICENSE").decode()
        metadata = wheel.read(f"jupyterhub_daas-{version}.dist-info/METADATA").decode()
    assert "BSD 3-Clause License" in license_text
    assert "License-Expression: BSD-3-Clause" in metadata
    assert not [name for name in names if any(part in name for part in BUILD_OUTPUTS)]
    assert {name.split("/")[0] for name in names} == {
        "daas_core",
        "daas_auth",
        "daas_spawner",
        "daas_services",
        "daas_hub",
        f"jupyterhub_daas-{version}.dist-info",
    }

    with tarfile.open(SDIST) as archive:
        members = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= set(members)
    folders = {name.split("/")[0] for name in members}
    expected = {*SDIST_FOLDERS, *(["docs"] if (REPO / "docs").is_dir() else [])}
    assert expected <= folders, f"missing from the sdist: {expected - folders}"
    assert "examples/slurm/jupyterhub_config.py" in members
    assert "profiles/facility.yaml" in members
    assert not [name for name in members if any(part in name for part in BUILD_OUTPUTS)]
    assert f"## {version} " in (REPO / "CHANGELOG.md").read_text(), "CHANGELOG.md has no entry for this version"


def test_the_packages_come_from_the_wheel(tmp_path: Path) -> None:
    files = json.loads(
        venv_python(
            "import json, daas_core, daas_auth, daas_spawner, daas_services, daas_hub;"
            "print(json.dumps([m.__file__ for m in (daas_core, daas_auth, daas_spawner, daas_services, daas_hub)]))",
            tmp_path,
        )
    )
    site_packages = str(VENV / "lib")
    assert all(path.startswith(site_packages) for path in files), files
    assert (
        venv_python("import importlib.metadata as m; print(m.version('jupyterhub-daas'))", tmp_path).strip()
        == (PYPROJECT["version"])
    )


def test_every_entry_point_loads(tmp_path: Path) -> None:
    """The names in pyproject's entry points, each loaded by the installed package: spawner, logins, backends."""
    expected = {group: sorted(points) for group, points in PYPROJECT["entry-points"].items()}
    code = (
        "import importlib.metadata as m, json\n"
        "from jupyterhub.auth import Authenticator\n"
        "from jupyterhub.spawner import Spawner\n"
        f"groups = {sorted(expected)!r}\n"
        "loaded = {}\n"
        "for group in groups:\n"
        "    loaded[group] = {}\n"
        "    for point in m.entry_points(group=group):\n"
        "        if point.dist.name != 'jupyterhub-daas':\n"
        "            continue\n"
        "        cls = point.load()\n"
        "        kind = 'spawner' if issubclass(cls, Spawner) else 'authenticator' if issubclass(cls, Authenticator) "
        "else 'other'\n"
        "        loaded[group][point.name] = [cls.__module__ + '.' + cls.__qualname__, kind]\n"
        "print(json.dumps(loaded))\n"
    )
    loaded = json.loads(venv_python(code, tmp_path))
    assert {group: sorted(points) for group, points in loaded.items()} == expected
    assert loaded["jupyterhub.spawners"]["daas"] == ["daas_spawner.spawner.DaaSSpawner", "spawner"]
    assert {kind for _, kind in loaded["jupyterhub.authenticators"].values()} == {"authenticator"}
    for name, (path, _) in loaded["daas_spawner.backends"].items():
        assert path.startswith(f"daas_spawner.backends.{name}."), path


@pytest.mark.parametrize("command", ["daas-data", "daas-dask", "daas-profiles"])
def test_each_command_answers_help(command: str, tmp_path: Path) -> None:
    assert command in PYPROJECT["scripts"]
    result = run(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert command in result.stdout


def test_jupyterhub_help_all_runs(tmp_path: Path) -> None:
    result = run("jupyterhub", "--help-all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--JupyterHub.spawner_class" in result.stdout
    # The installed spawner brings its backends' settings along (JupyterHub lists only its entry-point groups).
    assert "--SlurmBackend.transport" in result.stdout
    assert "--OpenStackBackend.cloud" in result.stdout


# -- a hub from the example site configuration ------------------------------------------------------------------


def site_directory(sdist: Path, site: Path) -> None:
    """What README's "Install into an existing hub" copies into /etc/jupyterhub, from the sdist."""
    site.mkdir()
    for source, name in [
        ("examples/slurm/jupyterhub_config.py", "jupyterhub_config.py"),
        ("examples/slurm/daas_config.py", "daas_config.py"),
        ("examples/keycloak/jupyterhub_config.py", "login_config.py"),
        ("profiles/facility.yaml", "profiles.yaml"),
        ("profiles/data.yaml", "data.yaml"),
        ("profiles/dask.yaml", "dask.yaml"),
    ]:
        shutil.copy(sdist / source, site / name)


class SiteHub:
    """`jupyterhub -f <site>/jupyterhub_config.py` of the fresh venv, on this machine's loopback and free ports."""

    def __init__(self, site: Path, state: Path) -> None:
        self.site, self.state = site, state
        self.port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The proxy from tests/setup.sh on PATH; what examples/keycloak/jupyterhub_config.py asks of the environment.
        self.env = venv_env(
            Path(chp_command()).parent,
            KEYCLOAK_CLIENT_SECRET=secrets.token_hex(16),
            JUPYTERHUB_CRYPT_KEY=secrets.token_hex(32),
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / "jupyterhub.log"
        self.log_path.unlink(missing_ok=True)
        self.process = LoggedProcess("the example site's hub", self.log_path)

    def command(self, *argv: str) -> list[str]:
        # The admin's token below belongs to an account that never logged in through Keycloak (no auth_state),
        # which oauthenticator refuses to refresh: refresh is off here (this test makes no logins).
        site = ["-f", str(self.site / "jupyterhub_config.py"), "--Authenticator.auth_refresh_age=0"]
        return [str(VENV / "bin/jupyterhub"), *argv, *site]

    def admin_token(self) -> str:
        """A token of the example's admin (c.KeycloakAuthenticator.admin_users), as an admin makes one."""
        result = subprocess.run(
            self.command("token", "jupyterhub-admin"),
            cwd=self.state,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        # The example binds the hub API for compute nodes and names the site's host: here, loopback.
        addresses = [
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--JupyterHub.hub_ip=127.0.0.1",
            f"--JupyterHub.hub_port={self.hub_port}",
            "--JupyterHub.hub_connect_ip=127.0.0.1",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.proxy_api_port}",
        ]
        self.process.start(self.command(*addresses), env=self.env, cwd=self.state)

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.process.wait_answering(up, 90)

    def stop(self) -> None:
        """SIGTERM: the hub stops its services and its proxy (as Hub.stop in the integration tests)."""
        self.process.stop(30)


@pytest.fixture(scope="module")
def site_hub(sdist_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteHub, str]]:
    root = tmp_path_factory.mktemp("site")
    site_directory(sdist_tree, root / "etc")
    (root / "state").mkdir()
    hub = SiteHub(root / "etc", root / "state")
    token = hub.admin_token()
    hub.start()
    try:
        yield hub, token
    finally:
        hub.stop()


def test_the_example_site_hub_loads_the_spawner_and_login(site_hub: tuple[SiteHub, str]) -> None:
    hub, token = site_hub
    headers = {"Authorization": f"token {token}"}
    info = httpx.get(f"{hub.url}/hub/api/info", headers=headers, timeout=10)
    assert info.status_code == 200, info.text
    assert info.json()["spawner"]["class"] == "daas_spawner.spawner.DaaSSpawner"
    assert info.json()["authenticator"]["class"] == "daas_auth.authenticator.KeycloakAuthenticator"
    # The login page offers the Keycloak login (the preset's login_service), not a password form.
    login = httpx.get(f"{hub.url}/hub/login", timeout=10)
    assert login.status_code == 200
    assert "/hub/oauth_login" in login.text
    # register_handlers() ran: the proposals endpoint answers, for the services only (their custom scope).
    proposals = httpx.get(f"{hub.url}/hub/api/daas/users/jupyterhub-admin/proposals", headers=headers, timeout=10)
    assert proposals.status_code == 403, proposals.text
    assert "custom:daas-proposals:read" in proposals.json()["message"]


@pytest.mark.parametrize(("service", "api"), [("daas-data", "api/mounts"), ("daas-dask", "api/clusters")])
def test_the_example_site_hub_runs_both_services(site_hub: tuple[SiteHub, str], service: str, api: str) -> None:
    hub, token = site_hub
    headers = {"Authorization": f"token {token}"}
    model = httpx.get(f"{hub.url}/hub/api/services/{service}", headers=headers, timeout=10)
    assert model.status_code == 200, model.text
    assert model.json()["pid"] > 0, model.json()
    url = f"{hub.url}/services/{service}/{api}"

    def answered() -> httpx.Response | None:
        response = httpx.get(url, timeout=10)
        return response if response.status_code != 503 else None  # the proxy's answer until the service listens

    anonymous = wait_for(answered, 60, f"{service} to answer through the proxy")
    assert anonymous.status_code == 403
    assert anonymous.json()["message"] == "a token with access to this service is required"
    # With the admin's token the service asks the hub who calls (its API URL and token from the hub).
    # For daas-data that includes reading the caller's proposals from the hub with the service's own role.
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, f"{response.status_code} {response.text}\n{hub.process.log_tail()}"
    assert response.headers["content-type"] == "application/json"
