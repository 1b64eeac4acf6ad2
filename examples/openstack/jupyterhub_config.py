"""A facility hub whose servers are VMs in the facility's OpenStack (ESS VISA / ILL style).

Copy and adapt: the cloud's clouds.yaml entry, the profile file, how VMs reach the hub, intervals.
"""

from daas_core.mounts import load_data_locations
from daas_hub import TEMPLATES, add_service_roles, custom_scopes, dask_service, data_service, register_handlers
from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub
DAAS_CONFIG = "/etc/jupyterhub/daas_config.py"
load_subconfig(DAAS_CONFIG)  # noqa: F821 - provided by traitlets

c.JupyterHub.spawner_class = "daas"
c.JupyterHub.template_paths = [TEMPLATES]  # the home page shows when servers end, and shares them
register_handlers()  # the server address reports and one-time server secrets the VMs use
c.DaaSSpawner.profiles = load_profiles("/etc/jupyterhub/profiles.yaml")  # e.g. profiles/openstack.yaml
c.Spawner.cmd = ["jupyterhub-singleuser"]  # in the image; the environment's prefix/bin goes first on PATH

# VMs boot, run cloud-init, then report their address to the hub API: it must be reachable from the
# tenant network, and the proxy must reach the VMs on it (security group `daas-jupyter` in the profiles).
c.JupyterHub.hub_ip = "0.0.0.0"  # noqa: S104 - VMs connect to the hub API
c.JupyterHub.hub_connect_ip = "jupyterhub.example.org"
c.JupyterHub.cleanup_servers = False  # VMs keep running over hub restarts; they are re-attached
c.Spawner.start_timeout = 600  # scheduling, image copy, boot and cloud-init

# The cloud: an entry of clouds.yaml ($OS_CLIENT_CONFIG_FILE or /etc/openstack/clouds.yaml) with an
# application credential of a member of the facility's DaaS project. Never an admin's.
c.OpenStackBackend.cloud = "facility"
c.OpenStackBackend.tag = "daas"  # every VM this hub makes; hubs sharing a project need different tags
c.OpenStackBackend.interval = 30  # one tagged `servers list` per 30 s for the whole hub
c.OpenStackBackend.reconcile_interval = 300  # delete expired VMs and tagged VMs no server owns (logged)
# The VM's service runs as the person's numeric ids: from the hub's name service (SSSD/LDAP), or from
# the login's claims when the hub does not see the site's accounts (c.DaaSAuthenticator.uid_claim, ...).
c.OpenStackBackend.identity_source = "passwd"

# Per-proposal data: the VMs mount it over NFS (raw read-only), so data.yaml names the NFS server.
c.DaaSSpawner.data_locations = load_data_locations(c.DataService.data_locations)
c.JupyterHub.services = [data_service(DAAS_CONFIG), dask_service(DAAS_CONFIG)]
c.JupyterHub.custom_scopes = custom_scopes()
add_service_roles(c, "daas-data", "daas-dask")  # after any roles of the site's own: it extends them
c.DaaSSpawner.environment = {"DAAS_DASK_URL": "https://jupyterhub.example.org/services/daas-dask/"}
