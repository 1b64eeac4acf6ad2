"""The DaaS services' settings, and the account rules the hub shares with them (a traitlets config file).

daas-data and daas-dask read it (`data_service` / `dask_service` in jupyterhub_config.py pass it as
--config), and jupyterhub_config.py loads it too (`load_subconfig`), so `c.UserAccounts` is written
once. `daas-data --help-all` and `daas-dask --help-all` list every setting. Site data stays in YAML:
the files named here, found beside this file (e.g. in /etc/jupyterhub).
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets
SITE = os.path.dirname(os.path.abspath(__file__))  # the directory of this file, e.g. /etc/jupyterhub

# Which accounts the hub and the services act as, and how. Hub as root: the default prefix works.
# Unprivileged: a sudo rule allowing exactly sbatch and scancel (the hub), the data reader and
# sbatch, scancel and mkdir (the services) as the people's accounts, e.g.
#   jupyterhub ALL=(%facility-users) NOPASSWD: /usr/bin/sbatch, /usr/bin/scancel
c.UserAccounts.user_prefix = ["sudo", "-n", "-u", "{username}", "--"]
c.UserAccounts.account_group = "facility-users"  # only members' accounts; the uid range is login.defs'

# Per-proposal data (profiles/data.yaml is an example); jupyterhub_config.py gives the spawner the same file.
c.DataService.data_locations = os.path.join(SITE, "data.yaml")
c.DataService.readers_per_person = 4

# Dask offload to this cluster; limits per proposal in profiles/dask.yaml. Schedulers and workers are
# Slurm jobs (the same Python as `python` on the nodes); `interface` names the network they talk on,
# `service_url` where scheduler jobs reach the service, `scheduler_qos` one that starts them soon.
c.DaskService.limits_file = os.path.join(SITE, "dask.yaml")
c.DaskService.db_url = "sqlite:////var/lib/daas-dask/clusters.sqlite"  # or postgresql://... (README, "PostgreSQL")
c.DaskService.interface = "ib0"
c.DaskService.scheduler_qos = "dask-scheduler"
c.DaskService.service_url = "https://jupyterhub.example.org/services/daas-dask/"
