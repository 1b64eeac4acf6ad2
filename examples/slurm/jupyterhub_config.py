"""A facility hub on Slurm: the DaaS spawner with site profiles.

Copy and adapt: profile file path, Slurm location, how the hub acts as users, intervals.
"""

from daas_core.mounts import load_data_locations
from daas_hub import custom_scopes, dask_service, data_service, register_handlers, service_roles
from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub

c.JupyterHub.spawner_class = "daas"
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

c.SlurmBackend.slurm_bin_dir = "/usr/bin"
# Hub as root: the default prefix works. Unprivileged hub: a sudo rule allowing exactly
#   jupyterhub ALL=(%facility-users) NOPASSWD: /usr/bin/sbatch, /usr/bin/scancel
c.SlurmBackend.user_prefix = ["sudo", "-n", "-u", "{username}", "--"]
c.SlurmBackend.poll_interval = 30  # one batched squeue per 30 s for the whole hub
c.SlurmBackend.working_dir = "{home}"
c.SlurmBackend.output = "jupyterhub-daas-%j.log"

# Per-proposal data (needs proposals from daas_auth: see examples/keycloak): links in every server,
# and the daas-data service to browse them. Both read the same file (profiles/data.yaml is an example).
c.DaaSSpawner.data_locations = load_data_locations("/etc/jupyterhub/data.yaml")
DASK_ARGS = ["--interface", "ib0", "--records", "/var/lib/daas-dask/clusters.sqlite"]
DASK_ARGS += [
    "--scheduler-qos",
    "dask-scheduler",
    "--service-url",
    "https://jupyterhub.example.org/services/daas-dask/",
]
c.JupyterHub.services = [
    data_service("/etc/jupyterhub/data.yaml"),
    # Dask offload to this cluster; limits per proposal in profiles/dask.yaml. Schedulers and workers are
    # Slurm jobs (the same Python as --python on the nodes); --interface names the network they talk on,
    # --service-url where scheduler jobs reach the service, --scheduler-qos one that starts them soon.
    dask_service("/etc/jupyterhub/dask.yaml", extra_args=DASK_ARGS),
]
# The services read people's proposals through the hub's proposals endpoint (a custom scope), never
# their auth_state: that holds their OIDC tokens.
c.JupyterHub.custom_scopes = custom_scopes()
c.JupyterHub.load_roles = service_roles("daas-data", "daas-dask")
# Notebooks find the Dask service here (any backend that reaches the hub's public URL).
c.DaaSSpawner.environment = {"DAAS_DASK_URL": "https://jupyterhub.example.org/services/daas-dask/"}
