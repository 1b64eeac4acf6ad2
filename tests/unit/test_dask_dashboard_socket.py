"""The dashboard's live-plots socket decides who may open it before anything reaches the cluster (#14).

The service runs for real on a local port; the dashboard is a stand-in at the boundary that only
counts the connections it receives, so a refused socket shows as no connection at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from distributed.security import Security
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.websocket import websocket_connect

from daas_services.dask.limits import DaskConfig
from daas_services.dask.manager import ClusterManager
from daas_services.dask.records import ClusterRecord, ClusterRecords
from daas_services.dask.service import DashboardSocket, DaskApp, make_app

PREFIX = "/services/daas-dask/"
CLUSTER = "0123456789abcdef"


@pytest.fixture
async def dashboard() -> AsyncIterator[tuple[int, list[int]]]:
    """A port that counts connections and closes them: where alice's dashboard would be."""
    connections: list[int] = []

    def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], connections
    server.close()


@pytest.fixture
async def service(tmp_path, dashboard, monkeypatch) -> AsyncIterator[int]:
    """The service's web app with alice's running cluster; the hub login is the X-Test-User header."""
    port, _ = dashboard
    records = ClusterRecords(f"sqlite:///{tmp_path}/clusters.sqlite")
    made = Security.temporary()
    records.save(
        ClusterRecord(
            id=CLUSTER,
            username="alice",
            status="running",
            job_name=f"daas-dask-{CLUSTER}",
            resolved={},
            scheduler_address=f"tls://127.0.0.1:{port}",
            dashboard_port=port,
            tls={"ca": made.tls_ca_file, "cert": made.tls_client_cert, "key": made.tls_client_key},
        )
    )
    manager = ClusterManager(records, [], service_url="http://127.0.0.1/")
    monkeypatch.setattr(
        DashboardSocket, "get_current_user", lambda self: {"name": self.request.headers["X-Test-User"], "kind": "user"}
    )
    server = HTTPServer(make_app(DaskApp(DaskConfig(), manager, None, PREFIX)))
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1]
    server.stop()
    records.close()


async def open_socket(port: int, user: str, origin: str | None, fetch_site: str | None = None) -> int:
    headers = {"X-Test-User": user} | ({"Origin": origin} if origin else {})
    headers |= {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    request = HTTPRequest(f"ws://127.0.0.1:{port}{PREFIX}dashboard/{CLUSTER}/status/ws", headers=headers)
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(request)
    return refused.value.code


@pytest.mark.parametrize(
    ("origin", "fetch_site"),
    [("https://evil.example", None), ("https://evil.example", "cross-site"), (None, "cross-site")],
)
async def test_a_cross_origin_socket_is_refused_before_any_connection_to_the_dashboard(
    service, dashboard, origin, fetch_site
) -> None:
    assert await open_socket(service, "alice", origin, fetch_site) == 403
    assert dashboard[1] == []


async def test_another_users_socket_is_refused_before_any_connection_to_the_dashboard(service, dashboard) -> None:
    assert await open_socket(service, "bob", f"http://127.0.0.1:{service}") == 403
    assert dashboard[1] == []


async def test_the_owner_from_the_hubs_origin_is_relayed(service, dashboard) -> None:
    """The stand-in answers no TLS: the relay fails, but it was attempted (the two tests above can fail)."""
    assert await open_socket(service, "alice", f"http://127.0.0.1:{service}") == 502
    assert dashboard[1] == [1]
