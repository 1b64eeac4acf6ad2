"""Log in through Umbrella / eduTEAMS; proposals from `eduperson_entitlement`.

Entitlements look like `urn:geant:umbrellaid.org:group:<facility>:proposal:20231234#umbrellaid.org`.
Register the hub as an OIDC service with redirect URI
`https://jupyterhub.example.org/hub/oauth_callback` and the `eduperson_entitlement` scope.
Set JUPYTERHUB_CRYPT_KEY (`openssl rand -hex 32`).
"""

import os

from daas_auth import FileUserOffice

c = get_config()  # noqa: F821 - provided by JupyterHub

c.JupyterHub.authenticator_class = "daas-umbrella"
# The issuer your Umbrella/eduTEAMS registration names; endpoints come from discovery.
c.UmbrellaAuthenticator.issuer = os.environ["UMBRELLA_ISSUER"]
c.UmbrellaAuthenticator.client_id = os.environ["UMBRELLA_CLIENT_ID"]
c.UmbrellaAuthenticator.client_secret = os.environ["UMBRELLA_CLIENT_SECRET"]
c.UmbrellaAuthenticator.oauth_callback_url = "https://jupyterhub.example.org/hub/oauth_callback"
# Only this facility's proposal entitlements count.
c.UmbrellaAuthenticator.facility = "esrf"
# Umbrella's `sub` is opaque: map people to local accounts with a claim the facility controls.
c.UmbrellaAuthenticator.username_claim = "preferred_username"

# A site without a user-office API can export memberships to a file (re-read when it changes).
c.UmbrellaAuthenticator.user_office = FileUserOffice(path="/etc/jupyterhub/proposals.yaml")
