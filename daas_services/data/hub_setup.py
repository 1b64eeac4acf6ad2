"""The hub-side configuration of the data service, so a site writes it once and correctly.

from daas_services.data.hub_setup import data_service, data_service_roles
c.JupyterHub.services.append(data_service("/etc/jupyterhub/data.yaml"))
c.JupyterHub.load_roles += data_service_roles()
"""

from __future__ import annotations

import sys
from typing import Any

SERVICE_NAME = "daas-data"


def data_service(
    locations_file: str,
    url: str = "http://127.0.0.1:10101",
    user_prefix: str | None = None,
    name: str = SERVICE_NAME,
) -> dict[str, Any]:
    """A managed service entry for `c.JupyterHub.services` (the hub starts and stops it)."""
    command = [sys.executable, "-m", "daas_services.data", "--locations", locations_file]
    if user_prefix is not None:
        command += ["--user-prefix", user_prefix]
    return {"name": name, "url": url, "command": command, "oauth_no_confirm": True, "display": True}


def data_service_roles(name: str = SERVICE_NAME) -> list[dict[str, Any]]:
    """The service may read users' auth_state (their proposals); users and their servers may use it.

    The `user` and `server` roles keep JupyterHub's default scopes and gain access to this
    service only, so a notebook can call it with its own $JUPYTERHUB_API_TOKEN.
    """
    access = f"access:services!service={name}"
    return [
        {"name": f"{name}-service", "scopes": ["read:users", "admin:auth_state"], "services": [name]},
        {"name": "user", "scopes": ["self", access]},
        {"name": "server", "scopes": ["users:activity!user", "access:servers!server", access]},
    ]
