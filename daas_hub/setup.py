"""The hub-side configuration of the DaaS suite, so a site writes it once and correctly.

from daas_hub import custom_scopes, data_service, dask_service, register_handlers, service_roles
register_handlers()
services = "/etc/jupyterhub/daas_config.py"  # c.DataService, c.DaskService, c.UserAccounts
load_subconfig(services)  # the hub reads c.UserAccounts from it too
c.JupyterHub.services += [data_service(services), dask_service(services)]
c.JupyterHub.custom_scopes.update(custom_scopes())
c.JupyterHub.load_roles += service_roles("daas-data", "daas-dask")
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from jupyterhub import apihandlers

from daas_auth import hub_api
from daas_spawner import hub_handlers, sharing

TEMPLATES = str(Path(__file__).resolve().parent / "templates")
"""The hub pages this suite extends (the home page's sessions, sharing): c.JupyterHub.template_paths = [TEMPLATES]."""


def register_handlers() -> None:
    """Add the suite's endpoints to the hub's REST API; call it once in jupyterhub_config.py.

    The spawner's (server address reports, one-time server secrets, live availability, sharing
    with the proposal's team) and the authenticator's (proposals for the services). JupyterHub
    builds its routes from `jupyterhub.apihandlers.default_handlers` after reading the config; a
    DaaSSpawner refuses to start servers on a hub without them. Calling it again changes nothing.
    It also makes a person's shares end when they leave a proposal (`sharing.follow_group_changes`).
    """
    for path, handler in [*hub_handlers.HANDLERS, (hub_api.PATH, hub_api.ProposalsAPIHandler)]:
        if not any(route[0] == path for route in apihandlers.default_handlers):
            apihandlers.default_handlers.append((path, handler))
    sharing.follow_group_changes()


def managed_service(
    name: str, module: str, config_file: str, url: str, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """A `c.JupyterHub.services` entry that the hub starts and stops: `module` in the hub's Python, with its
    Python config file (`--config`). A YAML site file in its place stops the hub with what changed."""
    if not config_file.endswith(".py"):
        raise ValueError(
            f"{name}: {config_file!r} is not a Python config file. The services read a traitlets config file "
            "(like jupyterhub_config.py) since issue #15; the YAML file goes inside it: "
            "c.DataService.data_locations = '/etc/jupyterhub/data.yaml' / c.DaskService.limits_file = '...'"
        )
    return {
        "name": name,
        "url": url,
        "command": [sys.executable, "-m", module, "--config", os.path.abspath(config_file)],
        "environment": dict(environment or {}),
        "oauth_no_confirm": True,
        "display": True,
    }


def data_service(
    config_file: str, url: str = "http://127.0.0.1:10101", environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """The daas-data service, set up by `config_file` (`c.DataService.*`, `c.UserAccounts.*`; `daas-data
    --help-all` lists them). Its `c.DataService.data_locations` is the file `c.DaaSSpawner.data_locations`
    reads. `environment`: variables for the service's process (the hub passes few of its own)."""
    return managed_service("daas-data", "daas_services.data", config_file, url, environment)


def dask_service(
    config_file: str, url: str = "http://127.0.0.1:10102", environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """The daas-dask service, set up by `config_file` (`c.DaskService.*`, `c.UserAccounts.*`; `daas-dask
    --help-all` lists them). `environment`: variables for the service's process."""
    return managed_service("daas-dask", "daas_services.dask", config_file, url, environment)


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
