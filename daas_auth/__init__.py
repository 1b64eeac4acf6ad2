"""jupyterhub-daas authentication: OIDC login (Keycloak, Umbrella/eduTEAMS) and experiment proposals.

Names load on first use, so importing a submodule does not import oauthenticator or JupyterHub.
"""

from daas_core.lazy import lazy_exports

_EXPORTS = {
    "DaaSAuthenticator": "authenticator",
    "KeycloakAuthenticator": "authenticator",
    "UmbrellaAuthenticator": "authenticator",
    "ClaimRule": "proposals",
    "FileUserOffice": "useroffice",
    "HttpUserOffice": "useroffice",
    "UserOffice": "useroffice",
    "UserOfficeError": "useroffice",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
