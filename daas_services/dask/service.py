"""`daas-dask`: Dask clusters on Slurm for notebooks on any backend, run as their owner.

API under the service prefix (e.g. /services/daas-dask/), for tokens or sessions with the
service's `access:services!service=daas-dask` scope; every cluster is its owner's only:

    GET    api/clusters                      mine
    POST   api/clusters                      create: {workers | adapt: {minimum, maximum}, cores, memory,
                                                      partition, walltime, proposal, server_name}
    GET    api/clusters/<id>                 one, with live worker figures
    GET    api/clusters/<id>/credentials     the cluster's TLS client credentials (for the owner's client)
    POST   api/clusters/<id>/scale           {"workers": n}
    POST   api/clusters/<id>/adapt           {"minimum": a, "maximum": b}
    DELETE api/clusters/<id>                 stop: the scheduler ends, the worker jobs are cancelled
    GET    dashboard/<id>/...                the scheduler's dashboard, for its owner only

Requests are validated by limits.py against the site's limits for the caller's proposal and
running servers (read from the hub for each request). Two more routes take no hub login: the
scheduler job of a starting cluster fetches its credentials and reports its ports with the
cluster's one-time secret (`Authorization: secret <value>`):

    GET    api/clusters/<id>/bootstrap       the cluster's TLS credentials, until the report is accepted
    POST   api/clusters/<id>/ready           {"port": p, "dashboard_port": d}

`GET metrics` gives Prometheus metrics (clusters, workers, refusals) to a hub token with `read:metrics`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import httpclient, web, websocket
from tornado.httpclient import HTTPRequest

from .. import metrics
from ..handlers import MetricsHandler, NoLoginRedirect, UserHandler
from ..hub_users import HubUsers
from .addresses import client_address
from .limits import DaskConfig, RequestError, resolve_adapt, resolve_request, resolve_scale
from .manager import ClusterError, ClusterManager
from .records import ClusterRecord

log = logging.getLogger("daas-dask")


def cluster_model(
    record: ClusterRecord,
    prefix: str,
    info: dict[str, Any] | None = None,
    client_hosts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the owner sees of a cluster (credentials have their own endpoint); the scheduler address is the
    one clients reach (`client_hosts`)."""
    address = record.scheduler_address if record.active else None
    return {
        "id": record.id,
        "status": record.status,
        "message": record.message,
        "scheduler_address": client_address(address, client_hosts or {}) if address else None,
        "dashboard_url": f"{prefix}dashboard/{record.id}/status" if record.active else None,
        "options": {key: record.resolved.get(key) for key in ("proposal", "partition", "cores", "server_name")}
        | {"memory_mb": record.resolved.get("memory_mb"), "walltime_seconds": record.resolved.get("walltime_seconds")},
        "max_workers": record.resolved.get("max_workers"),
        "workers": info.get("workers") if info else 0,
        "cores": info.get("cores") if info else 0,  # connected, over all workers
        "memory": info.get("memory") if info else 0,  # bytes, connected, over all workers
        "requested": info.get("requested") if info else None,
        "created": record.created,
        "ended": record.ended,
    }


class DaskApp:
    """The service's shared parts: configuration, cluster manager, the hub's view of users."""

    def __init__(
        self,
        config: DaskConfig,
        manager: ClusterManager,
        users: HubUsers,
        prefix: str,
        client_hosts: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.manager = manager
        self.users = users
        self.prefix = prefix
        self.client_hosts = dict(client_hosts or {})  # node address -> the host notebook clients use
        self.workers_connected = 0  # over all running clusters, at the last liveness check (the metrics)

    def metrics_collector(self) -> metrics.DaskCollector:
        """The clusters and workers as the service's metrics read them at each scrape."""
        return metrics.DaskCollector(
            lambda: [(record.status, len(record.worker_jobs)) for record in self.manager.records.active()],
            lambda: self.workers_connected,
        )

    def model(self, record: ClusterRecord, info: dict[str, Any] | None = None) -> dict[str, Any]:
        return cluster_model(record, self.prefix, info, self.client_hosts)


class DaskHandler(UserHandler):
    def initialize(self, app: DaskApp) -> None:
        self.app = app

    def own_cluster(self, cluster_id: str) -> ClusterRecord:
        record = self.app.manager.records.get(cluster_id)
        if record is None:
            raise web.HTTPError(404, "no such cluster")
        if record.username != self.username:
            metrics.refused("not_your_cluster")
            log.warning(
                "refused %s %s of cluster %s to %s", self.request.method, self.request.path, cluster_id, self.username
            )
            raise web.HTTPError(403, "this is not your cluster")
        return record


class ApiHandler(NoLoginRedirect, DaskHandler):
    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON") from None

    def refuse(self, err: RequestError | ClusterError) -> NoReturn:
        if isinstance(err, RequestError):
            metrics.refused("bad_request" if err.status == 400 else "limits")
        else:
            metrics.refused("cluster_error")
        log.info("refused for %s: %s", self.username, err)
        raise web.HTTPError(err.status, str(err))

    async def model(self, record: ClusterRecord) -> dict[str, Any]:
        return self.app.model(record, await self.app.manager.info(record))

    def token_server(self) -> str | None:
        """The server whose token made this request (its scopes name exactly one server of the caller)."""
        prefix = f"access:servers!server={self.username}/"
        scopes = self.current_user.get("scopes", [])
        names = {scope.removeprefix(prefix) for scope in scopes if scope.startswith(prefix)}
        return names.pop() if len(names) == 1 else None


class ClustersHandler(ApiHandler):
    @web.authenticated
    async def get(self) -> None:
        records = self.app.manager.records.of_user(self.username)
        if self.get_query_argument("all", "0") != "1":
            records = [record for record in records if record.active]
        self.write_json({"clusters": [await self.model(record) for record in records]})

    @web.authenticated
    async def post(self) -> None:
        username = self.username
        body = self.body()
        # The servers first: their fresh read of the hub also refreshes the proposals.
        servers = await self.app.users.running_servers(self.username)
        proposals = [proposal.id for proposal in await self.app.users.proposals(username)]
        running = sum(1 for record in self.app.manager.records.of_user(username) if record.active)
        try:
            resolved = resolve_request(body, self.app.config, proposals, running, servers, self.token_server())
        except RequestError as err:
            self.refuse(err)
        try:
            record = await self.app.manager.start(username, resolved)
        except ClusterError as err:
            self.refuse(err)
        self.write_json(await self.model(record), status=201)


class ClusterHandler(ApiHandler):
    @web.authenticated
    async def get(self, cluster_id: str) -> None:
        self.write_json(await self.model(self.own_cluster(cluster_id)))

    @web.authenticated
    async def delete(self, cluster_id: str) -> None:
        record = await self.app.manager.stop(self.own_cluster(cluster_id))
        self.write_json(self.app.model(record))


class CredentialsHandler(ApiHandler):
    @web.authenticated
    async def get(self, cluster_id: str) -> None:
        record = self.own_cluster(cluster_id)
        if not record.active or not record.tls:
            raise web.HTTPError(409, "the cluster is not running")
        self.set_header("Cache-Control", "no-store")
        address = record.scheduler_address and client_address(record.scheduler_address, self.app.client_hosts)
        self.write_json({"scheduler_address": address, "tls": record.tls})


class ScaleHandler(ApiHandler):
    @web.authenticated
    async def post(self, cluster_id: str) -> None:
        record = self.own_cluster(cluster_id)
        try:
            workers = resolve_scale(self.body(), record.resolved["max_workers"])
            record = await self.app.manager.steer(record, workers, None)
        except (RequestError, ClusterError) as err:
            self.refuse(err)
        self.write_json(await self.model(record))


class AdaptHandler(ApiHandler):
    @web.authenticated
    async def post(self, cluster_id: str) -> None:
        record = self.own_cluster(cluster_id)
        try:
            adapt = resolve_adapt(self.body(), record.resolved["max_workers"])
            record = await self.app.manager.steer(record, None, adapt.model_dump())
        except (RequestError, ClusterError) as err:
            self.refuse(err)
        self.write_json(await self.model(record))


class JobHandler(UserHandler):
    """Calls from a starting cluster's scheduler job: the cluster's one-time secret, never a hub login."""

    def initialize(self, app: DaskApp) -> None:
        self.app = app

    def secret(self) -> str | None:
        scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
        return (value.strip() or None) if scheme.lower() == "secret" else None

    def refuse(self, err: ClusterError) -> NoReturn:
        metrics.refused("scheduler_job")
        log.warning("refused %s %s: %s", self.request.method, self.request.path, err)
        raise web.HTTPError(err.status, str(err))


class BootstrapHandler(JobHandler):
    def get(self, cluster_id: str) -> None:
        try:
            tls = self.app.manager.bootstrap(cluster_id, self.secret())
        except ClusterError as err:
            self.refuse(err)
        self.set_header("Cache-Control", "no-store")
        self.write_json({"tls": tls})


class ReadyHandler(JobHandler):
    async def post(self, cluster_id: str) -> None:
        try:
            report = json.loads(self.request.body or b"null")
        except ValueError:
            report = None  # refused as a report once the secret has been checked
        try:
            await self.app.manager.report(cluster_id, self.secret(), report)
        except ClusterError as err:
            self.refuse(err)
        self.write_json({"accepted": True})


def dashboard_open(record: ClusterRecord) -> None:
    """Only a running cluster's dashboard is relayed: its address was checked when it reported."""
    if record.status != "running" or not record.dashboard_port or not record.scheduler_address:
        raise web.HTTPError(404, "this cluster has no dashboard now")


class DashboardHandler(DaskHandler):
    """The scheduler's dashboard (TLS, this cluster's certificate required), proxied for its owner only."""

    @web.authenticated
    async def get(self, cluster_id: str, path: str) -> None:
        record = self.own_cluster(cluster_id)
        dashboard_open(record)
        request = HTTPRequest(
            self.app.manager.dashboard_url(record, self.request.uri),
            ssl_options=self.app.manager.dashboard_tls(record),
            follow_redirects=False,
        )
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError:
            raise web.HTTPError(502, "the dashboard is not answering") from None
        self.set_status(response.code)
        for name in ("Content-Type", "Location", "Cache-Control"):
            if name in response.headers:
                self.set_header(name, response.headers[name])
        self.finish(response.body or b"")


class DashboardSocket(DaskHandler, websocket.WebSocketHandler):
    """The dashboard's live plots (bokeh's websocket), relayed for the cluster's owner only."""

    upstream: websocket.WebSocketClientConnection | None = None

    async def get(self, cluster_id: str, path: str) -> None:
        # Who may open it is settled before anything reaches the cluster.
        if self.current_user is None:
            raise web.HTTPError(403, "log in through the hub first")
        if self.cross_origin():
            raise web.HTTPError(403, "a dashboard's live plots open from the hub's own pages only")
        record = self.own_cluster(cluster_id)
        dashboard_open(record)
        offered = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        request = HTTPRequest(
            self.app.manager.dashboard_url(record, self.request.uri, "wss"),
            ssl_options=self.app.manager.dashboard_tls(record),
        )
        try:
            self.upstream = await websocket.websocket_connect(
                request, on_message_callback=self.from_upstream, subprotocols=offered or None
            )
        except (OSError, httpclient.HTTPClientError):
            raise web.HTTPError(502, "the dashboard is not answering") from None
        await super().get(cluster_id, path)

    def cross_origin(self) -> bool:
        """Whether a page of another site opens this socket (browsers let websockets go cross-origin).

        Tornado's own check (the same rules) comes only after `get` has begun, too late here.
        """
        headers = self.request.headers
        fetch_site, origin = headers.get("Sec-Fetch-Site"), headers.get("Origin")
        if fetch_site in ("same-origin", "none"):
            return False
        own_page = origin is not None and urlsplit(origin).netloc.lower() == headers.get("Host", "").lower()
        if fetch_site is None and (origin is None or own_page):
            return False  # a client that is no browser, or an older browser on the hub's own page
        return origin is None or not self.check_origin(origin)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.upstream.selected_subprotocol if self.upstream else None

    def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            self.upstream.write_message(message, binary=isinstance(message, bytes))

    def from_upstream(self, message: str | bytes | None) -> None:
        if message is None:
            self.close()
        elif self.ws_connection is not None:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()


async def watch(app: DaskApp, hub: httpx.AsyncClient, interval: float, stop_with_server: bool) -> None:
    """Every interval: end clusters whose scheduler is gone, (if set) those whose server stopped; adapt."""
    misses: dict[str, int] = {}
    while True:
        await asyncio.sleep(interval)
        connected = 0
        for record in app.manager.records.active():
            if record.status != "running":
                continue
            info = await app.manager.info(record)
            if info is None:
                misses[record.id] = misses.get(record.id, 0) + 1
                if misses[record.id] >= 2:
                    await app.manager.end_lost(record, "ended: idle past its timeout, or its scheduler stopped")
                continue
            misses.pop(record.id, None)
            connected += info["workers"]
            tied = record.resolved.get("server_name") is not None
            if stop_with_server and tied and not await server_running(hub, record):
                await app.manager.stop(record, f"stopped with the notebook server {record.resolved['server_name']!r}")
            elif (record.requested or {}).get("adapt"):
                try:
                    await app.manager.apply(record.id)  # the scheduler's wish, capped by the service
                except ClusterError as err:
                    log.warning("cluster %s: adapting failed: %s", record.id, err)
        app.workers_connected = connected


async def server_running(hub: httpx.AsyncClient, record: ClusterRecord) -> bool:
    """Whether the notebook server a cluster was made from still runs (unknown: yes)."""
    try:
        response = await hub.get(f"/users/{record.username}")
        response.raise_for_status()
    except httpx.HTTPError:
        return True
    server = response.json().get("servers", {}).get(record.resolved["server_name"])
    return bool(server) and server.get("stopped") is not True


def make_app(app: DaskApp) -> web.Application:
    prefix, deps = app.prefix, {"app": app}
    return web.Application(
        [
            (rf"{prefix}api/clusters", ClustersHandler, deps),
            (rf"{prefix}api/clusters/([0-9a-f]{{16}})", ClusterHandler, deps),
            (rf"{prefix}api/clusters/([0-9a-f]{{16}})/credentials", CredentialsHandler, deps),
            (rf"{prefix}api/clusters/([0-9a-f]{{16}})/scale", ScaleHandler, deps),
            (rf"{prefix}api/clusters/([0-9a-f]{{16}})/adapt", AdaptHandler, deps),
            (rf"{prefix}api/clusters/([0-9a-f]{{16}})/bootstrap", BootstrapHandler, deps),
            (rf"{prefix}api/clusters/([0-9a-f]{{16}})/ready", ReadyHandler, deps),
            (rf"{prefix}dashboard/([0-9a-f]{{16}})(/.*/ws)", DashboardSocket, deps),
            (rf"{prefix}dashboard/([0-9a-f]{{16}})(/.*)?", DashboardHandler, deps),
            (rf"{prefix}oauth_callback", HubOAuthCallbackHandler),
            (rf"{prefix}metrics", MetricsHandler),
        ],
        cookie_secret=os.urandom(32),  # only HubOAuth's session cookie: a restart means a new login
    )
