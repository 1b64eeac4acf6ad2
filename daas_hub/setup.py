"""The hub-side configuration of the DaaS suite, so a site writes it once and correctly.

from daas_hub import add_service_roles, custom_scopes, data_service, dask_service, register_handlers
register_handlers()
services = "/etc/jupyterhub/daas_config.py"  # c.DataService, c.DaskService, c.UserAccounts
load_subconfig(services)  # the hub reads c.UserAccounts from it too
c.JupyterHub.services.extend([data_service(services), dask_service(services)])
c.JupyterHub.custom_scopes.update(custom_scopes())
add_service_roles(c, "daas-data", "daas-dask")  # after the site's own roles
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jupyterhub import apihandlers, roles
from jupyterhub.app import JupyterHub
from traitlets.config import Config, LazyConfigValue

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
    """The scopes `add_service_roles` gives that JupyterHub does not define (`c.JupyterHub.custom_scopes`)."""
    return {scope: dict(definition) for scope, definition in hub_api.CUSTOM_SCOPES.items()}


SERVICE_SCOPES = ("read:users", "read:servers", hub_api.PROPOSALS_SCOPE)
"""What a service's role holds: whose servers run and which proposals people have, nothing of their tokens."""


def add_service_roles(c: Config, *names: str) -> None:
    """Let each service read people's proposals and servers, and people and their servers use the services.

    Call it after the site's own `c.JupyterHub.load_roles`: it composes with them. Each service gets a
    role `<name>-service` with `read:users`, `read:servers` and the proposals scope, not `admin:auth_state`
    (that would hand every service every user's OIDC tokens; the proposals come from the hub's narrow
    endpoint, daas_auth.hub_api, instead). A `user` or `server` role the site defines gains access to the
    services and keeps its scopes; without one, JupyterHub's default gains it (through
    `c.JupyterHub.extra_user_scopes` where JupyterHub has it, 6.0 on), so a notebook can call the services
    with its own $JUPYTERHUB_API_TOKEN. A site that sets `Spawner.server_token_scopes` adds the
    `access:services!service=<name>` scopes there itself: servers' tokens then ignore the `server` role.
    """
    access = [f"access:services!service={name}" for name in names]
    site_roles = copy.deepcopy(_configured(c.JupyterHub, "load_roles", []))
    for name in names:
        _grant(site_roles, f"{name}-service", SERVICE_SCOPES, services=[name])
    if _role(site_roles, "user") is None and "extra_user_scopes" in JupyterHub.class_trait_names():
        c.JupyterHub.extra_user_scopes = set(_configured(c.JupyterHub, "extra_user_scopes", set())) | set(access)
    else:
        _grant(site_roles, "user", access)
    _grant(site_roles, "server", access)
    c.JupyterHub.load_roles = site_roles


def _configured(section: Config, trait: str, default: Any) -> Any:
    """The value the config gives `trait` so far: a site's `.append`/`.update` on a fresh config is applied to
    the trait's default."""
    value = section[trait]
    return value.get_value(default) if isinstance(value, LazyConfigValue) else value


def _role(site_roles: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((role for role in site_roles if role.get("name") == name), None)


def _grant(
    site_roles: list[dict[str, Any]], name: str, scopes: Iterable[str], services: list[str] | None = None
) -> None:
    """Add scopes (and services) to the role `name`, made when missing; a role without `scopes` starts from
    JupyterHub's default ones, as JupyterHub would load it."""
    role = _role(site_roles, name)
    if role is None:
        role = {"name": name}
        site_roles.append(role)
    defaults = {default["name"]: default["scopes"] for default in roles.get_default_roles()}
    held = list(role.get("scopes", defaults.get(name, [])))
    role["scopes"] = held + [scope for scope in scopes if scope not in held]
    if services:
        members = list(role.get("services", []))
        role["services"] = members + [service for service in services if service not in members]
