"""Run a real JupyterHub (with configurable-http-proxy) for integration tests."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

VENV_BIN = Path(sys.executable).parent
CHP_DIRS = [Path(os.environ.get("DAAS_PREFIX", "/opt/jupyterhub-daas")) / "node/node_modules/.bin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until predicate returns something truthy; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def chp_command() -> str:
    for directory in CHP_DIRS:
        candidate = directory / "configurable-http-proxy"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise RuntimeError("configurable-http-proxy not found; run tests/setup.sh")
    return found


class Hub:
    """A JupyterHub process with a test admin service token; REST helpers for tests."""

    def __init__(self, workdir: Path, extra_config: str, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = env or {}
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
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=30)

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
            c.JupyterHub.db_url = "sqlite:///{self.workdir}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "{self.workdir}/cookie_secret"
            c.JupyterHub.cleanup_servers = False
            c.JupyterHub.allow_named_servers = True
            c.JupyterHub.named_server_limit_per_user = 20
            c.JupyterHub.authenticator_class = "dummy"
            c.DummyAuthenticator.password = "daas-test-password"
            c.Authenticator.allow_all = True
            c.JupyterHub.spawner_class = "daas"
            c.Spawner.cmd = ["jupyterhub-singleuser"]
            c.JupyterHub.services = [{{"name": "test-admin", "api_token": "{self.admin_token}"}}]
            c.JupyterHub.load_roles = [{{"name": "admin", "services": ["test-admin"]}}]
            c.JupyterHub.log_level = "DEBUG"
        """
        return textwrap.dedent(base) + textwrap.dedent(extra)

    # -- process -------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> Hub:
        env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", **self.env)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_path)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"hub exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                return self.http.get(f"{self.api_url}/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout, "the hub to answer")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- REST ----------------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return self.http.request(method, f"{self.api_url}{path}", headers=headers, **kwargs)

    def create_users(self, *names: str) -> None:
        for name in names:
            response = self.api("POST", f"/users/{name}")
            assert response.status_code in (201, 409), response.text

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

    def wait_stopped(self, name: str, server: str = "", timeout: float = 90) -> None:
        wait_for(lambda: self.server_model(name, server) is None, timeout, f"{name}/{server} to stop")

    def stop_server(self, name: str, server: str = "") -> None:
        response = self.api("DELETE", self.server_path(name, server))
        assert response.status_code in (202, 204), response.text
        self.wait_stopped(name, server)

    def job_id(self, name: str, server: str = "") -> str:
        model = self.server_model(name, server)
        assert model is not None, f"{name}/{server} has no server"
        return model["state"]["daas"]["server"]["job_id"]

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
