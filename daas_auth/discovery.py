"""OpenID Connect discovery: the provider's endpoints from its issuer URL alone.

oauthenticator needs authorize/token/userinfo URLs spelled out; Keycloak realms and
Umbrella publish them at `<issuer>/.well-known/openid-configuration`. The document is read
on first use (a provider that is down at hub start must not stop the hub) and kept; a
failed read is retried at the next login.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WELL_KNOWN = "/.well-known/openid-configuration"

# oauthenticator trait -> discovery document key
ENDPOINT_TRAITS = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userdata_url": "userinfo_endpoint",
}


class DiscoveryError(RuntimeError):
    """The provider's discovery document could not be read or does not describe this issuer."""


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + WELL_KNOWN


def endpoints_from_discovery(issuer: str, document: Any) -> dict[str, str]:
    """Check the document belongs to `issuer` (OIDC Discovery 4.3) and return trait -> URL."""
    if not isinstance(document, Mapping):
        raise DiscoveryError(f"{discovery_url(issuer)}: not a JSON object")
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryError(f"{discovery_url(issuer)}: describes issuer {document.get('issuer')!r}, not {issuer!r}")
    endpoints = {}
    for trait, key in ENDPOINT_TRAITS.items():
        url = document.get(key)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise DiscoveryError(f"{discovery_url(issuer)}: no usable {key}")
        endpoints[trait] = url
    return endpoints
