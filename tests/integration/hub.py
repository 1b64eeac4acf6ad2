"""Run a real JupyterHub (with configurable-http-proxy) for integration tests."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .process import LoggedProcess, free_port, wait_for

VENV_BIN = Path(sys.executable).parent
CHP_DIRS = [Path(os.environ.get("DAAS_PREFIX", "/opt/jupyterhub-daas")) / "node/node_modules/.bin"]


def chp_command() -> str:
    for directory in CHP_DIRS:
        candidate = directory / "configurable-http-proxy"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise RuntimeError("configurable-http-proxy not found; run tests/setup.sh")
    return found


PASSWORD = "daas-test-password"  # the DummyAuthenticator's, for every test user


class Hub:
    """A JupyterHub process with a test admin service token; REST helpers for tests.

    `user`: the Unix account the hub (and so its proxy) runs as, owning the workdir and all in it,
    as a site runs an unprivileged hub; None: as the tests (root).
    `db_url`: the hub's database (e.g. a PostgreSQL one of tests/postgres.py); None: SQLite in the workdir.
    """

    # The DaaS spawner with its hub endpoints and pages; a hub of another spawner (a benchmark's peer) has none.
    spawner_config: tuple[str, ...] = (
        'c.JupyterHub.spawner_class = "daas"',
        "from daas_hub import TEMPLATES, register_handlers",
        "register_handlers()",
        "c.JupyterHub.template_paths = [TEMPLATES]",
    )

    def __init__(
        self,
        workdir: Path,
        extra_config: str,
        env: dict[str, str] | None = None,
        user: str | None = None,
        db_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.db_url = db_url or f"sqlite:///{workdir}/jupyterhub.sqlite"
        self.env = env or {}
        self.user = user
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o755)
        self.port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.admin_token = secrets.token_hex(16)
        self.proxy_token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/hub/api"
        self.log_path = workdir / "jupyterhub.log"
        self.config_path = workdir / "jupyterhub_config.py"
        self.config_path.write_text(self._config(extra_config))
        if user is not None:
            self.log_path.touch()  # LoggedProcess appends to it from the tests' side
            account = pwd.getpwnam(user)
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        self.process = LoggedProcess("the hub", self.log_path)
        self.http = httpx.Client(timeout=30)

    def _spawner_lines(self) -> str:
        return "\n            ".join(self.spawner_config)  # indented like the template around it

    def _config(self, extra: str) -> str:
        base = f"""
            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {self.port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {self.hub_port}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
            c.ConfigurableHTTPProxy.auth_token = "{self.proxy_token}"
            c.ConfigurableHTTPProxy.command = ["{chp_command()}"]
            c.JupyterHub.db_url = "{self.db_url}"
            c.JupyterHub.cookie_secret_file = "{self.workdir}/cookie_secret"
            c.JupyterHub.cleanup_servers = False
            c.JupyterHub.allow_named_servers = True
            c.JupyterHub.named_server_limit_per_user = 20
            c.JupyterHub.authenticator_class = "dummy"
            c.DummyAuthenticator.password = "{PASSWORD}"
            c.Authenticator.allow_all = True
            {self._spawner_lines()}
            c.Spawner.cmd = ["jupyterhub-singleuser"]
            c.JupyterHub.services = [{{"name": "test-admin", "api_token": "{self.admin_token}"}}]
            c.JupyterHub.load_roles = [{{"name": "admin", "services": ["test-admin"]}}]
            c.JupyterHub.log_level = "DEBUG"
        """
        return textwrap.dedent(base) + textwrap.dedent(extra)

    # -- process -------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> Hub:
        env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", **self.env)
        argv = [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)]
        if self.user is not None:
            # setpriv execs: the process the tests hold (and signal) is the hub itself, not a wrapper.
            argv = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups", "--", *argv]
            env.update(HOME=str(self.workdir), USER=self.user, LOGNAME=self.user)
        self.process.start(argv, env=env, cwd=self.workdir)

        def up() -> bool:
            try:
                return self.http.get(f"{self.api_url}/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.process.wait_answering(up, timeout)
        return self

    def stop(self) -> None:
        self.process.stop(30)

    @property
    def pid(self) -> int:
        """The running hub's process id (the jupyterhub process itself)."""
        assert self.process.process is not None, "the hub is not running"
        return self.process.process.pid

    @property
    def proxy_pid(self) -> int:
        """The pid of the proxy the hub started (JupyterHub writes it into its working directory)."""
        return int((self.workdir / "jupyterhub-proxy.pid").read_text())

    def kill(self) -> None:
        """SIGKILL the hub (its proxy keeps running, as after a crash)."""
        self.process.kill()

    def log_tail(self, lines: int = 60) -> str:
        return self.process.log_tail(lines)

    @contextmanager
    def logged_in(self, username: str) -> Iterator[httpx.Client]:
        """A browser-like client (cookies, redirects) logged in as `username`."""
        with httpx.Client(base_url=self.url, follow_redirects=True, timeout=30) as client:
            client.get("/hub/login")
            login = {"username": username, "password": PASSWORD, "_xsrf": client.cookies.get("_xsrf")}
            response = client.post("/hub/login", data=login)
            assert response.status_code == 200, response.text
            yield client

    # -- REST ----------------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return self.http.request(method, f"{self.api_url}{path}", headers=headers, **kwargs)

    def create_users(self, *names: str) -> None:
        for name in names:
            response = self.api("POST", f"/users/{name}")
            assert response.status_code in (201, 409), response.text

    def create_users_with_proposals(self, proposals: dict[str, list[dict[str, Any]]]) -> None:
        """Users whose auth_state holds these proposals, as the authenticator stores them at login."""
        self.create_users(*proposals)
        for name, theirs in proposals.items():
            response = self.api("PATCH", f"/users/{name}", json={"auth_state": {"proposals": theirs}})
            assert response.status_code == 200, response.text

    def user_model(self, name: str) -> dict[str, Any]:
        response = self.api("GET", f"/users/{name}")
        response.raise_for_status()
        return response.json()

    def server_model(self, name: str, server: str = "") -> dict[str, Any] | None:
        return self.user_model(name)["servers"].get(server)

    @staticmethod
    def server_path(name: str, server: str) -> str:
        return f"/users/{name}/servers/{server}" if server else f"/users/{name}/server"

    def spawn(self, name: str, options: Any, server: str = "") -> httpx.Response:
        body = options if isinstance(options, (bytes, str)) else json.dumps(options)
        return self.api("POST", self.server_path(name, server), content=body)

    def wait_ready(self, name: str, server: str = "", timeout: float = 180) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            model = self.server_model(name, server)
            if model is None:
                raise AssertionError(f"{name}/{server} vanished while starting:\n{self.log_tail()}")
            return model if model["ready"] else None

        return wait_for(ready, timeout, f"{name}/{server} to be ready")

    def progress(self, name: str, server: str = "", timeout: float = 180) -> list[dict[str, Any]]:
        """The spawn progress events the person's page shows, read until the start ends (start it first)."""
        events: list[dict[str, Any]] = []
        path = f"{self.api_url}{self.server_path(name, server)}/progress"
        headers = {"Authorization": f"token {self.admin_token}"}
        with self.http.stream("GET", path, headers=headers, timeout=timeout) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line.removeprefix("data:")))
                    if events[-1].get("ready") or events[-1].get("failed"):
                        break
        return events

    def wait_stopped(self, name: str, server: str = "", timeout: float = 90) -> None:
        wait_for(lambda: self.server_model(name, server) is None, timeout, f"{name}/{server} to stop")

    def stop_server(self, name: str, server: str = "") -> None:
        response = self.api("DELETE", self.server_path(name, server))
        assert response.status_code in (202, 204), response.text
        self.wait_stopped(name, server)

    def stop_all_servers(self, names: Iterable[str]) -> None:
        """Stop every server (default and named) of these users, each until it is gone."""
        for name in names:
            for server in list(self.user_model(name)["servers"]):
                self.stop_server(name, server)

    def job_id(self, name: str, server: str = "") -> str:
        model = self.server_model(name, server)
        assert model is not None, f"{name}/{server} has no server"
        return model["state"]["daas"]["state"]["job_id"]

    def routes(self) -> dict[str, Any]:
        """The proxy's routing table, keyed like the hub's routespecs (CHP drops the trailing slash)."""
        response = self.http.get(
            f"http://127.0.0.1:{self.proxy_api_port}/api/routes",
            headers={"Authorization": f"token {self.proxy_token}"},
        )
        response.raise_for_status()
        return {key.rstrip("/") + "/": route for key, route in response.json().items()}

    def token_for(self, name: str, scopes: list[str]) -> str:
        response = self.api("POST", f"/users/{name}/tokens", json={"scopes": scopes, "note": "test"})
        assert response.status_code == 201, response.text
        return response.json()["token"]
