"""The hub's database and the Dask service's records on PostgreSQL (#21, item 2), as sites run them.

Debian's PostgreSQL server (tests/cluster/postgres.sh) holds both, each in a fresh database of its
own; the site is test_dask's (OIDC logins, the daas-dask service, servers and clusters on the real
Slurm cluster). A server outlives a hub restart and is re-attached from the hub's database; the
service, killed, re-attaches its live cluster from its records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from daas_services.dask.records import ClusterRecords

from .. import postgres
from .conftest import cancel_test_jobs
from .slurm import user_jobs
from .test_dask import DaskSite
from .test_dask import test_a_service_restart_reattaches_live_clusters_and_ends_dead_ones as service_restart_reattaches
from .test_slurm_spawn import _reachable_through_proxy

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[DaskSite]:
    if not postgres.installed():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with (
        postgres.session_server(),
        postgres.fresh_database("daas_hub") as hub_db,
        postgres.fresh_database("daas_dask") as records,
    ):
        cancel_test_jobs()
        site = DaskSite(records_url=records, hub_db_url=hub_db).start()
        try:
            yield site
        finally:
            site.close()


def hub_rows(site: DaskSite, query: str) -> list[tuple]:
    """What the hub's PostgreSQL database holds (read beside the hub)."""
    engine = create_engine(site.hub.db_url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(text(query))]
    finally:
        engine.dispose()


def test_a_server_is_reattached_from_postgresql_after_a_hub_restart(site: DaskSite) -> None:
    hub = site.hub
    assert hub.spawn("alice", {"profile": "mx"}).status_code in (201, 202)
    hub.wait_ready("alice")
    job_id = hub.job_id("alice")
    target = hub.routes()["/user/alice/"]["target"]
    servers = "SELECT u.name, s.state FROM spawners s JOIN users u ON u.id = s.user_id WHERE s.server_id IS NOT NULL"
    stored = [(name, json.loads(state)["daas"]["state"]["job_id"]) for name, state in hub_rows(site, servers)]
    assert stored == [("alice", job_id)]  # JupyterHub's rows, in PostgreSQL

    hub.stop()  # with its proxy and services; the server's job runs on
    assert user_jobs("alice") == [job_id]
    hub.start()
    hub.wait_ready("alice", timeout=60)
    assert hub.job_id("alice") == job_id
    assert user_jobs("alice") == [job_id]  # re-attached: no second job
    assert hub.routes()["/user/alice/"]["target"] == target  # the new proxy routes to the same server
    _reachable_through_proxy(hub, "alice")
    assert site.answering()  # the service's token, kept in the hub's database, still works

    hub.stop_server("alice")
    assert user_jobs("alice") == []
    assert hub_rows(site, servers) == []
    log = hub.log_path.read_text()
    for url in (hub.db_url, site.records_url):
        assert make_url(url).password not in log  # both URLs hold the password; logs show it masked
    assert f"daas-dask keeps its clusters in postgresql://daas:***@127.0.0.1:{make_url(site.records_url).port}/" in log


def test_the_dask_service_reattaches_its_clusters_from_postgresql(site: DaskSite) -> None:
    service_restart_reattaches(site)  # test_dask's test, on this site
    records = ClusterRecords(site.records_url)
    try:
        ended = records.of_user("alice")
        assert len(ended) == 2 and records.active() == []
        assert {record.status for record in ended} == {"stopped"}
        assert any("gone when the service restarted" in record.message for record in ended)
    finally:
        records.close()
    assert not site.records.exists()  # nothing went to the SQLite default
