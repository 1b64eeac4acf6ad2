"""jupyterhub-daas authentication: OIDC login (Keycloak, Umbrella/eduTEAMS) and experiment proposals."""

from .authenticator import DaaSAuthenticator, KeycloakAuthenticator, UmbrellaAuthenticator
from .proposals import ClaimRule, Proposal
from .useroffice import FileUserOffice, HttpUserOffice, UserOffice, UserOfficeError

__all__ = [
    "ClaimRule",
    "DaaSAuthenticator",
    "FileUserOffice",
    "HttpUserOffice",
    "KeycloakAuthenticator",
    "Proposal",
    "UmbrellaAuthenticator",
    "UserOffice",
    "UserOfficeError",
]
