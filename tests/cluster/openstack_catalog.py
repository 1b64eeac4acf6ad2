"""Put the OpenStack test cloud's accounts and content in place through its APIs (tests/cluster/openstack.sh).

Run with the cloud's venv and OS_CLIENT_CONFIG_FILE=<cloud dir>/clouds.yaml; passwords come from the file named
by DAAS_OS_SECRETS (never from argv). Every step is idempotent: it creates only what is missing.

  identity   service users, the catalog's endpoints, projects `daas` and `other` with their users
  content    the public images and the flavors
  compute    wait until nova-compute is up and its node is a resource provider, then give the node a child
             provider with VGPU inventory (the GPU flavor asks for `resources:VGPU=1`)
  reset      delete every server of every project (waits until they are gone) and the projects' quota overrides
"""

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import openstack

REGION = "RegionOne"
DOMAIN = "default"
BASE = "http://127.0.0.1"
SERVICES = {  # name: (type, url)
    "nova": ("compute", f"{BASE}:8774/v2.1"),
    "placement": ("placement", f"{BASE}:8778"),
    "glance": ("image", f"{BASE}:9292"),
    "neutron": ("network", f"{BASE}:9696"),
}
SERVICE_USERS = ("nova", "placement", "glance")
PROJECT_USERS = {"daas": "daas-hub", "other": "other-user"}
IMAGES = ("daas-jupyter", "daas-desktop")
FLAVORS = {  # name: (vcpus, ram MB, disk GB, extra specs)
    "daas.small": (2, 4096, 20, {}),
    "daas.medium": (4, 16384, 40, {}),
    "daas.large": (16, 65536, 80, {}),
    "daas.gpu.a100": (8, 32768, 80, {"resources:VGPU": "1"}),
    "daas.huge": (4096, 4096, 20, {}),
}
GPU_PROVIDER_SUFFIX = "_pgpu0"
GPUS = 4
PLACEMENT = "1.20"  # nested providers (1.14) and creates that return the provider (1.20)
TIMEOUT = float(os.environ.get("DAAS_OS_TIMEOUT", "120"))


def secrets() -> dict[str, str]:
    lines = Path(os.environ["DAAS_OS_SECRETS"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def admin() -> openstack.connection.Connection:
    return openstack.connect(cloud="daas-admin")


def ensure_role(conn, name: str):
    return conn.identity.find_role(name) or conn.identity.create_role(name=name)


def ensure_project(conn, name: str, description: str):
    return conn.identity.find_project(name, domain_id=DOMAIN) or conn.identity.create_project(
        name=name, domain_id=DOMAIN, description=description
    )


def ensure_user(conn, name: str, password: str, project, roles) -> None:
    user = conn.identity.find_user(name, domain_id=DOMAIN) or conn.identity.create_user(
        name=name, password=password, domain_id=DOMAIN, default_project_id=project.id
    )
    for role in roles:
        conn.identity.assign_project_role_to_user(project, user, role)


def cmd_identity() -> None:
    conn, passwords = admin(), secrets()
    admin_role, member, service_role = (ensure_role(conn, name) for name in ("admin", "member", "service"))
    service = ensure_project(conn, "service", "OpenStack's own services")
    for name in SERVICE_USERS:
        ensure_user(conn, name, passwords[name], service, (admin_role, service_role))
    for name, (kind, url) in SERVICES.items():
        entry = conn.identity.find_service(name) or conn.identity.create_service(name=name, type=kind)
        have = {endpoint.interface for endpoint in conn.identity.endpoints(service_id=entry.id)}
        for interface in {"public", "internal", "admin"} - have:
            conn.identity.create_endpoint(service_id=entry.id, interface=interface, url=url, region_id=REGION)
    for project_name, user in PROJECT_USERS.items():
        project = ensure_project(conn, project_name, "jupyterhub-daas tests")
        ensure_user(conn, user, passwords[user], project, (member,))


def cmd_content() -> None:
    conn = admin()
    for name in IMAGES:
        if not conn.image.find_image(name):
            # A tiny raw disk: the fake compute driver boots nothing.
            conn.image.create_image(
                name=name, data=bytes(65536), disk_format="raw", container_format="bare", visibility="public"
            )
    for name, (vcpus, ram, disk, specs) in FLAVORS.items():
        flavor = conn.compute.find_flavor(name) or conn.compute.create_flavor(
            name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True
        )
        if specs:
            conn.compute.create_flavor_extra_specs(flavor, specs)


def compute_node(conn, since: datetime) -> str | None:
    """The compute node's name once its service is up (a heartbeat after `since`) and it is a resource provider."""
    for service in conn.compute.services(binary="nova-compute"):
        updated = datetime.fromisoformat(service.updated_at or "1970-01-01T00:00:00").replace(tzinfo=UTC)
        if service.state != "up" or updated < since:
            continue
        found = conn.placement.get(f"/resource_providers?name={service.host}", microversion=PLACEMENT).json()
        for provider in found["resource_providers"]:
            inventory = conn.placement.get(f"/resource_providers/{provider['uuid']}/inventories").json()
            if "VCPU" in inventory["inventories"]:
                return service.host
    return None


def cmd_compute() -> None:
    conn = admin()
    deadline = time.monotonic() + TIMEOUT
    # The compute process's start (openstack.sh), else a heartbeat of the last 20 s.
    since = float(os.environ.get("DAAS_OS_COMPUTE_SINCE") or time.time() - 20)
    while not (node := compute_node(conn, datetime.fromtimestamp(since, UTC))):
        if time.monotonic() > deadline:
            sys.exit(f"nova-compute did not come up within {TIMEOUT:.0f}s")
        time.sleep(1)
    root = conn.placement.get(f"/resource_providers?name={node}", microversion=PLACEMENT).json()
    root_uuid = root["resource_providers"][0]["uuid"]
    name = node + GPU_PROVIDER_SUFFIX
    found = conn.placement.get(f"/resource_providers?name={name}", microversion=PLACEMENT).json()
    if found["resource_providers"]:
        gpu = found["resource_providers"][0]
    else:
        body = {"name": name, "parent_provider_uuid": root_uuid}
        gpu = conn.placement.post("/resource_providers", json=body, microversion=PLACEMENT).json()
    inventory = conn.placement.get(f"/resource_providers/{gpu['uuid']}/inventories").json()
    if "VGPU" not in inventory["inventories"]:
        body = {
            "resource_provider_generation": inventory["resource_provider_generation"],
            "inventories": {"VGPU": {"total": GPUS, "max_unit": 1}},
        }
        conn.placement.put(f"/resource_providers/{gpu['uuid']}/inventories", json=body, microversion=PLACEMENT)
    print(node)


def cmd_reset() -> None:
    conn = admin()
    servers = list(conn.compute.servers(all_projects=True))
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=int(TIMEOUT))
    for project_name in PROJECT_USERS:
        project = conn.identity.find_project(project_name, domain_id=DOMAIN)
        if project:
            conn.compute.revert_quota_set(project.id)
    print(f"deleted {len(servers)} server(s)")


if __name__ == "__main__":
    commands = {"identity": cmd_identity, "content": cmd_content, "compute": cmd_compute, "reset": cmd_reset}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(commands)}")
    commands[sys.argv[1]]()
