"""The demo's data service (daas-data, with --oidc): its settings, as a site's daas_config.py holds them.

The demo hub (jupyterhub_config.py) runs the service with this file and DAAS_DEMO_MODE in its environment.
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets

c.DataService.data_locations = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.yaml")
if os.environ.get("DAAS_DEMO_MODE", "local") == "local":
    c.UserAccounts.user_prefix = []  # the local demo runs every server as one account: so does its reader
