"""The hub's wiring of the DaaS suite: its API endpoints, scopes, roles and services (for jupyterhub_config.py).

The one package that imports the authenticator, the spawner and the services together; none of them
imports it.
"""

from .setup import TEMPLATES, custom_scopes, dask_service, data_service, register_handlers, service_roles

__all__ = ["TEMPLATES", "custom_scopes", "dask_service", "data_service", "register_handlers", "service_roles"]
