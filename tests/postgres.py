"""The PostgreSQL server of tests/cluster/postgres.sh, seen from tests and benchmarks: start, fresh databases.

Each test gets a database of its own (role `daas` creates it, and drops it afterwards), so tests
never see each other's rows and need no clean-up between them.
"""

from __future__ import annotations

import glob
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "cluster" / "postgres.sh"
ADMIN_DATABASE = "postgres"  # role daas connects here to create and drop the tests' databases


def installed() -> bool:
    """Whether Debian's PostgreSQL server is installed (apt-get install postgresql)."""
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def running() -> bool:
    return subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, timeout=60).returncode == 0


def server(action: str) -> None:
    """start or stop the server (idempotent)."""
    subprocess.run(["bash", str(SCRIPT), action], check=True, timeout=120)


def url(database: str) -> str:
    """postgresql://daas:<password>@127.0.0.1:<port>/<database> (the script reads the root-only password file)."""
    done = subprocess.run(["bash", str(SCRIPT), "url", database], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"postgres.sh url: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def session_server() -> Iterator[None]:
    """The server for a test session: started if it is not running, and then stopped again afterwards."""
    started_here = not running()
    if started_here:
        server("start")
    try:
        yield
    finally:
        if started_here:
            server("stop")


def _admin(statement: str) -> None:
    import psycopg  # psycopg 3: SQLAlchemy's driver for postgresql:// URLs (2.1; 2.0 needs postgresql+psycopg://)

    # autocommit: CREATE/DROP DATABASE cannot run in a transaction
    with psycopg.connect(url(ADMIN_DATABASE), autocommit=True) as connection:
        connection.execute(statement)


@contextmanager
def fresh_database(prefix: str = "daas_test") -> Iterator[str]:
    """A new, empty database of role daas; its URL. Dropped afterwards, with whatever still connects to it."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield url(name)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
