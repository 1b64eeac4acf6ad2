"""The OpenStack test cloud (tests/cluster/openstack.sh) as the tests see it: the admin's view of every
server, the VMs the boot agent booted (tests/cluster/openstack_vms.py), and nova-api's access log.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import openstack

from .process import wait_for

SCRIPT = Path(__file__).resolve().parents[1] / "cluster" / "openstack.sh"
DIR = Path(os.environ.get("DAAS_OS_DIR", "/var/tmp/daas-openstack"))
CLOUDS = DIR / "clouds.yaml"
VMS = Path(os.environ.get("DAAS_OS_VMS", "/var/tmp/daas-openstack-vms"))
NOVA_ACCESS_LOG = DIR / "log" / "nova-api-access.log"
_ACCESS = re.compile(r'^\[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d+)')


def cloud(*args: str) -> None:
    """Run tests/cluster/openstack.sh (start, reset, stop, ...)."""
    subprocess.run(["bash", str(SCRIPT), *args], check=True)


def service(name: str, action: str) -> None:
    """Stop or start one of the cloud's services (`openstack.sh service keystone stop`): a fault at a boundary."""
    cloud("service", name, action)


@dataclass(frozen=True)
class Request:
    at: float  # seconds since the epoch
    method: str
    path: str
    status: int


def nova_requests(since: float = 0.0) -> list[Request]:
    """nova-api's requests (its access log) from `since` on."""
    found = []
    for line in NOVA_ACCESS_LOG.read_text().splitlines():
        match = _ACCESS.match(line)
        if match is None:
            continue
        at = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z").timestamp()
        if at >= since:
            found.append(Request(at, match["method"], match["path"], int(match["status"])))
    return found


class Admin:
    """The cloud's admin: sees every project's servers, their user_data, and sets quotas."""

    def __init__(self) -> None:
        os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(CLOUDS))
        self.conn = openstack.connect(cloud="daas-admin")

    def _get(self, path: str) -> Any:
        response = self.conn.compute.get(path, microversion="2.61")
        response.raise_for_status()
        return response.json()

    def servers(self, tag: str | None = "daas") -> list[dict[str, Any]]:
        """Every project's servers (with `tag` only, unless None)."""
        query = "all_tenants=1" + (f"&tags={tag}" if tag else "")
        return self._get(f"/servers/detail?{query}")["servers"]

    def server(self, server_id: str) -> dict[str, Any] | None:
        response = self.conn.compute.get(f"/servers/{server_id}", microversion="2.61")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["server"]

    def user_data(self, server_id: str) -> str:
        server = self.server(server_id) or {}
        return base64.b64decode(server.get("OS-EXT-SRV-ATTR:user_data") or "").decode()

    def server_of(self, username: str, server: str = "") -> dict[str, Any]:
        name = f"{username}/{server}" if server else username
        found = [s for s in self.servers() if s["metadata"].get("daas-server") == name]
        assert len(found) == 1, f"{name} has {len(found)} VMs: {[s['id'] for s in found]}"
        return found[0]

    def delete(self, server_id: str) -> None:
        response = self.conn.compute.delete(f"/servers/{server_id}")
        assert response.status_code in (204, 404), response.text

    def create(self, body: dict[str, Any], cloud_name: str = "daas-hub") -> dict[str, Any]:
        """A server made outside the hub (as `cloud_name`), e.g. a tagged orphan."""
        conn = openstack.connect(cloud=cloud_name)
        response = conn.compute.post("/servers", json={"server": body}, microversion="2.52")
        assert response.status_code == 202, response.text
        return response.json()["server"]

    def project_id(self, name: str) -> str:
        return self.conn.identity.find_project(name).id

    def set_quota(self, project: str, **limits: int) -> None:
        response = self.conn.compute.put(
            f"/os-quota-sets/{self.project_id(project)}", json={"quota_set": limits}, microversion="2.61"
        )
        assert response.status_code == 200, response.text

    def image_id(self, name: str) -> str:
        return self.conn.image.find_image(name).id

    def flavor_id(self, name: str) -> str:
        return self.conn.compute.find_flavor(name).id

    def wait_gone(self, server_id: str, timeout: float = 60) -> None:
        wait_for(lambda: self.server(server_id) is None, timeout, f"server {server_id} to be gone")

    def wait_no_servers(self, timeout: float = 90) -> None:
        wait_for(lambda: not self.servers(tag=None), timeout, "the cloud to have no servers")


@dataclass(frozen=True)
class BootedVM:
    """What the boot agent did with a server: its address, its boot record and its server's log."""

    server_id: str

    @property
    def dir(self) -> Path:
        return VMS / self.server_id

    def boot(self) -> dict[str, Any]:
        return json.loads((self.dir / "boot.json").read_text())

    def address(self) -> str:
        return json.loads((DIR / "ports" / f"{self.server_id}.json").read_text())["ip_address"]

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def boot_error(self) -> str | None:
        path = self.dir / "boot-error.txt"
        return path.read_text() if path.exists() else None


def wait_booted(server_id: str, timeout: float = 60) -> BootedVM:
    vm = BootedVM(server_id)
    wait_for(lambda: (vm.dir / "boot.json").exists() or vm.boot_error(), timeout, f"VM {server_id} to boot")
    assert vm.boot_error() is None, vm.boot_error()
    return vm
