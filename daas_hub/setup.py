"""The hub-side configuration of the DaaS suite, so a site writes it once and correctly.

from daas_hub import custom_scopes, data_service, dask_service, register_handlers, service_roles
register_handlers()
c.JupyterHub.services += [data_service("/etc/jupyterhub/data.yaml"), dask_service("/etc/jupyterhub/dask.yaml")]
c.JupyterHub.custom_scopes.update(custom_scopes())
c.JupyterHub.load_roles += service_roles("daas-data", "daas-dask")
"""

from __future__ import annotations

import sys
from typing import Any

from jupyterhub import apihandlers

from daas_auth import hub_api
from daas_spawner import hub_handlers


def register_handlers() -> None:
    """Add the suite's endpoints to the hub's REST API; call it once in jupyterhub_config.py.

    The spawner's (server address reports, one-time server secrets, live availability) and the
    authenticator's (proposals for the services). JupyterHub builds its routes from
    `jupyterhub.apihandlers.default_handlers` after reading the config; a DaaSSpawner refuses to
    start servers on a hub without them. Calling it again changes nothing.
    """
    for path, handler in [*hub_handlers.HANDLERS, (hub_api.PATH, hub_api.ProposalsAPIHandler)]:
        if not any(route[0] == path for route in apihandlers.default_handlers):
            apihandlers.default_handlers.append((path, handler))


def managed_service(name: str, module: str, args: list[str], url: str) -> dict[str, Any]:
    """A `c.JupyterHub.services` entry that the hub starts and stops, in the hub's Python."""
    return {
        "name": name,
        "url": url,
        "command": [sys.executable, "-m", module, *args],
        "oauth_no_confirm": True,
        "display": True,
    }


def data_service(
    locations_file: str,
    url: str = "http://127.0.0.1:10101",
    user_prefix: str | None = None,
    extra_args: list[str] | None = None,
) -> dict[str, Any]:
    """The daas-data service (reads the same locations file as `c.DaaSSpawner.data_locations`);
    `extra_args` take its command-line options (--reader-memory, --readers-per-person, ...)."""
    args = ["--locations", locations_file] + (["--user-prefix", user_prefix] if user_prefix is not None else [])
    return managed_service("daas-data", "daas_services.data", [*args, *(extra_args or [])], url)


def dask_service(
    config_file: str, url: str = "http://127.0.0.1:10102", extra_args: list[str] | None = None
) -> dict[str, Any]:
    """The daas-dask service; `extra_args` take its command-line options (--records, --interface, ...)."""
    return managed_service("daas-dask", "daas_services.dask", ["--config", config_file, *(extra_args or [])], url)


def custom_scopes() -> dict[str, dict[str, str]]:
    """The scopes `service_roles` names that JupyterHub does not define (`c.JupyterHub.custom_scopes`)."""
    return {scope: dict(definition) for scope, definition in hub_api.CUSTOM_SCOPES.items()}


def service_roles(*names: str) -> list[dict[str, Any]]:
    """Each service may read users' proposals and servers; users and their servers may use the services.

    Not `admin:auth_state`: that would hand every service every user's OIDC tokens. The
    proposals come from the hub's narrow endpoint (daas_auth.hub_api) instead. The `user` and
    `server` roles keep JupyterHub's default scopes and gain access to these services only, so
    a notebook can call them with its own $JUPYTERHUB_API_TOKEN.
    """
    access = [f"access:services!service={name}" for name in names]
    service_scopes = ["read:users", "read:servers", hub_api.PROPOSALS_SCOPE]
    return [
        *({"name": f"{name}-service", "scopes": service_scopes, "services": [name]} for name in names),
        {"name": "user", "scopes": ["self", *access]},
        {"name": "server", "scopes": ["users:activity!user", "access:servers!server", *access]},
    ]
