"""A stand-in for Neutron's read API in the OpenStack test cloud (tests/cluster/openstack.sh).

A real Neutron needs MariaDB or PostgreSQL (its migrations do not run on SQLite) and its own RPC server. The
compute tests only need what Nova and openstacksdk read from it, so this answers those reads:

- `GET /` (version discovery) and `GET /v2.0/` and `GET /v2.0/extensions` (none),
- `GET /v2.0/networks`, `/v2.0/subnets`, `/v2.0/ports` (and `/<kind>/<id>`) with Neutron's query filters
  (`?device_id=a&device_id=b`, `fields=`), `/v2.0/floatingips` and `/v2.0/security-groups` (always empty).

There is one network `daas-test-net` with one subnet 127.0.0.0/8. Its ports are the files
`<ports dir>/<device_id>.json` (`{"ip_address": "127.0.5.1"}`, optionally `"project_id"`), which the tests'
boot agent writes when it "boots" a server: each is an ACTIVE port with that fixed IP, `device_id` and
`device_owner: compute:nova`. Without `project_id` in its file a port matches any project filter.
Nova deletes or unbinds a server's ports when it deletes the server: `DELETE /v2.0/ports/<id>` removes the
file, `PUT /v2.0/ports/<id>` answers the port unchanged. Everything else is 404.

Hence tests cannot cover: creating networks, ports, floating IPs or security groups, a server booted on a
network (the backend creates servers with `networks="none"`), projects' network isolation, quotas of
Neutron, or Keystone token checks (the X-Auth-Token header is accepted, never validated).

Every request is logged to stdout as `<time> <method> <path?query> <status>`.
"""

import argparse
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

NAMESPACE = uuid.UUID("6d1f3e0a-5b3c-4f43-9a52-daa5daa5daa5")
NETWORK_ID = str(uuid.uuid5(NAMESPACE, "daas-test-net"))
SUBNET_ID = str(uuid.uuid5(NAMESPACE, "daas-test-subnet"))
PROJECT_FILTERS = ("project_id", "tenant_id")
NOT_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "fixed_ips"}

NETWORK = {
    "id": NETWORK_ID,
    "name": "daas-test-net",
    "status": "ACTIVE",
    "admin_state_up": True,
    "shared": True,
    "router:external": False,
    "subnets": [SUBNET_ID],
    "mtu": 1500,
    "project_id": "",
    "tenant_id": "",
    "tags": [],
}
SUBNET = {
    "id": SUBNET_ID,
    "name": "daas-test-subnet",
    "network_id": NETWORK_ID,
    "ip_version": 4,
    "cidr": "127.0.0.0/8",
    "gateway_ip": None,
    "enable_dhcp": False,
    "dns_nameservers": [],
    "host_routes": [],
    "allocation_pools": [],
    "project_id": "",
    "tenant_id": "",
    "tags": [],
}


class Ports:
    """The ports the tests' boot agent wrote, read from disk at each request (the agent may change them)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def port_id(device_id: str) -> str:
        return str(uuid.uuid5(NAMESPACE, "port-" + device_id))

    def all(self) -> list[dict]:
        ports = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                spec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being written, or gone
            ports.append(self._port(path.stem, spec))
        return ports

    def delete(self, port_id: str) -> bool:
        for path in self.directory.glob("*.json"):
            if self.port_id(path.stem) == port_id:
                path.unlink(missing_ok=True)
                return True
        return False

    def _port(self, device_id: str, spec: dict) -> dict:
        project = spec.get("project_id", "")
        return {
            "id": self.port_id(device_id),
            "name": "",
            "network_id": NETWORK_ID,
            "device_id": device_id,
            "device_owner": "compute:nova",
            "status": "ACTIVE",
            "admin_state_up": True,
            "mac_address": "fa:16:3e:" + ":".join(f"{byte:02x}" for byte in uuid.uuid5(NAMESPACE, device_id).bytes[:3]),
            "fixed_ips": [{"subnet_id": SUBNET_ID, "ip_address": spec["ip_address"]}],
            "security_groups": [],
            "allowed_address_pairs": [],
            "extra_dhcp_opts": [],
            "binding:vif_type": "unbound",
            "binding:vnic_type": "normal",
            "binding:host_id": "",
            "binding:vif_details": {},
            "binding:profile": {},
            "port_security_enabled": False,
            "project_id": project,
            "tenant_id": project,
            "tags": [],
        }


def matches(item: dict, filters: dict[str, list[str]]) -> bool:
    """Neutron's list filters: each key must match one of its values (`?device_id=a&device_id=b`)."""
    for key, values in filters.items():
        if key in NOT_FILTERS:
            continue
        if key in PROJECT_FILTERS and not item.get(key):
            continue  # a port whose file names no project belongs to whichever project asks
        value = item.get(key)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text not in values:
            return False
    return True


def project(item: dict, fields: list[str]) -> dict:
    return {key: value for key, value in item.items() if key in fields} if fields else item


class Handler(BaseHTTPRequestHandler):
    ports: Ports
    base_url: str

    def collections(self) -> dict[str, tuple[str, list[dict]]]:
        return {
            "networks": ("network", [NETWORK]),
            "subnets": ("subnet", [SUBNET]),
            "ports": ("port", self.ports.all()),
            "floatingips": ("floatingip", []),
            "security-groups": ("security_group", []),
            "extensions": ("extension", []),
        }

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [part for part in url.path.split("/") if part]
        version = {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": self.base_url + "/v2.0/"}]}
        if not parts:
            return self.answer(200, {"versions": [version]})
        if parts[0] != "v2.0":
            return self.answer(404, {"NeutronError": {"message": "not found"}})
        if len(parts) == 1:
            return self.answer(200, {"resources": []})
        kind = parts[1].removesuffix(".json")
        if kind not in self.collections():
            return self.answer(404, {"NeutronError": {"message": f"{kind} not found"}})
        singular, items = self.collections()[kind]
        query = parse_qs(url.query)
        fields = query.get("fields", [])
        if len(parts) == 2:
            found = [project(item, fields) for item in items if matches(item, query)]
            return self.answer(200, {kind.replace("-", "_"): found})
        for item in items:
            if item["id"] == parts[2]:
                return self.answer(200, {singular: project(item, fields)})
        return self.answer(404, {"NeutronError": {"message": f"{singular} {parts[2]} not found"}})

    def do_PUT(self) -> None:
        """Nova unbinds a server's ports when it deletes the server: the port stays as it is."""
        parts = [part for part in urlsplit(self.path).path.split("/") if part]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if len(parts) == 3 and parts[:2] == ["v2.0", "ports"]:
            for port in self.ports.all():
                if port["id"] == parts[2]:
                    return self.answer(200, {"port": port})
        return self.answer(404, {"NeutronError": {"message": "not found"}})

    def do_DELETE(self) -> None:
        """Nova deletes a deleted server's ports: the port's file goes."""
        parts = [part for part in urlsplit(self.path).path.split("/") if part]
        if len(parts) == 3 and parts[:2] == ["v2.0", "ports"] and self.ports.delete(parts[2]):
            return self.answer(204, None)
        return self.answer(404, {"NeutronError": {"message": "not found"}})

    def answer(self, status: int, body: dict | None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        print(f"{stamp} {self.command} {self.path} {code}", flush=True)

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9696)
    parser.add_argument("--ports-dir", type=Path, required=True)
    args = parser.parse_args()
    args.ports_dir.mkdir(parents=True, exist_ok=True)
    Handler.ports = Ports(args.ports_dir)
    Handler.base_url = f"http://127.0.0.1:{args.port}"
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
