"""Loaded by every Python of the OpenStack test cloud's venv (a .pth file that openstack.sh installs).

oslo.db starts each SQLite transaction with a deferred BEGIN. Under several processes (nova-api, conductor,
scheduler), a transaction that read first and then writes gets "database is locked" at once, without waiting for
the other writer (SQLite cannot upgrade a stale read snapshot), and Nova then leaves servers in BUILD. BEGIN
IMMEDIATE takes the write lock at the start, so a busy database makes it wait (the URL's timeout) instead.
"""

try:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
except ImportError:  # while pip installs the venv
    pass
else:

    @event.listens_for(Engine, "before_cursor_execute", retval=True)
    def _begin_immediate(conn, cursor, statement, parameters, context, executemany):
        if statement == "BEGIN" and conn.dialect.name == "sqlite":
            statement = "BEGIN IMMEDIATE"
        return statement, parameters
