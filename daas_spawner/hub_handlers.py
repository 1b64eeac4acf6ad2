"""The hub endpoints the spawner needs, in one list (daas_hub.register_handlers adds them to the hub)."""

from __future__ import annotations

from jupyterhub import apihandlers
from tornado.web import RequestHandler

from . import address, availability, bootstrap, sharing

HANDLERS: list[tuple[str, type[RequestHandler]]] = [
    (address.PATH, address.ServerAddressAPIHandler),  # a starting server reports where it listens
    (bootstrap.PATH, bootstrap.ServerSecretsAPIHandler),  # a launcher redeems its one-time secret
    (availability.PATH, availability.AvailabilityAPIHandler),  # the form's live availability
    (sharing.PATH, sharing.SharesAPIHandler),  # a server's owner shares it with the proposal's team
]


def missing() -> list[str]:
    """The spawner's endpoints the hub's API does not serve: a start cannot work without them."""
    served = {route[0] for route in apihandlers.default_handlers}
    return [path for path, _ in HANDLERS if path not in served]
