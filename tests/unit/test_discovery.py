"""OIDC discovery: endpoints are taken only from a document that describes the configured issuer."""

from __future__ import annotations

import pytest

from daas_auth.discovery import DiscoveryError, discovery_url, endpoints_from_discovery

ISSUER = "https://keycloak.example.org/realms/facility"
DOCUMENT = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
    "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
    "userinfo_endpoint": f"{ISSUER}/protocol/openid-connect/userinfo",
}


def test_discovery_url():
    assert discovery_url(ISSUER) == f"{ISSUER}/.well-known/openid-configuration"
    assert discovery_url(ISSUER + "/") == f"{ISSUER}/.well-known/openid-configuration"


def test_endpoints():
    assert endpoints_from_discovery(ISSUER + "/", DOCUMENT) == {
        "authorize_url": DOCUMENT["authorization_endpoint"],
        "token_url": DOCUMENT["token_endpoint"],
        "userdata_url": DOCUMENT["userinfo_endpoint"],
    }


@pytest.mark.parametrize(
    "document, message",
    [
        ([], "not a JSON object"),
        ({**DOCUMENT, "issuer": "https://evil.example.org/realms/facility"}, "describes issuer"),
        ({k: v for k, v in DOCUMENT.items() if k != "issuer"}, "describes issuer None"),
        ({k: v for k, v in DOCUMENT.items() if k != "token_endpoint"}, "no usable token_endpoint"),
        ({**DOCUMENT, "userinfo_endpoint": "javascript:alert(1)"}, "no usable userinfo_endpoint"),
    ],
)
def test_bad_documents(document, message):
    with pytest.raises(DiscoveryError, match=message):
        endpoints_from_discovery(ISSUER, document)
