"""What every DaaS service handler shares: the caller from the hub, JSON errors, safe headers."""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from tornado import web


class UserHandler(HubOAuthenticated, web.RequestHandler):
    """A request made by a hub user (browser session or token with the service's access scope)."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")

    @property
    def username(self) -> str:
        """The calling user; other hub services are refused (they have no data or clusters here)."""
        user = self.current_user
        if not user or user.get("kind", "user") != "user":
            raise web.HTTPError(403, "this service acts for users only")
        return user["name"]

    def error_message(self, **kwargs: Any) -> str:
        error = kwargs.get("exc_info", (None, None, None))[1]
        return error.log_message if isinstance(error, web.HTTPError) and error.log_message else self._reason

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": self.error_message(**kwargs)}))

    def write_json(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


class NoLoginRedirect:
    """For API handlers: an anonymous call is a 403, not a redirect to the hub's login page."""

    def get_login_url(self) -> str:
        raise web.HTTPError(403, "a token with access to this service is required")


class MetricsHandler(UserHandler):
    """GET <prefix>metrics: the service's Prometheus metrics, for a hub token whose owner has `read:metrics`.

    As the hub's own /hub/metrics: the hub checks the token and its scopes, a person's access to the
    service is not enough.
    """

    hub_scopes = {"read:metrics"}  # instead of the service's access scope

    def get_login_url(self) -> str:
        raise web.HTTPError(403, "the metrics need a hub token with the read:metrics scope")

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))
