"""Log in through a Keycloak realm; proposals from its `groups` claim and the user office's API.

Keycloak side: a confidential OIDC client with redirect URI
`https://jupyterhub.example.org/hub/oauth_callback`, and a "Group Membership" mapper (full
group path, added to userinfo) so that `groups` carries e.g. `/proposals/20231234`.
Set JUPYTERHUB_CRYPT_KEY (`openssl rand -hex 32`): proposals and tokens live in the encrypted
auth_state. Combine with examples/slurm/jupyterhub_config.py for the spawner.
"""

import os

from daas_auth import HttpUserOffice

c = get_config()  # noqa: F821 - provided by JupyterHub

c.JupyterHub.authenticator_class = "daas-keycloak"
# The realm's issuer: the endpoints come from its .well-known/openid-configuration.
c.KeycloakAuthenticator.issuer = "https://keycloak.example.org/realms/facility"
c.KeycloakAuthenticator.client_id = "jupyterhub"
c.KeycloakAuthenticator.client_secret = os.environ["KEYCLOAK_CLIENT_SECRET"]
c.KeycloakAuthenticator.oauth_callback_url = "https://jupyterhub.example.org/hub/oauth_callback"
c.KeycloakAuthenticator.scope = ["openid", "profile", "email"]
# The hub name is the person's Unix account (servers run as it). The preset takes the realm's
# `preferred_username`: right when usernames come from LDAP and people can neither register nor
# edit them. Otherwise name a claim the facility sets, e.g. a "User Attribute" mapper for LDAP's uid:
# c.KeycloakAuthenticator.account_claim = "uid"
# The preset reads `/proposals/<id>` from `groups`; add rules for other claims if the realm has them:
# c.KeycloakAuthenticator.proposal_claim_rules = [
#     {"claim": "groups", "pattern": r"/proposals/(?P<id>[0-9]+)"},
#     {"claim": "realm_access.roles", "pattern": r"proposal-(?P<id>[0-9]+)"},
# ]

# The user office is the source of truth for membership and metadata (title, beamline, dates, data).
# Its token comes from $DAAS_USER_OFFICE_TOKEN when not set here.
c.KeycloakAuthenticator.user_office = HttpUserOffice(
    url="https://useroffice.example.org/api/users/{username}/proposals",
    timeout=5,
    field_names={"id": "proposal_number", "instrument": "beamline"},
)
c.KeycloakAuthenticator.proposals_max_age = 600  # ask the user office again after 10 minutes
c.KeycloakAuthenticator.admin_users = {"jupyterhub-admin"}
# The realm's groups (the `groups` claim, full paths) are hub groups too, beside the proposals' groups:
# c.KeycloakAuthenticator.admin_groups = {"/jupyterhub-admins"}  # members are hub admins
# Proposal members may log in (allow_proposal_members); staff outside proposals by group or name:
c.KeycloakAuthenticator.allowed_users = {"beamline-scientist"}
# c.KeycloakAuthenticator.allowed_groups = {"/staff"}

# One server per proposal ("proposal-20231234"), each showing its proposal's title.
c.JupyterHub.allow_named_servers = True
