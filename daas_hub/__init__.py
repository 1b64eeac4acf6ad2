"""The hub's wiring of the DaaS suite: its API endpoints, scopes, roles and services (for jupyterhub_config.py).

The one package that imports the authenticator, the spawner and the services together; none of them
imports it.
"""

from .setup import TEMPLATES, add_service_roles, custom_scopes, dask_service, data_service, register_handlers

__all__ = ["TEMPLATES", "add_service_roles", "custom_scopes", "dask_service", "data_service", "register_handlers"]
