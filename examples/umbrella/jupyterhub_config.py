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
# People choose their `preferred_username` at Umbrella/eduTEAMS, so it never names their Unix account:
# the user office links each person's stable `sub` to the account the facility gave them. Without a
# link, the login is refused. A site without a user-office API can export both to files (re-read
# when they change): proposals `{account: [proposal, ...]}`, accounts `{sub: account}`.
c.UmbrellaAuthenticator.user_office = FileUserOffice(
    path="/etc/jupyterhub/proposals.yaml",
    accounts_path="/etc/jupyterhub/accounts.yaml",
)
# With a user-office API instead:
# c.UmbrellaAuthenticator.user_office = HttpUserOffice(
#     url="https://useroffice.example.org/api/users/{username}/proposals",
#     account_url="https://useroffice.example.org/api/people/{sub}/account",  # answers {"username": "..."}
# )
