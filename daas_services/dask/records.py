"""The service's memory of clusters, in a database, so that a restart re-attaches or cleans up.

One table, through SQLAlchemy Core: SQLite by default (a file beside the service), or a site's
PostgreSQL server (`postgresql://...`, with psycopg installed), as for the hub's own database.
Credentials are kept here (the service made them; the owner's client fetches them): a SQLite file
is the service's alone (mode 0600 in a 0700 folder); on a server, the database should be too.
The Slurm job ids the service submitted are kept too: the worker limit counts them, not job names
the owner could change.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, Table, Text, create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url

ACTIVE = ("starting", "running", "stopping")

METADATA = MetaData()
CLUSTERS = Table(
    "clusters",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("username", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("job_name", Text, nullable=False),
    Column("resolved", Text, nullable=False),
    Column("scheduler_address", Text),
    Column("dashboard_port", Integer),
    Column("tls", Text),
    Column("message", Text, nullable=False, server_default=""),
    Column("created", Float(precision=53), nullable=False),  # seconds since the epoch: double precision
    Column("ended", Float(precision=53)),
    Column("scheduler_job", Text),
    Column("worker_jobs", Text, nullable=False, server_default="[]"),
    Column("requested", Text),
)
# Columns added after the first release, for databases made before them (SQL both SQLite and PostgreSQL take).
ADDED = {
    "scheduler_job": "TEXT",
    "worker_jobs": "TEXT NOT NULL DEFAULT '[]'",
    "requested": "TEXT",
}
JSON_FIELDS = ("resolved", "tls", "worker_jobs", "requested")


def shown_url(url: str) -> str:
    """The database URL as logs may show it: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class ClusterRecord:
    id: str
    username: str
    status: str
    job_name: str
    resolved: dict[str, Any]
    scheduler_address: str | None = None
    dashboard_port: int | None = None
    tls: dict[str, str] | None = field(default=None, repr=False)
    message: str = ""
    created: float = field(default_factory=time.time)
    ended: float | None = None
    scheduler_job: str | None = None
    worker_jobs: list[str] = field(default_factory=list)
    requested: dict[str, Any] | None = None  # {"workers": n} or {"adapt": {"minimum": a, "maximum": b}}

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _private_sqlite_file(url: str) -> None:
    """Make a SQLite database file mode 0600 in a 0700 folder before SQLite opens it (it holds credentials)."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


class ClusterRecords:
    """One table; every change is committed at once (a crash loses nothing it reported)."""

    def __init__(self, url: str) -> None:
        _private_sqlite_file(url)
        # hide_parameters: a failed statement's message (logged) would otherwise show the credentials it saved.
        # pool_pre_ping: a connection the database server dropped (its restart) is replaced, not failed on.
        self.engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)
        with self.engine.begin() as db:
            METADATA.create_all(db)
            present = {column["name"] for column in inspect(db).get_columns("clusters")}
            for column, kind in ADDED.items():
                if column not in present:
                    db.execute(text(f"ALTER TABLE clusters ADD COLUMN {column} {kind}"))

    def close(self) -> None:
        """Close the connections (tests, and a service that ends)."""
        self.engine.dispose()

    def save(self, record: ClusterRecord) -> None:
        """Insert or replace the record with this id, in one transaction."""
        row = asdict(record)
        for name in JSON_FIELDS:
            row[name] = json.dumps(row[name]) if row[name] is not None else None
        with self.engine.begin() as db:
            replaced = db.execute(CLUSTERS.update().where(CLUSTERS.c.id == record.id).values(row))
            if replaced.rowcount == 0:
                db.execute(insert(CLUSTERS).values(row))

    def _select(self, query: Any) -> list[ClusterRecord]:
        with self.engine.connect() as db:
            rows = db.execute(query).mappings().all()
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: Any) -> ClusterRecord:
        values = dict(row)
        for name in JSON_FIELDS:
            values[name] = json.loads(values[name]) if values[name] is not None else None
        return ClusterRecord(**values)

    def get(self, cluster_id: str) -> ClusterRecord | None:
        found = self._select(select(CLUSTERS).where(CLUSTERS.c.id == cluster_id))
        return found[0] if found else None

    def of_user(self, username: str) -> list[ClusterRecord]:
        return self._select(select(CLUSTERS).where(CLUSTERS.c.username == username).order_by(CLUSTERS.c.created))

    def active(self) -> list[ClusterRecord]:
        return self._select(select(CLUSTERS).where(CLUSTERS.c.status.in_(ACTIVE)).order_by(CLUSTERS.c.created))
