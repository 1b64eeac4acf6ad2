"""The compute API's description of a server the hub creates: pure builders, tested without a cloud.

Everything here is visible to anyone in the project (`servers list` shows names, tags and
metadata): it names the hub, the owner, the start and the end of the server's lifetime, and
never holds a token. Only user_data (cloud_init.py) carries the one-time bootstrap secret.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .profile import OpenStackSettings

# Metadata keys of the hub (a profile's own metadata may not start with "daas").
HUB = "daas-hub"
USER = "daas-user"
SERVER = "daas-server"
START = "daas-start"
EXPIRES = "daas-expires"  # ISO 8601 UTC: the reconciliation deletes the server after it
PROFILE = "daas-profile"
METADATA_VALUE_MAX = 255
NAME_MAX = 63  # a host name label: Nova makes the VM's host name from it


def server_name(username: str, server: str) -> str:
    """`daas-<user>[-<server>]`, lower case letters, digits and '-' (what a host name may be)."""
    readable = re.sub(r"[^a-z0-9-]+", "-", f"daas-{username}-{server.partition('/')[2]}".lower()).strip("-")
    return readable[:NAME_MAX].rstrip("-")


def expiry(seconds_since_epoch: float) -> str:
    return datetime.fromtimestamp(seconds_since_epoch, tz=timezone.utc).isoformat(timespec="seconds")


def expires_at(metadata: dict[str, Any]) -> float | None:
    """When a server's lifetime ends, from its metadata; None when it has no (readable) end."""
    try:
        return datetime.fromisoformat(str(metadata[EXPIRES])).timestamp()
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class ServerInputs:
    """One server to create, with its image and flavor already resolved to the cloud's ids."""

    name: str
    hub_tag: str
    username: str
    server: str  # the hub's name for it, e.g. "alice/experiment-1"
    profile: str
    start_id: str
    expires_at: float  # seconds since the epoch
    image_id: str
    flavor_id: str
    settings: OpenStackSettings
    user_data: str


def server_body(inputs: ServerInputs) -> dict[str, Any]:
    """The body of `POST /servers` (compute API 2.52 or later: tags, networks "auto"/"none")."""
    settings = inputs.settings
    metadata = {
        **settings.metadata,
        HUB: inputs.hub_tag,
        USER: inputs.username[:METADATA_VALUE_MAX],
        SERVER: inputs.server[:METADATA_VALUE_MAX],
        PROFILE: inputs.profile,
        START: inputs.start_id,
        EXPIRES: expiry(inputs.expires_at),
    }
    body: dict[str, Any] = {
        "name": inputs.name,
        "imageRef": inputs.image_id,
        "flavorRef": inputs.flavor_id,
        "networks": settings.network if settings.network in ("auto", "none") else [{"uuid": settings.network}],
        "metadata": metadata,
        "tags": [inputs.hub_tag],
        "user_data": base64.b64encode(inputs.user_data.encode()).decode(),
        "description": f"JupyterHub server {inputs.server[:200]} (jupyterhub-daas)",
    }
    if settings.security_groups:
        body["security_groups"] = [{"name": name} for name in settings.security_groups]
    if settings.availability_zone:
        body["availability_zone"] = settings.availability_zone
    return body
