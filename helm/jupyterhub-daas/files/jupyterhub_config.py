"""jupyterhub_config.py of the jupyterhub-daas chart: the hub from the chart's values.

The chart's ConfigMap holds the values the hub needs (chart.json), the site's YAML files and
daas_config.py; secrets come from the environment (Secrets), never from the ConfigMap.
`hub.config` ({Class: {trait: value}}) and `hub.extraConfig` (Python) run last and win.
"""

import glob
import json
import os

from daas_hub import add_service_roles, custom_scopes, register_handlers
from daas_spawner import load_profiles

c = get_config()  # noqa: F821 - provided by JupyterHub
CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))  # the mounted ConfigMap
with open(os.path.join(CONFIG_DIR, "chart.json")) as file:
    chart = json.load(file)

# c.UserAccounts (shared with the services) and the services' own sections.
load_subconfig(os.path.join(CONFIG_DIR, "daas_config.py"))  # noqa: F821 - provided by traitlets

c.JupyterHub.spawner_class = "daas"
register_handlers()
if chart["siteFiles"]["profiles"]:
    c.DaaSSpawner.profiles = load_profiles(os.path.join(CONFIG_DIR, "profiles.yaml"))
if chart["siteFiles"]["data"]:
    from daas_core.mounts import load_data_locations

    c.DaaSSpawner.data_locations = load_data_locations(os.path.join(CONFIG_DIR, "data.yaml"))
c.JupyterHub.cleanup_servers = False  # servers outlive a hub restart and are re-attached


def service_address(service: str, port: int) -> tuple[str, int]:
    """Where one of the release's Services answers. Kubernetes gives every pod <NAME>_SERVICE_HOST and
    _PORT for each Service of its namespace that existed when the pod was made (Helm makes Services
    first): the Service's IP, which needs no cluster DNS. Without them, its DNS name."""
    variable = service.upper().replace("-", "_")
    host = os.environ.get(f"{variable}_SERVICE_HOST") or f"{service}.{chart['namespace']}.svc"
    return host, int(os.environ.get(f"{variable}_SERVICE_PORT") or port)


# The hub listens on all its pod's addresses (the hub Service and the NetworkPolicy decide who connects); pods
# and jobs reach it at `connectHost`, else its Service. The bind URL is explicit: JupyterHub would bind the
# connect URL otherwise.
c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{chart['hub']['port']}"
if chart["hub"]["connectHost"]:
    c.JupyterHub.hub_connect_ip = chart["hub"]["connectHost"]
else:
    hub_host, hub_port = service_address(chart["hub"]["service"], chart["hub"]["port"])
    c.JupyterHub.hub_connect_url = f"http://{hub_host}:{hub_port}"
c.JupyterHub.base_url = chart["hub"]["baseUrl"]
# The proxy runs in its own pod; CONFIGPROXY_AUTH_TOKEN (the chart's Secret) authenticates the hub to it.
c.ConfigurableHTTPProxy.should_start = False
proxy_api_host, proxy_api_port = service_address(chart["proxy"]["apiService"], chart["proxy"]["apiPort"])
c.ConfigurableHTTPProxy.api_url = f"http://{proxy_api_host}:{proxy_api_port}"
# JupyterHub reads JPY_COOKIE_SECRET and JUPYTERHUB_CRYPT_KEY from the environment itself.
c.JupyterHub.db_url = os.environ.get("DAAS_HUB_DB_URL") or "sqlite:////srv/jupyterhub/jupyterhub.sqlite"

auth = chart["auth"]
AUTHENTICATORS = {
    "daas": "DaaSAuthenticator",
    "daas-keycloak": "KeycloakAuthenticator",
    "daas-umbrella": "UmbrellaAuthenticator",
}
authenticator = c[AUTHENTICATORS[auth["type"]]]
c.JupyterHub.authenticator_class = auth["type"]
authenticator.issuer = auth["issuer"]
authenticator.client_id = auth["clientId"]
authenticator.client_secret = os.environ.get("DAAS_OIDC_CLIENT_SECRET", "")
if auth["callbackUrl"]:  # else OAuthenticator builds it from each login request's host
    authenticator.oauth_callback_url = auth["callbackUrl"]
authenticator.admin_users = set(auth["adminUsers"])
authenticator.allowed_users = set(auth["allowedUsers"])
for trait, value in auth["config"].items():
    authenticator[trait] = value

c.KubernetesBackend.namespace = chart["kubernetes"]["namespace"]
c.KubernetesBackend.watch_all_namespaces = chart["kubernetes"]["watchAllNamespaces"]

if chart["slurm"]["enabled"]:
    slurm = chart["slurm"]
    c.SlurmBackend.transport = "rest"  # no sudo, munge or Slurm in the pod: slurmrestd with a token per person
    c.SlurmRest.url = slurm["url"]
    c.SlurmRest.api_version = slurm["apiVersion"]
    c.SlurmRest.token_source = "key"  # noqa: S105 - a choice, not a secret: the hub signs with the mounted key
    c.SlurmRest.jwt_key_file = slurm["jwtKeyFile"]
    c.SlurmRest.token_lifetime = slurm["tokenLifetime"]
    if slurm["user"]:
        c.SlurmRest.user = slurm["user"]


def service_url(service: dict) -> str:
    """A deployed service's Service, or the URL of one that runs elsewhere."""
    if "url" in service:
        return service["url"]
    host, port = service_address(service["service"], service["port"])
    return f"http://{host}:{port}"


# The services run in pods of their own or elsewhere: the hub knows them by URL and API token.
services = chart["services"]
c.JupyterHub.services = [
    {
        "name": service["name"],
        "url": service_url(service),
        "api_token": os.environ[service["tokenVariable"]],
        "oauth_no_confirm": True,
        "display": True,
    }
    for service in services
]
if services:
    c.JupyterHub.custom_scopes = custom_scopes()
    add_service_roles(c, *(service["name"] for service in services))
c.DaaSSpawner.environment.update(chart["singleuserEnvironment"])

for section, traits in chart["config"].items():
    for trait, value in traits.items():
        c[section][trait] = value
for snippet in sorted(glob.glob(os.path.join(CONFIG_DIR, "extra-config-*.py"))):
    load_subconfig(snippet)  # noqa: F821 - provided by traitlets
