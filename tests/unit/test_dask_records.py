"""The Dask service's memory of clusters: what is saved comes back, across restarts, readable by it alone.

Each test of the table runs on SQLite (the default) and on the real PostgreSQL server of
tests/cluster/postgres.sh (started for the session, a fresh database per test; skipped only
where PostgreSQL is not installed).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from daas_services.dask.records import ACTIVE, ClusterRecord, ClusterRecords, shown_url

from .. import postgres

RESOLVED = {
    "proposal": "20231234",
    "account": "20231234",
    "partition": "cpu",
    "cores": 2,
    "memory_mb": 4096,
    "walltime_seconds": 3600,
    "workers": 0,
    "adapt": {"minimum": 1, "maximum": 4},
    "idle_timeout": 1800,
    "max_workers": 8,
    "server_name": None,
}
TLS = {"ca": "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n", "cert": "C", "key": "K"}


def record(cluster_id: str = "0123456789abcdef", **fields) -> ClusterRecord:
    values = {
        "id": cluster_id,
        "username": "alice",
        "status": "running",
        "job_name": f"dask-alice-{cluster_id[:6]}",
        "resolved": RESOLVED,
        "created": 1000.0,
    } | fields
    return ClusterRecord(**values)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[None]:
    if not postgres.installed():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with postgres.session_server():
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """An empty database: a SQLite file that does not exist yet, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state/clusters.db"
        return
    request.getfixturevalue("postgres_server")
    with postgres.fresh_database("daas_records") as url:
        yield url


@pytest.fixture
def store(db_url) -> Iterator[ClusterRecords]:
    records = ClusterRecords(db_url)
    yield records
    records.close()


def count_rows(records: ClusterRecords) -> int:
    with records.engine.connect() as db:
        return db.execute(text("SELECT COUNT(*) FROM clusters")).scalar_one()


def test_round_trip(store):
    saved = record(
        scheduler_address="tls://10.0.0.5:8786",
        dashboard_port=8787,
        tls=TLS,
        message="2 workers running",
        created=1234.5,
        ended=None,
    )
    store.save(saved)
    loaded = store.get(saved.id)
    assert loaded == saved
    assert loaded is not saved
    assert loaded.resolved == RESOLVED
    assert loaded.resolved["adapt"] == {"minimum": 1, "maximum": 4}
    assert loaded.resolved["server_name"] is None
    assert loaded.tls == TLS
    assert loaded.scheduler_address == "tls://10.0.0.5:8786"
    assert loaded.dashboard_port == 8787
    assert loaded.created == 1234.5


def test_round_trip_without_tls(store):
    saved = record(tls=None, status="starting")
    store.save(saved)
    loaded = store.get(saved.id)
    assert loaded.tls is None
    assert loaded.scheduler_address is None
    assert loaded.dashboard_port is None
    assert loaded.message == ""
    assert loaded.ended is None
    assert loaded == saved


def test_ended_cluster_round_trip(store):
    saved = record(status="stopped", ended=2000.25, message="idle for 1800 s")
    store.save(saved)
    assert store.get(saved.id) == saved


def test_get_unknown_is_none(store):
    assert store.get("ffffffffffffffff") is None
    store.save(record())
    assert store.get("ffffffffffffffff") is None


def test_created_defaults_to_now():
    fresh = ClusterRecord(id="a", username="u", status="starting", job_name="j", resolved={})
    assert fresh.created > 1_600_000_000
    assert fresh.tls is None
    assert "tls" not in repr(fresh)  # the credentials stay out of logs


def test_of_user_ordered_by_creation_and_filtered(store):
    store.save(record("c3", created=300.0))
    store.save(record("b1", username="bob", created=50.0))
    store.save(record("c1", created=100.0, status="stopped"))
    store.save(record("c2", created=200.0, status="failed"))
    store.save(record("b2", username="bob", created=150.0))
    assert [r.id for r in store.of_user("alice")] == ["c1", "c2", "c3"]
    assert [r.id for r in store.of_user("bob")] == ["b1", "b2"]
    assert store.of_user("carol") == []
    assert store.of_user("ALICE") == []
    assert store.of_user("alice' OR '1'='1") == []


@pytest.mark.parametrize("status, active", [(s, True) for s in ACTIVE] + [("stopped", False), ("failed", False)])
def test_record_active(status, active):
    assert record(status=status).active is active


def test_active_returns_only_starting_running_stopping(store):
    statuses = ["stopped", "running", "failed", "starting", "stopping", "cancelled", "running"]
    for n, status in enumerate(statuses):
        store.save(record(f"id{n}", status=status, created=float(1000 - n), username=f"user{n % 2}"))
    active = store.active()
    assert [r.id for r in active] == ["id6", "id4", "id3", "id1"]  # oldest first, every user
    assert {r.status for r in active} == {"starting", "running", "stopping"}
    assert ACTIVE == ("starting", "running", "stopping")


def test_active_empty(store):
    assert store.active() == []
    store.save(record(status="stopped"))
    assert store.active() == []


def test_save_of_an_existing_id_replaces_it(store):
    store.save(record(status="starting"))
    updated = record(
        status="stopped",
        scheduler_address="tls://10.0.0.5:8786",
        tls=TLS,
        message="stopped by its owner",
        ended=1500.0,
    )
    store.save(updated)
    assert store.get(updated.id) == updated
    assert len(store.of_user("alice")) == 1
    assert store.active() == []
    assert count_rows(store) == 1


def test_replacing_may_drop_the_credentials(store):
    store.save(record(tls=TLS))
    store.save(record(tls=None))
    assert store.get("0123456789abcdef").tls is None


def test_file_modes(tmp_path):
    folder = tmp_path / "state" / "dask"
    path = folder / "clusters.db"
    old = os.umask(0o022)
    try:
        records = ClusterRecords(f"sqlite:///{path}")
    finally:
        os.umask(old)
    try:
        records.save(record(tls=TLS))
        assert folder.is_dir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        records.close()


def test_file_modes_with_a_permissive_umask(tmp_path):
    path = tmp_path / "open" / "clusters.db"
    old = os.umask(0)
    try:
        ClusterRecords(f"sqlite:///{path}").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_folder_and_file_are_reused(tmp_path):
    path = tmp_path / "clusters.db"
    first = ClusterRecords(f"sqlite:///{path}")
    first.save(record())
    first.close()
    again = ClusterRecords(f"sqlite:///{path}")
    try:
        assert again.get("0123456789abcdef") == record()
    finally:
        again.close()


def test_a_restart_sees_the_records(db_url):
    first = ClusterRecords(db_url)
    first.save(record("a1", tls=TLS, created=10.0))
    first.save(record("a2", status="stopped", created=20.0, ended=30.0))
    first.save(record("b1", username="bob", status="starting", created=5.0))
    second = ClusterRecords(db_url)
    try:
        assert second.get("a1") == first.get("a1")
        assert second.get("a1").tls == TLS
        assert [r.id for r in second.of_user("alice")] == ["a1", "a2"]
        assert [r.id for r in second.active()] == ["b1", "a1"]
        second.save(record("a3", created=40.0))
        assert [r.id for r in first.of_user("alice")] == ["a1", "a2", "a3"]  # committed at once
    finally:
        first.close()
        second.close()


def test_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    records = ClusterRecords("sqlite:///clusters.db")
    try:
        records.save(record())
        assert (tmp_path / "clusters.db").is_file()
        assert stat.S_IMODE((tmp_path / "clusters.db").stat().st_mode) == 0o600
        assert records.get("0123456789abcdef") == record()
    finally:
        records.close()


def test_job_ids_and_the_request_round_trip(store):
    saved = record(scheduler_job="41", worker_jobs=["42", "43"], requested={"workers": None, "adapt": {"maximum": 2}})
    store.save(saved)
    assert store.get(saved.id) == saved


def test_a_database_from_before_the_job_ids_gains_their_columns(db_url, tmp_path):
    (tmp_path / "state").mkdir()
    engine = create_engine(db_url)
    with engine.begin() as db:  # the table as the first release made it
        db.execute(
            text(
                "CREATE TABLE clusters (id TEXT PRIMARY KEY, username TEXT NOT NULL, status TEXT NOT NULL,"
                " job_name TEXT NOT NULL, resolved TEXT NOT NULL, scheduler_address TEXT, dashboard_port INTEGER,"
                " tls TEXT, message TEXT NOT NULL DEFAULT '', created REAL NOT NULL, ended REAL)"
            )
        )
        db.execute(
            text("INSERT INTO clusters VALUES ('a1', 'alice', 'running', 'j', '{}', NULL, NULL, NULL, '', 1, NULL)")
        )
    engine.dispose()
    records = ClusterRecords(db_url)
    try:
        old = records.get("a1")
        assert (old.scheduler_job, old.worker_jobs, old.requested) == (None, [], None)
        records.save(record("b2", worker_jobs=["7"]))
        assert records.get("b2").worker_jobs == ["7"]
        assert records.get("a1") == old
    finally:
        records.close()


def test_a_failed_statement_does_not_show_the_credentials_it_held(store):
    """The service logs a database error's message: it must not carry the TLS key of the row."""
    store.save(record())
    insert = text(
        "INSERT INTO clusters (id, username, status, job_name, resolved, created, tls)"
        " VALUES ('0123456789abcdef', 'alice', 'running', 'j', '{}', 1, :tls)"
    )
    with store.engine.connect() as db, pytest.raises(IntegrityError) as failed:  # the same id again
        db.execute(insert, {"tls": "PRIVATE KEY 5ecret"})
    assert "5ecret" not in str(failed.value)


def test_logs_show_the_url_without_its_password():
    assert shown_url("postgresql://daas:s3cret@db.example.org:5432/daas_dask") == (
        "postgresql://daas:***@db.example.org:5432/daas_dask"
    )
    assert shown_url("sqlite:////var/lib/daas-dask/clusters.sqlite") == "sqlite:////var/lib/daas-dask/clusters.sqlite"
