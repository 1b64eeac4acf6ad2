"""The service's memory of clusters, in SQLite, so that a restart re-attaches or cleans up.

Credentials are kept here (the service made them; the owner's client fetches them): the file
is the service's alone (mode 0600 in a 0700 folder). The Slurm job ids the service submitted
are kept too: the worker limit counts them, not job names the owner could change.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

ACTIVE = ("starting", "running", "stopping")

SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    status TEXT NOT NULL,
    job_name TEXT NOT NULL,
    resolved TEXT NOT NULL,
    scheduler_address TEXT,
    dashboard_port INTEGER,
    tls TEXT,
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    ended REAL,
    scheduler_job TEXT,
    worker_jobs TEXT NOT NULL DEFAULT '[]',
    requested TEXT
)
"""
# Columns added after the first release, for databases made before them.
ADDED = {
    "scheduler_job": "TEXT",
    "worker_jobs": "TEXT NOT NULL DEFAULT '[]'",
    "requested": "TEXT",
}
JSON_FIELDS = ("resolved", "tls", "worker_jobs", "requested")


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


class ClusterRecords:
    """One table; every change is committed at once (a crash loses nothing it reported)."""

    def __init__(self, path: str) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)  # it holds every cluster's credentials
        self.db = sqlite3.connect(path)
        self.db.row_factory = sqlite3.Row
        self.db.execute(SCHEMA)
        present = {row["name"] for row in self.db.execute("PRAGMA table_info(clusters)")}
        for column, kind in ADDED.items():
            if column not in present:
                self.db.execute(f"ALTER TABLE clusters ADD COLUMN {column} {kind}")
        self.db.commit()

    def save(self, record: ClusterRecord) -> None:
        row = asdict(record)
        for name in JSON_FIELDS:
            row[name] = json.dumps(row[name]) if row[name] is not None else None
        columns = ", ".join(row)
        self.db.execute(
            f"INSERT OR REPLACE INTO clusters ({columns}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608 (fixed names)
            tuple(row.values()),
        )
        self.db.commit()

    def _record(self, row: sqlite3.Row) -> ClusterRecord:
        values = dict(row)
        for name in JSON_FIELDS:
            values[name] = json.loads(values[name]) if values[name] is not None else None
        return ClusterRecord(**values)

    def get(self, cluster_id: str) -> ClusterRecord | None:
        row = self.db.execute("SELECT * FROM clusters WHERE id = ?", (cluster_id,)).fetchone()
        return self._record(row) if row else None

    def of_user(self, username: str) -> list[ClusterRecord]:
        rows = self.db.execute("SELECT * FROM clusters WHERE username = ? ORDER BY created", (username,))
        return [self._record(row) for row in rows]

    def active(self) -> list[ClusterRecord]:
        marks = ", ".join("?" * len(ACTIVE))
        rows = self.db.execute(f"SELECT * FROM clusters WHERE status IN ({marks}) ORDER BY created", ACTIVE)  # noqa: S608
        return [self._record(row) for row in rows]
