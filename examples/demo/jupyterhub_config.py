"""Demo hub: the DaaS spawner with the example profiles, a shared demo password, 127.0.0.1 only.

Started by examples/demo/run.sh, which sets the DAAS_DEMO_* variables. Not for production:
see examples/slurm/jupyterhub_config.py for a site configuration.
"""

import os
import sys

from daas_hub import TEMPLATES, register_handlers
from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub
repo = os.environ["DAAS_DEMO_REPO"]
state = os.environ["DAAS_DEMO_STATE"]
mode = os.environ.get("DAAS_DEMO_MODE", "local")

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("DAAS_DEMO_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("DAAS_DEMO_HUB_PORT", "8004"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('DAAS_DEMO_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [os.environ["DAAS_DEMO_CHP"]]
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state}/jupyterhub.pid"

issuer = os.environ.get("DAAS_DEMO_ISSUER")
if issuer:
    # --oidc: log in through the demo identity provider; proposals from examples/demo/proposals.yaml.
    from daas_auth import FileUserOffice

    c.JupyterHub.authenticator_class = "daas"
    c.DaaSAuthenticator.issuer = issuer
    c.DaaSAuthenticator.client_id = "jupyterhub-demo"
    c.DaaSAuthenticator.client_secret = os.environ["DAAS_DEMO_CLIENT_SECRET"]
    c.DaaSAuthenticator.oauth_callback_url = f"http://127.0.0.1:{c.JupyterHub.port}/hub/oauth_callback"
    c.DaaSAuthenticator.scope = ["openid", "profile", "groups", "eduperson_entitlement"]
    c.DaaSAuthenticator.proposal_claim_rules = [
        {"claim": "groups", "pattern": r"/proposals/(?P<id>[0-9]+)"},
        {
            "claim": "eduperson_entitlement",
            "pattern": r"urn:geant:umbrellaid\.org:group:daas-demo:proposal:(?P<id>[0-9]+)#umbrellaid\.org",
        },
    ]
    c.DaaSAuthenticator.user_office = FileUserOffice(
        path=os.path.join(repo, "examples", "demo", "proposals.yaml"),
        accounts_path=os.path.join(repo, "examples", "demo", "accounts.yaml"),  # sub -> Unix account
    )
    # Each proposal's data (examples/demo/make_data.py made it): links in every server, and the
    # daas-data service to browse it (examples/demo/daas_config.py).
    from daas_core.mounts import load_data_locations
    from daas_hub import add_service_roles, custom_scopes, data_service

    c.DaaSSpawner.data_locations = load_data_locations(os.path.join(repo, "examples", "demo", "data.yaml"))
    data_url = f"http://127.0.0.1:{os.environ.get('DAAS_DEMO_DATA_PORT', '8002')}"
    data_config = os.path.join(repo, "examples", "demo", "daas_config.py")  # the same data.yaml, the reader's account
    c.JupyterHub.services = [data_service(data_config, url=data_url, environment={"DAAS_DEMO_MODE": mode})]
    c.JupyterHub.custom_scopes = custom_scopes()
    add_service_roles(c, "daas-data")
else:
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = os.environ.get("DAAS_DEMO_PASSWORD", "daas-demo")
    c.Authenticator.allow_all = True

c.JupyterHub.spawner_class = "daas"
c.JupyterHub.template_paths = [TEMPLATES]  # the home page shows when servers end, and shares them
register_handlers()  # the spawner's endpoints (and the proposals endpoint for the services)
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
if mode == "slurm":
    c.DaaSSpawner.profiles = load_profiles(os.path.join(repo, "profiles", "facility.yaml"))
    c.Authenticator.allowed_users = {"alice", "bob", "carol"}
    c.Authenticator.allow_all = False
else:
    c.DaaSSpawner.profiles = load_profiles(os.path.join(repo, "profiles", "demo.yaml"))
    c.LocalBackend.working_dir = os.path.join(state, "users", "{username}")
