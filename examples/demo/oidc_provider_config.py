"""Print the demo identity provider's configuration (tests/oidc/provider.mjs) as JSON.

Three people with facility-style claims: alice and carol as a Keycloak realm sends them
(`groups: /proposals/<id>`), bob as Umbrella/eduTEAMS does (`eduperson_entitlement`).
Each has an opaque `sub`, which examples/demo/accounts.yaml links to their Unix account.
All use the demo password. Environment: DAAS_DEMO_OIDC_PORT, DAAS_DEMO_PORT,
DAAS_DEMO_PASSWORD, DAAS_DEMO_CLIENT_SECRET.
"""

import json
import os

port = int(os.environ["DAAS_DEMO_OIDC_PORT"])
password = os.environ["DAAS_DEMO_PASSWORD"]
umbrella = "urn:geant:umbrellaid.org:group:daas-demo:proposal:{}#umbrellaid.org"
subs = {"alice": "7a1c3e90@demo-idp", "bob": "b0b2d4f6@demo-idp", "carol": "c4a1e8d2@demo-idp"}
claims = {
    "alice": {"name": "Alice Example", "groups": ["/proposals/20231234", "/proposals/20220001"]},
    "bob": {"name": "Bob Example", "eduperson_entitlement": [umbrella.format("20230042")]},
    "carol": {"name": "Carol Example", "groups": ["/proposals/20225555"]},
}
print(
    json.dumps(
        {
            "port": port,
            "issuer": f"http://127.0.0.1:{port}",
            "clients": [
                {
                    "client_id": "jupyterhub-demo",
                    "client_secret": os.environ["DAAS_DEMO_CLIENT_SECRET"],
                    "redirect_uris": [f"http://127.0.0.1:{os.environ['DAAS_DEMO_PORT']}/hub/oauth_callback"],
                }
            ],
            "accounts": {
                name: {"password": password, "sub": subs[name], "claims": {"preferred_username": name, **extra}}
                for name, extra in claims.items()
            },
            "access_token_ttl": 600,
            "refresh_token_ttl": 86400,
        },
        indent=2,
    )
)
