"""A facility hub on Slurm: the DaaS spawner with site profiles.

Copy and adapt: profile file path, Slurm location, how the hub acts as users, intervals.
"""

from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub

c.JupyterHub.spawner_class = "daas"
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
