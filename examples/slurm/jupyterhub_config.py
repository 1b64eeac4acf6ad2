"""A facility hub on Slurm: the DaaS spawner with site profiles.

Copy this directory's two files to the site's configuration directory (e.g. /etc/jupyterhub), with
profiles.yaml, data.yaml and dask.yaml beside them (profiles/ has examples) and the login's settings as
login_config.py (examples/keycloak or examples/umbrella), then adapt: Slurm location, how the hub acts as
users, intervals, the public name. Every file is found beside this one: `jupyterhub -f
/etc/jupyterhub/jupyterhub_config.py` reads /etc/jupyterhub/*.
"""

import os

from daas_core.mounts import load_data_locations
from daas_hub import TEMPLATES, add_service_roles, custom_scopes, dask_service, data_service, register_handlers
from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub
SITE = os.path.dirname(os.path.abspath(__file__))  # the directory of this file, e.g. /etc/jupyterhub
# The services' settings and the account rules (c.UserAccounts) the hub shares with them: one file.
DAAS_CONFIG = os.path.join(SITE, "daas_config.py")
load_subconfig(DAAS_CONFIG)  # noqa: F821 - provided by traitlets
# The login: OIDC with the facility's proposals (a copy of examples/keycloak/jupyterhub_config.py or
# examples/umbrella/jupyterhub_config.py). Without the file the hub falls back to JupyterHub's PAM login.
load_subconfig(os.path.join(SITE, "login_config.py"))  # noqa: F821 - provided by traitlets

c.JupyterHub.spawner_class = "daas"
c.JupyterHub.template_paths = [TEMPLATES]  # the home page shows when servers end, and shares them
register_handlers()  # the spawner's endpoints (and the proposals endpoint for the services)
# A bad file stops the hub here, naming the file and the field.
c.DaaSSpawner.profiles = load_profiles(os.path.join(SITE, "profiles.yaml"))
# The single-user command inside the job; the environment's prefix/bin goes first on PATH.
c.Spawner.cmd = ["jupyterhub-singleuser"]

# Jobs must reach the hub API; use an address the compute nodes can route to.
c.JupyterHub.hub_ip = "0.0.0.0"  # noqa: S104 - compute nodes connect to the hub API
c.JupyterHub.hub_connect_ip = "jupyterhub.example.org"
# Keep servers running over hub restarts; they are re-attached from the database.
c.JupyterHub.cleanup_servers = False

c.SlurmBackend.slurm_bin_dir = "/usr/bin"  # jobs are submitted as the user through c.UserAccounts.user_prefix
c.SlurmBackend.poll_interval = 30  # one batched squeue per 30 s for the whole hub
c.SlurmBackend.working_dir = "{home}"
c.SlurmBackend.output = "jupyterhub-daas-%j.log"

# Without sudo or munge on the hub's host (README, "Slurm without sudo"): slurmrestd with a token per person.
# c.SlurmBackend.transport = "rest"
# c.SlurmRest.url = "http://127.0.0.1:6820"
# c.SlurmRest.jwt_key_file = "/etc/jupyterhub/secrets/jwt_hs256.key"  # the cluster's key: guard it like root

# Per-proposal data (needs proposals from daas_auth: see examples/keycloak): links in every server,
# and the daas-data service to browse them. Both read the file daas_config.py names.
c.DaaSSpawner.data_locations = load_data_locations(c.DataService.data_locations)
# The services, each run with daas_config.py (c.DataService, c.DaskService).
c.JupyterHub.services = [data_service(DAAS_CONFIG), dask_service(DAAS_CONFIG)]
# The services read people's proposals through the hub's proposals endpoint (a custom scope), never
# their auth_state: that holds their OIDC tokens.
c.JupyterHub.custom_scopes = custom_scopes()
# Users and their servers may use the services. After any roles of the site's own: it extends them.
add_service_roles(c, "daas-data", "daas-dask")
# Notebooks find the Dask service here (any backend that reaches the hub's public URL).
c.DaaSSpawner.environment = {"DAAS_DASK_URL": "https://jupyterhub.example.org/services/daas-dask/"}
