"""A facility hub on Slurm: the DaaS spawner with site profiles.

Copy and adapt: profile file path, Slurm location, how the hub acts as users, intervals.
"""

from daas_core.mounts import load_data_locations
from daas_hub import TEMPLATES, custom_scopes, dask_service, data_service, register_handlers, service_roles
from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub
# The services' settings and the account rules (c.UserAccounts) the hub shares with them: one file.
DAAS_CONFIG = "/etc/jupyterhub/daas_config.py"
load_subconfig(DAAS_CONFIG)  # noqa: F821 - provided by traitlets

c.JupyterHub.spawner_class = "daas"
c.JupyterHub.template_paths = [TEMPLATES]  # the home page shows when servers end, and shares them
register_handlers()  # the spawner's endpoints (and the proposals endpoint for the services)
# A bad file stops the hub here, naming the file and the field.
c.DaaSSpawner.profiles = load_profiles("/etc/jupyterhub/profiles.yaml")
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
c.JupyterHub.load_roles = service_roles("daas-data", "daas-dask")
# Notebooks find the Dask service here (any backend that reaches the hub's public URL).
c.DaaSSpawner.environment = {"DAAS_DASK_URL": "https://jupyterhub.example.org/services/daas-dask/"}
